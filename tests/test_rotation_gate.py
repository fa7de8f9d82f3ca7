"""The rotation gate: each phase waits for every cluster to hold the one before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pulumi
import pytest

from istio_ca.cluster_trust import ClusterTrust
from istio_ca.rotation import RootRotationState, RotationError
from istio_ca.rotation_gate import NOT_STARTED, Gate, gate
from tests.program import run_program

STEADY = RootRotationState()
TRUST_BOTH = RootRotationState(trusted=(1, 2), signing=1, phase="trust-both")
SWITCH = RootRotationState(trusted=(1, 2), signing=2, phase="switch")
RETIRE = RootRotationState(trusted=(2,), signing=2, phase="retire")


OLD, NEW = "OLD", "NEW"
ROOTS = {1: OLD, 2: NEW}
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
DAY = timedelta(hours=24)


def holds(phase: str, issued_hours_ago: float = 48, live: bool = True) -> ClusterTrust:
    """A cluster's cacerts in `phase`, by the roots' stand-in fingerprints."""
    trusted, issuer = {
        NOT_STARTED: ((OLD,), OLD),
        "trust-both": ((OLD, NEW), OLD),
        "switch": ((OLD, NEW), NEW),
        "retire": ((NEW,), NEW),
    }[phase]
    return ClusterTrust(trusted=trusted, issuer=issuer, issued_at=NOW - timedelta(hours=issued_hours_ago), live=live)


@pytest.mark.parametrize(
    ("applied", "wanted", "clusters", "phase", "waiting"),
    [
        (TRUST_BOTH, "switch", {"c1": "trust-both", "c2": "trust-both"}, "switch", []),
        (TRUST_BOTH, "switch", {"c1": "trust-both", "c3": NOT_STARTED}, "trust-both", ["c3"]),
        (SWITCH, "retire", {"c1": "switch", "c3": "trust-both"}, "switch", ["c3"]),
        (SWITCH, "retire", {"c1": "switch", "c2": "retire"}, "retire", []),  # c2 applied retire, then failed
        (SWITCH, "switch", {"c1": "switch", "c3": "trust-both"}, "switch", []),  # c3 catches up to switch
        (SWITCH, "trust-both", {"c1": "switch", "c3": "trust-both"}, "trust-both", []),  # back one phase
        (TRUST_BOTH, None, {"c1": "trust-both", "c3": NOT_STARTED}, None, []),  # abort
        (STEADY, "trust-both", {"c1": NOT_STARTED}, "trust-both", []),
        (RETIRE, None, {"c1": "switch"}, None, []),  # the same files as retire
    ],
    ids=[
        "all trust both",
        "c3 missed trust-both",
        "c3 missed switch",
        "retire",
        "catch up",
        "back",
        "abort",
        "start",
        "after",
    ],
)
def test_a_phase_waits_for_every_cluster_to_hold_the_one_before(
    applied: RootRotationState, wanted: str | None, clusters: dict[str, str], phase: str | None, waiting: list[str]
) -> None:
    result = gate(applied, wanted, ROOTS, {name: holds(held) for name, held in clusters.items()}, DAY, NOW)
    assert result.phase == phase
    assert [line.split(" waits for ")[1].split(",")[0] for line in result.waiting] == waiting


def test_a_waiting_line_names_the_cluster_the_phase_it_missed_and_what_to_run() -> None:
    up = gate(TRUST_BOTH, "switch", ROOTS, {"c1": holds("trust-both"), "c3": holds(NOT_STARTED)}, DAY, NOW)
    assert up.waiting == (
        "rootRotation.phase 'switch' waits for c3, which has not applied 'trust-both' (its cacerts trusts "
        "only the old root); every cluster stays at 'trust-both' meanwhile: this run brings it to 'trust-both'; run "
        "`pulumi up` again after it",
    )
    down = gate(SWITCH, "retire", ROOTS, {"c1": holds("switch"), "c3": holds("trust-both", live=False)}, DAY, NOW)
    (line,) = down.waiting
    assert "c3, which has not applied 'switch' (its cacerts still signs under the old root)" in line
    assert "it did not answer, so its last recorded cacerts counts" in line
    assert "if it is gone for good, remove it from clusters" in line


def test_a_cluster_that_is_down_but_applied_the_phase_before_does_not_block() -> None:
    clusters = {"c1": holds("trust-both"), "c3": holds("trust-both", live=False)}
    assert gate(TRUST_BOTH, "switch", ROOTS, clusters, DAY, NOW) == Gate("switch")


def test_a_cluster_with_no_cacerts_or_another_roots_does_not_block() -> None:
    foreign = ClusterTrust(trusted=("OTHER",), issuer="OTHER", issued_at=NOW, live=True)
    assert gate(TRUST_BOTH, "switch", ROOTS, {"c1": holds("trust-both"), "c9": foreign}, DAY, NOW) == Gate("switch")
    assert gate(TRUST_BOTH, "switch", ROOTS, {"c1": holds("trust-both")}, DAY, NOW) == Gate("switch")


def test_retire_waits_the_workload_certificate_lifetime_after_the_last_switch() -> None:
    clusters = {"c1": holds("switch", issued_hours_ago=30), "c2": holds("switch", issued_hours_ago=2)}
    with pytest.raises(
        RotationError,
        match=r"'retire' waits until 2026-12-02T10:00Z: c2 got its intermediate from the new root at "
        r"2026-12-01T10:00Z.*retireAfterHours \(24 h\)",
    ):
        gate(SWITCH, "retire", ROOTS, clusters, DAY, NOW)
    assert gate(SWITCH, "retire", ROOTS, clusters, timedelta(hours=2), NOW).phase == "retire"
    assert gate(SWITCH, "retire", ROOTS, clusters, timedelta(0), NOW).phase == "retire"  # the explicit override


def test_an_abort_is_refused_once_a_cluster_signs_under_the_new_root() -> None:
    with pytest.raises(RotationError, match=r"cannot abort the root rotation: c2 already sign\(s\) under the new root"):
        gate(TRUST_BOTH, None, ROOTS, {"c1": holds("trust-both"), "c2": holds("switch")}, DAY, NOW)


def test_a_skipped_phase_is_refused_whatever_the_clusters_hold() -> None:
    with pytest.raises(RotationError, match="'retire' cannot follow trust-both"):
        gate(TRUST_BOTH, "retire", ROOTS, {"c1": holds("switch")}, DAY, NOW)


@pytest.mark.parametrize(
    ("phase", "before_the_next"),
    [
        ("trust-both", "its cacerts trusting both roots, and every proxy holding both"),
        ("switch", "its cacerts with the intermediate from the new root, then the workload certificate lifetime"),
        ("retire", "its cacerts trusting only the new root, before rootRotation is removed"),
    ],
)
def test_the_preview_of_each_phase_says_what_a_rendered_cluster_must_apply_before_the_next(
    monkeypatch: pytest.MonkeyPatch, phase: str, before_the_next: str
) -> None:
    warnings: list[str] = []
    monkeypatch.setattr(pulumi.log, "warn", lambda message, *args, **kwargs: warnings.append(message))
    applied = {"trust-both": STEADY, "switch": TRUST_BOTH, "retire": SWITCH}[phase]
    config = {"clusters": [{"name": "east"}, {"name": "west"}], "rootRotation": {"phase": phase}}
    run_program(config, preview=True, last_outputs={"rootGenerations": applied.to_output()})
    rendered = [w for w in warnings if "is rendered, so the rotation cannot see what it holds" in w]
    assert [w.split(" ")[0] for w in rendered] == ["east", "west"]
    assert all(before_the_next in w for w in rendered)
    warnings.clear()
    run_program(config, last_outputs={"rootGenerations": applied.to_output()})  # said in the preview only
    assert not [w for w in warnings if "is rendered" in w]


@pytest.mark.parametrize(
    ("applied", "wanted", "phase"),
    [
        (TRUST_BOTH, "switch", "trust-both"),
        (SWITCH, "retire", "switch"),
        (TRUST_BOTH, None, "trust-both"),  # an abort waits too: the silent cluster may sign under the new root
    ],
    ids=["switch", "retire", "abort"],
)
def test_a_cluster_that_reports_nothing_holds_every_cluster_where_it_is(
    applied: RootRotationState, wanted: str | None, phase: str
) -> None:
    """A cluster stack with no report (not run, state lost) never drops out: it may still hold the old bundle."""
    clusters = {"c1": holds("switch" if applied is SWITCH else "trust-both")}
    why = "stack o/mesh-cluster/c3 reports no cacerts (none written yet, or its state was lost): run it"
    result = gate(applied, wanted, ROOTS, clusters, timedelta(0), NOW, unreported={"c3": why})
    assert result.phase == phase
    (line,) = result.waiting
    assert line.startswith(f"rootRotation.phase {wanted!r} waits for c3: {why}" if wanted else "rootRotation.phase")
    assert f"every cluster stays at {phase!r} meanwhile (only removing it from clusters lets the rest go on)" in line


def test_going_back_a_phase_does_not_wait_for_a_cluster_that_reports_nothing() -> None:
    result = gate(SWITCH, "trust-both", ROOTS, {"c1": holds("switch")}, DAY, NOW, unreported={"c3": "not run"})
    assert result == Gate("trust-both")
