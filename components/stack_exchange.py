"""What one stack reads of another in a split layout: one stack output, read with the engine's
`readStackOutputs` invoke, which (unlike a StackReference) stores nothing in the reader's state.

Only public values cross: each side exports certificates, CSRs and fingerprints, never a key. (A
component's record in the other stack's state cannot be read instead: reading a state decrypts all of
it, which a stack with a passphrase of its own refuses.)
"""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import invoke_async
from pulumi.runtime.sync_await import _sync_await


class ExchangeError(pulumi.RunError):
    """Another stack's record is missing or not what it should be; one line, no stack trace."""


READ_STACK_OUTPUTS = "pulumi:pulumi:readStackOutputs"
CGROUP_ROOT = Path("/sys/fs/cgroup")


def read_exchange(stack: str, output: str) -> dict[str, Any] | None:
    """The stack output `output` of `stack` (`org/project/stack`): what that stack exported for this one.
    None while that stack has no outputs (made with `pulumi stack init`, not run yet). A stack that does not
    exist, cannot be read, has run but does not export it, or exports something else there, is refused with
    one line (the engine's error for an invoke can be caught: tests/e2e/test_invoke_errors.py)."""
    return read_exchanges([stack], output)[0]


def read_exchanges(stacks: Sequence[str], output: str) -> list[dict[str, Any] | None]:
    """read_exchange of each stack, in order, up to reads_at_once() reads running at once: the engine takes
    up to a third of a second to read another stack's outputs (most of it deriving that stack's passphrase
    key, unless its salt is one the engine derived already), so one after another they would be most of a
    large PKI stack's run."""
    gate = asyncio.Semaphore(reads_at_once())

    async def read(stack: str) -> Any:
        async with gate:
            return await invoke_async(READ_STACK_OUTPUTS, {"name": stack})

    async def read_all() -> list[Any]:
        return list(await asyncio.gather(*(read(s) for s in stacks), return_exceptions=True))

    # The components decide what to register from these reads, before registering: the program is
    # synchronous there, so the reads are awaited the way the SDK's own synchronous invoke awaits one.
    results = _sync_await(read_all())
    return [_exchange(stack, output, result) for stack, result in zip(stacks, results, strict=True)]


def reads_at_once(environ: Mapping[str, str] = os.environ, cgroups: Path = CGROUP_ROOT) -> int:
    """How many stacks the engine may look up at once without hanging. Pulumi's PostgreSQL backend opens at
    most 2 x GOMAXPROCS connections, and each stack lookup holds two at once (a listing's rows while it
    queries each row): when lookups hold every connection, each waits forever for a second. So at most
    2 x GOMAXPROCS - 2 reads run at once, which leaves one connection for the engine's own checkpoint."""
    return max(1, 2 * _go_procs(environ, cgroups) - 2)


def _go_procs(environ: Mapping[str, str], cgroups: Path) -> int:
    """GOMAXPROCS as the engine's Go runtime sets it, or fewer: the variable, else the CPUs this process may
    use, bounded by every CPU quota of its cgroup and the cgroups above (the program runs in the engine's
    environment and cgroup)."""
    if environ.get("GOMAXPROCS", "").isdigit() and int(environ["GOMAXPROCS"]) > 0:
        return int(environ["GOMAXPROCS"])
    procs = len(os.sched_getaffinity(0))
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return procs
    unified = [line[3:] for line in lines if line.startswith("0::")]  # cgroup v2; v1 sets no quota here
    if not unified:
        return procs
    own = Path(unified[0])
    for group in (own, *own.parents):
        try:
            quota, period = (cgroups / group.relative_to("/") / "cpu.max").read_text().split()[:2]
        except (OSError, ValueError):
            continue
        if quota.isdigit() and period.isdigit() and int(period) > 0:
            procs = min(procs, max(1, math.ceil(int(quota) / int(period))))
    return procs


def _exchange(stack: str, output: str, result: Any) -> dict[str, Any] | None:
    if isinstance(result, Exception):
        # The engine says why in its last clause, e.g. `... returned an error: unknown stack "org/project/stack"`.
        why = str(result).rsplit("returned an error: ", 1)[-1]
        if "unknown stack" in why:
            raise ExchangeError(f"stack {stack} does not exist: create it (`pulumi stack init`) and run it first")
        raise ExchangeError(f"stack {stack} cannot be read: {why}")
    outputs = dict((result or {}).get("outputs") or {})
    if not outputs:
        return None
    if output not in outputs:
        raise ExchangeError(f"stack {stack} exports no output {output}: it must export istio-ca's exchange there")
    value = outputs[output]
    if not isinstance(value, dict) or not value:
        # `{}` is what a secret the reader cannot decrypt comes back as: nothing secret belongs here.
        shown = "{}" if value == {} else type(value).__name__
        raise ExchangeError(f"stack {stack}: output {output} is {shown}, not the record istio-ca exports there")
    return value


def text_at(record: dict[str, Any], path: tuple[str, ...], where: str) -> str:
    """The text at `path` in a record, or ExchangeError naming `where` and the path."""
    value: Any = record
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    if not isinstance(value, str) or not value:
        shown = "{}" if value == {} else repr(value)[:60]
        raise ExchangeError(f"{where}: output {'.'.join(path)} is {shown}, not the text it should be")
    return value
