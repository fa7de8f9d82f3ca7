"""The split layout's driver (istio_ca.fleet) against stacks that only record what is asked of them; the real
stacks on PostgreSQL are tests/e2e/test_shared_backend.py."""

from __future__ import annotations

import io
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from istio_ca import fleet
from istio_ca.fleet import FleetError, StackLocked, StackRun


@dataclass
class FakeStacks:
    names: list[str]
    wanted: str | None = None
    before: str | None = None
    """What the PKI has applied before the driver runs it."""
    phases: list[str | None] = field(default_factory=lambda: [None])
    """What the PKI has applied after each of its runs (the last one repeats)."""
    fail: set[str] = field(default_factory=set)
    locked: dict[str, int] = field(default_factory=dict)
    """How many more times each stack is locked."""
    holder_warning: str | None = None
    calls: list[str] = field(default_factory=list)
    running: int = 0
    most_running: int = 0
    pki_runs: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def clusters(self) -> list[str]:
        return list(self.names)

    def wanted_phase(self) -> str | None:
        return self.wanted

    def applied_phase(self) -> str | None:
        return self.phases[min(self.pki_runs, len(self.phases)) - 1] if self.pki_runs else self.before

    def up(self, stack: str, pki: bool) -> StackRun:
        with self.lock:
            self.calls.append(stack)
            if self.locked.get(stack):
                self.locked[stack] -= 1
                raise StackLocked(f"the stack {stack} is currently locked by 1 lock(s)")
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        time.sleep(0.01)
        with self.lock:
            self.running -= 1
            if pki:
                self.pki_runs += 1
        if stack in self.fail:
            return StackRun("", 0, stack, ok=False, seconds=0.01, error="cluster unreachable")
        warnings = [self.holder_warning] if pki and self.holder_warning else []
        return StackRun("", 0, stack, ok=True, seconds=0.01, changes={"same": 3, "update": 1}, warnings=warnings)


def projects(directory: Path) -> list[str]:
    """A PKI and a cluster project under `directory`, as the driver's arguments."""
    for project in ("pki", "cluster"):
        (directory / project).mkdir(exist_ok=True)
        (directory / project / "Pulumi.yaml").write_text("name: x\n")
    return ["--pki-dir", str(directory / "pki"), "--cluster-dir", str(directory / "cluster")]


def drive(stacks: FakeStacks, tmp_path: Path, parallel: int = 2) -> tuple[int, str, dict[str, Any]]:
    out = io.StringIO()
    summary_path = tmp_path / "summary.json"
    argv = [*projects(tmp_path), "-j", str(parallel), "--summary", str(summary_path), "--lock-wait", "0"]
    code = fleet.main(argv, out=out, stacks=lambda *_: stacks)
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    return code, out.getvalue(), summary


def test_runs_the_cluster_stacks_then_the_pki_then_the_cluster_stacks_k_at_a_time(tmp_path: Path) -> None:
    names = [f"east-{i}" for i in range(7)]
    stacks = FakeStacks(names)
    code, printed, summary = drive(stacks, tmp_path, parallel=3)
    assert code == 0
    assert sorted(stacks.calls[:7]) == sorted(names)
    assert stacks.calls[7] == "prod"
    assert sorted(stacks.calls[8:]) == sorted(names)
    assert len(stacks.calls) == 15
    assert stacks.most_running == 3
    lines = printed.splitlines()
    assert "requests (round 1): 7 stack(s), 3 at a time" in lines
    assert [line.split(" ")[0] for line in lines if ": up, 1 updated" in line][:7] == [f"{i}/7" for i in range(1, 8)]
    assert "1/1 prod: up, 1 updated" in lines
    assert summary["ok"] is True and summary["failed"] == []
    assert [run["step"] for run in summary["runs"]] == ["requests"] * 7 + ["sign"] + ["install"] * 7


def test_a_failed_stack_stops_no_other_and_is_named_with_a_non_zero_exit(tmp_path: Path) -> None:
    stacks = FakeStacks(["east", "west", "north"], fail={"west"})
    code, printed, summary = drive(stacks, tmp_path)
    assert code == 1
    assert stacks.calls.count("east") == 2 and stacks.calls.count("north") == 2 and "prod" in stacks.calls
    assert "west: failed: cluster unreachable" in printed
    assert printed.splitlines()[-1] == "failed: west (requests, round 1), west (install, round 1)"
    assert summary["failed"] == ["west (requests, round 1)", "west (install, round 1)"]
    assert summary["ok"] is False


def test_a_locked_stack_is_tried_once_more(tmp_path: Path) -> None:
    stacks = FakeStacks(["east", "west"], locked={"east": 1, "west": 2})
    code, printed, summary = drive(stacks, tmp_path)
    assert code == 1
    assert "east: up, 1 updated (2 attempts)" in printed
    assert "west: failed: the stack west is currently locked by 1 lock(s)" in printed
    assert summary["failed"] == ["west (requests, round 1)"]  # locked twice in requests, then free for install
    assert stacks.calls.count("west") == 3


def test_a_rotation_repeats_the_round_until_the_pki_applies_the_wanted_phase(tmp_path: Path) -> None:
    # The PKI brings a cluster back to the phase it missed, then applies the next ones.
    stacks = FakeStacks(["east", "west"], wanted="switch", before="trust-both", phases=["trust-both", "switch"])
    code, printed, summary = drive(stacks, tmp_path)
    assert code == 0
    assert stacks.pki_runs == 2
    assert "root rotation: 'trust-both' applied, 'switch' wanted: again" in printed
    assert summary["applied_phase"] == "switch" and summary["held_by"] == []


def test_a_rotation_two_rounds_cannot_move_names_the_clusters_that_hold_it(tmp_path: Path) -> None:
    warning = (
        "rootRotation.phase 'switch' waits for west, which has not applied 'trust-both' (its cacerts trusts the old "
        "root only); every cluster stays at 'trust-both' meanwhile: it did not answer"
    )
    stacks = FakeStacks(
        ["east", "west"], wanted="switch", before="trust-both", phases=["trust-both"], holder_warning=warning
    )
    code, printed, summary = drive(stacks, tmp_path)
    assert code == 1
    assert stacks.pki_runs == 2  # one round may only bring a cluster back: two that change nothing stop
    assert summary["held_by"] == ["west"]
    assert "held by: west (the PKI stack's warnings say what to run)" in printed


def test_outside_a_rotation_one_round(tmp_path: Path) -> None:
    stacks = FakeStacks(["east"], holder_warning="east: stack o/mesh-cluster/east has not run yet")
    code, _, summary = drive(stacks, tmp_path)
    assert (code, stacks.pki_runs, summary["held_by"]) == (0, 1, [])


def test_a_fleet_that_cannot_run_says_why_in_one_line(tmp_path: Path) -> None:
    def no_pki(*_: object) -> FakeStacks:
        raise FleetError("no PKI stack 'prod' for the project in pki")

    out = io.StringIO()
    assert fleet.main(projects(tmp_path), out=out, stacks=no_pki) == 2
    assert out.getvalue() == "error: no PKI stack 'prod' for the project in pki\n"


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["-j", "0"], "--parallel must be at least 1"), (["--pki-dir", "/nonexistent"], "holds no Pulumi.yaml")],
)
def test_bad_arguments_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    argv = [*projects(tmp_path), *extra]
    with pytest.raises(SystemExit) as exited:
        fleet.main(argv, out=io.StringIO(), stacks=lambda *_: FakeStacks(["east"]))
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


SALT = "v1:f5my+Q4fyW0=:v1:WGI/oYTqlkB2k1+L:KldMCH2n2EXkFXIqOuk9Zhle6ET3hw=="


def test_a_new_stack_file_gets_the_pki_stacks_salt(tmp_path: Path) -> None:
    stack_file = tmp_path / "Pulumi.east.yaml"
    assert fleet.share_encryption_salt(stack_file, SALT) is True
    assert yaml.safe_load(stack_file.read_text()) == {"encryptionsalt": SALT}


def test_a_users_stack_file_gets_the_salt_first_and_keeps_every_line(tmp_path: Path) -> None:
    stack_file = tmp_path / "Pulumi.east.yaml"
    written = "# east: the us-east cluster\nconfig:\n  mesh-cluster:kubeconfig: /etc/east.yaml  # rotated weekly\n"
    stack_file.write_text(written)
    assert fleet.share_encryption_salt(stack_file, SALT) is True
    assert stack_file.read_text() == f"encryptionsalt: {SALT}\n{written}"
    assert yaml.safe_load(stack_file.read_text()) == {
        "encryptionsalt": SALT,
        "config": {"mesh-cluster:kubeconfig": "/etc/east.yaml"},
    }


@pytest.mark.parametrize(
    "written",
    [
        "encryptionsalt: v1:b3duIHNhbHQ=:v1:x:y\nconfig: {}\n",  # its own passphrase salt
        "secretsprovider: awskms://alias/mesh\nencryptedkey: AQID\n",  # another secrets provider
        "---\nconfig:\n  mesh-cluster:pkiStack: staging\n",  # a document marker: nothing can go before it
        "{config: {mesh-cluster:pkiStack: staging}}\n",  # a flow mapping
        "config: [unclosed\n",  # not YAML at all: `pulumi stack init` will say so
    ],
)
def test_a_stack_file_with_secrets_settings_or_a_layout_of_its_own_is_left_as_written(
    tmp_path: Path, written: str
) -> None:
    stack_file = tmp_path / "Pulumi.east.yaml"
    stack_file.write_text(written)
    assert fleet.share_encryption_salt(stack_file, SALT) is False
    assert stack_file.read_text() == written
