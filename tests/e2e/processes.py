"""The processes a command started, read from /proc: what a test kills with it, and what the benchmark measures."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator


def descendants(pid: int) -> list[int]:
    """`pid` and every live process beneath it."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as stream:
                parent = int(stream.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(parent, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(parents.get(current, []))
    return found


def kill_tree(pid: int) -> None:
    """SIGKILL `pid` and every process beneath it, its plugins too: they run in process groups of their own."""
    for process in descendants(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(process, signal.SIGKILL)


@contextlib.contextmanager
def reaped(pid: int) -> Iterator[None]:
    """Every process beneath `pid` now is SIGKILLed on the way out: a CLI killed outright cannot stop its providers
    (a kubernetes provider outlived one), and nothing may outlive a test."""
    started = descendants(pid)
    try:
        yield
    finally:
        for child in started:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
