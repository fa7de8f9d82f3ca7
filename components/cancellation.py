"""A run the engine cancels ends with one line, not a Python traceback.

The engine cancels the program with SIGINT when another resource failed (without
`--continue-on-error`) or the user pressed Ctrl-C. Python's default answer is a
`KeyboardInterrupt` traceback from deep inside the SDK, which buries the real error.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

EXIT_AFTER_MESSAGE = 32
"""The language host's "the program said why it stopped" code: the engine adds no error of its own."""


def end_quietly_when_cancelled() -> None:
    signal.signal(signal.SIGINT, _cancelled)


def _cancelled(signum: int, frame: FrameType | None) -> None:
    sys.stdout.flush()
    sys.stderr.write("istio-ca: the engine cancelled this run; the error above says why.\n")
    sys.stderr.flush()
    os._exit(EXIT_AFTER_MESSAGE)
