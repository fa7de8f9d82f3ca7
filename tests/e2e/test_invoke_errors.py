"""What the real engine does with an invoke that fails: a program reads the outputs of a stack that does not
exist (`pulumi:pulumi:readStackOutputs`, through both call paths the library uses: `pulumi.runtime.invoke` as
stack_state does, `invoke_async` awaited with `_sync_await` as stack_exchange does).

The engine answers the invoke with an error (`unknown stack`), which the SDK raises in the program as a plain
Exception. A program that catches it carries on: preview and up succeed, nothing else reports the error, so
an invoke's error can be caught (and retried, as stack_state._read_checkpoint does). Left uncaught, as
read_exchange leaves it, it fails the run as the program's unhandled exception.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.leak_audit import AUDIT
from tests.e2e.pulumi_cli import COMMAND_TIMEOUT_SECONDS, printed

MISSING_STACK = "organization/nope/nope"
ENGINE_ERROR = (
    "invoke of pulumi:pulumi:readStackOutputs failed: invocation of pulumi:pulumi:readStackOutputs "
    f'returned an error: unknown stack "{MISSING_STACK}"'
)
CAUGHT = {"caught": True, "type": "Exception", "message": ENGINE_ERROR}

PROGRAM = f'''
import json

import pulumi
from pulumi.runtime import invoke_async
from pulumi.runtime.sync_await import _sync_await

TOKEN = "pulumi:pulumi:readStackOutputs"
ARGS = {{"name": "{MISSING_STACK}"}}


def outcome(read):
    try:
        value = read()
    except Exception as error:
        return {{"caught": True, "type": type(error).__name__, "message": str(error)}}
    return {{"caught": False, "value": repr(value)}}


results = {{
    # stack_state._invoke_outputs
    "invoke": outcome(lambda: pulumi.runtime.invoke(TOKEN, ARGS).value),
    # stack_exchange.read_exchanges
    "invoke_async": outcome(lambda: _sync_await(invoke_async(TOKEN, ARGS))),
}}
with open("preview.json" if pulumi.runtime.is_dry_run() else "up.json", "w") as file:
    json.dump(results, file)
for name, result in results.items():
    pulumi.export(name, result)
if pulumi.Config().get_bool("uncaught"):
    _sync_await(invoke_async(TOKEN, ARGS))
'''


def cli(directory: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["pulumi", *args, "--non-interactive", "--color", "never"],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_SECONDS,
    )
    # Searched for keys with everything else the CLI printed, but not as a `$ pulumi up` transcript: the
    # session's audit expects every `up` to have made keys, and this program makes none.
    AUDIT.transcripts.append(f"[invoke errors] $ pulumi {' '.join(args)}\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The program, with the SDK running these tests as its virtualenv."""
    directory = tmp_path / "invoke-errors"
    directory.mkdir()
    (directory / "Pulumi.yaml").write_text(
        "name: invoke-errors\nruntime:\n  name: python\n  options:\n    toolchain: pip\n    virtualenv: .venv\n"
    )
    (directory / "__main__.py").write_text(PROGRAM)
    (directory / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    AUDIT.plain_places.add(directory)
    return directory


def init(directory: Path, env: dict[str, str], stack: str) -> None:
    done = cli(directory, env, "stack", "init", stack, "--secrets-provider", "passphrase")
    assert done.returncode == 0, printed(done)


def test_a_caught_invoke_error_does_not_fail_preview_or_up(project: Path, pulumi_env: dict[str, str]) -> None:
    init(project, pulumi_env, "caught")

    preview = cli(project, pulumi_env, "preview", "--stack", "caught")
    assert preview.returncode == 0, printed(preview)
    assert "Diagnostics:" not in printed(preview), printed(preview)
    assert read(project / "preview.json") == {"invoke": CAUGHT, "invoke_async": CAUGHT}

    up = cli(project, pulumi_env, "up", "--yes", "--skip-preview", "--stack", "caught")
    assert up.returncode == 0, printed(up)
    assert "Diagnostics:" not in printed(up), printed(up)
    assert read(project / "up.json") == {"invoke": CAUGHT, "invoke_async": CAUGHT}
    outputs = cli(project, pulumi_env, "stack", "output", "--json", "--stack", "caught")
    assert json.loads(outputs.stdout) == {"invoke": CAUGHT, "invoke_async": CAUGHT}


def test_an_uncaught_invoke_error_fails_preview_and_up_as_the_programs_unhandled_exception(
    project: Path, pulumi_env: dict[str, str]
) -> None:
    """What read_exchange does with a stack that does not exist: it does not catch the invoke's error."""
    init(project, pulumi_env, "uncaught")
    done = cli(project, pulumi_env, "config", "set", "uncaught", "true", "--stack", "uncaught")
    assert done.returncode == 0, printed(done)
    for command in (["preview"], ["up", "--yes", "--skip-preview"]):
        failed = cli(project, pulumi_env, *command, "--stack", "uncaught")
        assert failed.returncode == 1, printed(failed)
        assert "error: Program failed with an unhandled exception:" in printed(failed)
        assert f"Exception: {ENGINE_ERROR}" in printed(failed)
    # The program ran to the uncaught read both times, having caught the same error before it.
    assert read(project / "preview.json") == read(project / "up.json") == {"invoke": CAUGHT, "invoke_async": CAUGHT}


def read(path: Path) -> Any:
    if not path.exists():
        pytest.fail(f"the program wrote no {path.name}")
    return json.loads(path.read_text())
