"""The split layout's driver: every cluster stack, then the PKI stack, then every cluster stack again, on Pulumi's
Automation API, K cluster stacks at a time.

    python -m istio_ca.fleet --pki-dir examples/split/pki --cluster-dir examples/split/cluster [-j 4]

The clusters are the PKI stack's config `clusters`; each has a stack of its name in the cluster project, made
when missing. During a root rotation the round is repeated until the PKI applies the wanted phase, or until
two rounds leave it where it was: the driver then names the clusters the PKI says hold it. A failed or
locked stack never stops the others (a locked one is tried once more); the driver exits 1 naming each.
It prints one line per stack and step, and writes a JSON summary with `--summary`.

Credentials come from the environment, as for `pulumi up`: the backend (PULUMI_BACKEND_URL, or the
login), the secrets provider's, each cluster's kubeconfig in its stack config.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO

import yaml
from pulumi import automation as auto

PKI_EXCHANGE = "istioCaPki"
MAX_ROUNDS = 6
"""Three phases, each possibly after a round that brings a cluster back to the phase it missed."""
ENDED = {"create": "created", "update": "updated", "replace": "replaced", "delete": "deleted"}
HOLDER = re.compile(r"rootRotation\.phase '[\w-]+' waits for ([^\s,:]+)")
SECRETS_SETTINGS = ("secretsprovider", "encryptedkey", "encryptionsalt")


class FleetError(Exception):
    """The fleet cannot be run at all (no PKI stack, no clusters in its config); one line."""


class StackLocked(Exception):
    """The backend says another update of this stack is running."""


@dataclass
class StackRun:
    """One `pulumi up` of one stack in one step."""

    step: str
    round: int
    stack: str
    ok: bool
    seconds: float
    changes: dict[str, int] = field(default_factory=dict)
    attempts: int = 1
    created: bool = False
    error: str | None = None
    warnings: list[str] = field(default_factory=list)

    def line(self) -> str:
        if not self.ok:
            return f"failed: {self.error}"
        done = [f"{count} {ENDED.get(op, op)}" for op, count in sorted(self.changes.items()) if op != "same" and count]
        said = ", ".join(["up", *done]) if done else "up, no changes"
        extra = [
            label for label, on in (("new stack", self.created), (f"{self.attempts} attempts", self.attempts > 1)) if on
        ]
        return f"{said} ({', '.join(extra)})" if extra else said


@dataclass
class Summary:
    """What the driver did, as `--summary` writes it."""

    pki_stack: str
    clusters: list[str]
    parallel: int
    runs: list[StackRun] = field(default_factory=list)
    wanted_phase: str | None = None
    applied_phase: str | None = None
    held_by: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed(self) -> list[str]:
        """Each stack with a failed step, as `stack (step, round N)`."""
        return [f"{r.stack} ({r.step}, round {r.round})" for r in self.runs if not r.ok]

    @property
    def ok(self) -> bool:
        return not self.failed and not self.held_by

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "failed": self.failed, "ok": self.ok}


class Stacks(Protocol):
    """What the driver needs of the backend and the programs."""

    def clusters(self) -> list[str]: ...

    def wanted_phase(self) -> str | None: ...

    def applied_phase(self) -> str | None: ...

    def up(self, stack: str, pki: bool) -> StackRun: ...


def run_fleet(stacks: Stacks, pki_stack: str, parallel: int, out: TextIO, lock_wait: float = 10.0) -> Summary:
    """Rounds of requests (cluster stacks), sign (the PKI stack), install (cluster stacks again), until the PKI
    applies the wanted rotation phase, or one round, outside a rotation."""
    started = time.monotonic()
    names = stacks.clusters()
    summary = Summary(pki_stack=pki_stack, clusters=names, parallel=parallel, wanted_phase=stacks.wanted_phase())
    unchanged_rounds = 0
    summary.applied_phase = stacks.applied_phase()
    for round_number in range(1, MAX_ROUNDS + 1):
        before = summary.applied_phase
        _step(stacks, "requests", round_number, names, parallel, out, summary, lock_wait)
        (sign,) = _step(stacks, "sign", round_number, [pki_stack], 1, out, summary, lock_wait, pki=True)
        _step(stacks, "install", round_number, names, parallel, out, summary, lock_wait)
        summary.applied_phase = stacks.applied_phase()
        summary.held_by = sorted({m.group(1) for line in sign.warnings for m in HOLDER.finditer(line)})
        if summary.wanted_phase is None or summary.applied_phase == summary.wanted_phase or not sign.ok:
            break
        unchanged_rounds = unchanged_rounds + 1 if summary.applied_phase == before else 0
        if unchanged_rounds == 2:
            break
        out.write(f"root rotation: {summary.applied_phase!r} applied, {summary.wanted_phase!r} wanted: again\n")
    if summary.wanted_phase is not None and summary.applied_phase == summary.wanted_phase:
        summary.held_by = []
    summary.seconds = round(time.monotonic() - started, 2)
    return summary


def _step(
    stacks: Stacks,
    step: str,
    round_number: int,
    names: Sequence[str],
    parallel: int,
    out: TextIO,
    summary: Summary,
    lock_wait: float,
    pki: bool = False,
) -> list[StackRun]:
    out.write(f"{step} (round {round_number}): {len(names)} stack(s), {min(parallel, len(names))} at a time\n")
    done = 0
    lock = threading.Lock()

    def one(name: str) -> StackRun:
        nonlocal done
        run = _up_with_one_retry(stacks, name, pki, lock_wait)
        run.step, run.round = step, round_number
        with lock:
            done += 1
            out.write(f"{done}/{len(names)} {name}: {run.line()}\n")
            out.flush()
        return run

    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        runs = list(pool.map(one, names))
    summary.runs.extend(runs)
    return runs


def _up_with_one_retry(stacks: Stacks, name: str, pki: bool, lock_wait: float) -> StackRun:
    try:
        return stacks.up(name, pki)
    except StackLocked:
        time.sleep(lock_wait)
    try:
        run = stacks.up(name, pki)
    except StackLocked as locked:
        return StackRun(step="", round=0, stack=name, ok=False, seconds=0.0, attempts=2, error=str(locked))
    run.attempts = 2
    return run


class AutomationStacks:
    """The stacks through Pulumi's Automation API: the PKI stack `pki_stack` of the project in `pki_dir`, a
    stack per cluster of the project in `cluster_dir` (made when missing, on the PKI stack's passphrase salt,
    with `pkiStack` when it is not the default)."""

    def __init__(self, pki_dir: Path, cluster_dir: Path, pki_stack: str) -> None:
        self._command = auto.PulumiCommand(skip_version_check=True)  # the CLI on PATH, as for `pulumi up`
        self._cluster_dir, self._pki_stack_name = cluster_dir, pki_stack
        try:
            self._pki = auto.select_stack(pki_stack, work_dir=str(pki_dir), opts=self._options())
        except auto.StackNotFoundError:
            raise FleetError(
                f"no PKI stack {pki_stack!r} for the project in {pki_dir}: create it and set its `clusters` "
                "(see the README's split layout)"
            ) from None
        self._pki_project = self._pki.workspace.project_settings().name
        try:  # the passphrase provider's salt; none with another secrets provider
            self._pki_salt = self._pki.workspace.stack_settings(pki_stack).encryption_salt
        except FileNotFoundError:
            self._pki_salt = None

    def _options(self) -> auto.LocalWorkspaceOptions:
        return auto.LocalWorkspaceOptions(pulumi_command=self._command)

    def _config(self, key: str) -> Any:
        config = self._pki.get_all_config()
        value = config.get(f"{self._pki_project}:{key}")
        return json.loads(value.value) if value is not None else None

    def clusters(self) -> list[str]:
        entries = self._config("clusters")
        if not isinstance(entries, list) or not entries:
            raise FleetError(f"PKI stack {self._pki_stack_name!r} has no `clusters` in its config: nothing to run")
        names = [entry.get("name") if isinstance(entry, dict) else None for entry in entries]
        bad = [repr(name) for name in names if not isinstance(name, str) or not re.fullmatch(r"[\w.-]+", name)]
        if bad:
            raise FleetError(f"PKI stack {self._pki_stack_name!r}: clusters[].name {', '.join(bad)} is no stack name")
        return [str(name) for name in names]

    def wanted_phase(self) -> str | None:
        rotation = self._config("rootRotation")
        return rotation.get("phase") if isinstance(rotation, dict) else None

    def applied_phase(self) -> str | None:
        exchange = self._pki.outputs().get(PKI_EXCHANGE)
        value = exchange.value if exchange is not None else None
        return value.get("rootPhase") if isinstance(value, dict) else None

    def _cluster_stack(self, name: str) -> tuple[auto.Stack, bool]:
        work_dir = str(self._cluster_dir)
        try:
            return auto.select_stack(name, work_dir=work_dir, opts=self._options()), False
        except auto.StackNotFoundError:
            if self._pki_salt:
                share_encryption_salt(self._cluster_dir / f"Pulumi.{name}.yaml", self._pki_salt)
            stack = auto.create_stack(name, work_dir=work_dir, opts=self._options())
            if self._pki_stack_name != "prod":
                stack.set_config("pkiStack", auto.ConfigValue(self._pki_stack_name))
            return stack, True

    def up(self, stack: str, pki: bool) -> StackRun:
        started = time.monotonic()
        created = False
        try:
            target = self._pki if pki else None
            if target is None:
                target, created = self._cluster_stack(stack)
            # show_secrets=False: the update's summary is read without decrypting its config.
            result = target.up(color="never", suppress_outputs=True, show_secrets=False)
        except auto.ConcurrentUpdateError as error:
            raise StackLocked(_error_line(error)) from None
        except auto.CommandError as error:
            seconds = round(time.monotonic() - started, 2)
            return StackRun("", 0, stack, ok=False, seconds=seconds, created=created, error=_error_line(error))
        changes = {str(op): count for op, count in (result.summary.resource_changes or {}).items()}
        return StackRun(
            "",
            0,
            stack,
            ok=True,
            seconds=round(time.monotonic() - started, 2),
            changes=changes,
            created=created,
            warnings=_warnings(result.stdout),
        )


def share_encryption_salt(stack_file: Path, salt: str) -> bool:
    """Give a new stack's file the passphrase salt `salt`, unless the file names secrets settings of its own (or
    has a layout no key can be put first in); whether it did. The PKI stack reads every cluster stack's outputs
    at each run, and Pulumi's passphrase provider derives a key (PBKDF2, 1,000,000 rounds: about 0.3 s of CPU)
    once per distinct salt. Cluster stacks on the PKI stack's salt cost it none."""
    if not stack_file.exists():
        stack_file.write_text(f"encryptionsalt: {salt}\n")
        return True
    text = stack_file.read_text()
    salted = f"encryptionsalt: {salt}\n{text}"  # first, so the file's own lines and comments stay as written
    try:
        document, salted_document = yaml.safe_load(text) or {}, yaml.safe_load(salted)
    except yaml.YAMLError:
        return False
    if not isinstance(document, dict) or any(key in document for key in SECRETS_SETTINGS):
        return False
    if salted_document != {**document, "encryptionsalt": salt}:  # a document marker, a flow mapping
        return False
    stack_file.write_text(salted)
    return True


GENERIC_ERRORS = ("update failed", "preview failed", "an unhandled error occurred")


def _error_line(error: auto.CommandError) -> str:
    """The engine's own reason, in one line: the first `error:` line that says more than that it failed."""
    text = str(error)  # the command, its stdout and its stderr
    reasons = [line.split("error:", 1)[1].strip() for line in text.splitlines() if "error:" in line]
    specific = [r for r in reasons if r and not any(r.lower().startswith(g) for g in GENERIC_ERRORS)]
    reason = (specific or reasons or [text.strip().splitlines()[-1] if text.strip() else "failed"])[0]
    return reason[:400]


def _warnings(stdout: str) -> list[str]:
    # The CLI prints each warning as it happens and again at the end: each once, in order.
    lines = [line.split("warning:", 1)[1].strip() for line in stdout.splitlines() if "warning:" in line]
    return list(dict.fromkeys(lines))


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m istio_ca.fleet", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pki-dir", type=Path, required=True, help="the PKI stack's project (examples/split/pki)")
    parser.add_argument("--cluster-dir", type=Path, required=True, help="the cluster stacks' project")
    parser.add_argument("--pki-stack", default="prod", help="the PKI stack's name (default prod)")
    parser.add_argument("-j", "--parallel", type=int, default=4, help="cluster stacks at a time (default 4)")
    parser.add_argument("--summary", type=Path, help="write the JSON summary here")
    parser.add_argument(
        "--lock-wait", type=float, default=10.0, help="seconds before the one retry of a locked stack (default 10)"
    )
    args = parser.parse_args(argv)
    if args.parallel < 1:
        parser.error("--parallel must be at least 1")
    for directory in (args.pki_dir, args.cluster_dir):
        if not (directory / "Pulumi.yaml").is_file():
            parser.error(f"{directory} holds no Pulumi.yaml")
    return args


def main(
    argv: Sequence[str] | None = None, out: TextIO = sys.stdout, stacks: Callable[..., Stacks] | None = None
) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        fleet = (stacks or AutomationStacks)(args.pki_dir, args.cluster_dir, args.pki_stack)
        summary = run_fleet(fleet, args.pki_stack, args.parallel, out, lock_wait=args.lock_wait)
    except FleetError as error:
        out.write(f"error: {error}\n")
        return 2
    if args.summary is not None:
        args.summary.write_text(json.dumps(summary.to_json(), indent=2) + "\n")
    _report(summary, out)
    return 0 if summary.ok else 1


def _report(summary: Summary, out: TextIO) -> None:
    out.write(f"{len(summary.clusters)} clusters, {len(summary.runs)} stack runs in {summary.seconds:.0f} s\n")
    if summary.wanted_phase is not None:
        out.write(f"root rotation: {summary.applied_phase!r} applied, {summary.wanted_phase!r} wanted\n")
    if summary.held_by:
        out.write(f"held by: {', '.join(summary.held_by)} (the PKI stack's warnings say what to run)\n")
    if summary.failed:
        out.write(f"failed: {', '.join(summary.failed)}\n")


if __name__ == "__main__":
    sys.exit(main())
