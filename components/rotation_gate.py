"""The rotation gate: a phase reaches no cluster until every cluster holds the one before.

What each cluster holds is read from its `cacerts` (components/cluster_trust.py), never from a value
the same run computed. A cluster that is behind and answers is brought to the phase it missed, never
past it, and the others wait with it; `retire` also waits the workload certificate lifetime after the
last cluster got its new intermediate. Rendered clusters cannot be seen: the preview says what they
must apply before the next phase.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pulumi

from istio_ca.cluster_trust import ClusterTrust, fingerprint
from istio_ca.rotation import PHASES, RootRotationState, RotationError, next_rotation_state
from istio_ca.settings import RootRotationSettings


@dataclass(frozen=True)
class Gate:
    """The phase this run applies, which may stay behind the wanted one while a cluster catches up."""

    phase: str | None
    waiting: tuple[str, ...] = ()
    """One line per cluster that holds the wanted phase back: which, why, and what to run."""


def gate(
    applied: RootRotationState,
    wanted: str | None,
    roots: Mapping[int, str],
    clusters: Mapping[str, ClusterTrust],
    retire_after: timedelta,
    now: datetime,
    catch_up: Mapping[str, str] | None = None,
    unreported: Mapping[str, str] | None = None,
) -> Gate:
    """The phase every cluster may be given now, from what each cluster's `cacerts` holds (`clusters`,
    by name; `roots`: each generation's SHA-256 fingerprint as recorded). `catch_up`: per cluster, what
    brings it to the phase it missed, where another stack writes its `cacerts` (the split layout).
    `unreported`: per cluster whose holding cannot be told (its stack reported none), why and what to
    run: it holds every cluster at the applied phase, never drops out.

    `switch` waits until every cluster trusts the new root; `retire` until every intermediate is
    signed by it and `retire_after` (the workload certificate lifetime) has passed since the last
    cluster got it. A cluster behind is brought to the phase it missed, never past it, and the others
    wait with it. An abort (no phase, from `trust-both`) is refused once a cluster signs under the new root.
    """
    next_rotation_state(applied, wanted)  # a skipped phase is refused whatever the clusters hold
    if not applied.rotating:
        return Gate(wanted)
    old, new = roots.get(applied.trusted[0]), roots.get(applied.trusted[-1])
    held = {name: cluster_phase(trust.trusted, trust.issuer, old, new) for name, trust in clusters.items()}
    known = {name: phase for name, phase in held.items() if phase is not None}
    if unreported and applied.phase is not None and (wanted is None or _rank(wanted) > _rank(applied.phase)):
        # Going back is safe whatever a cluster holds; going on, or aborting, is not.
        going = repr(wanted) if wanted is not None else "removed (an abort)"
        return Gate(
            applied.phase,
            tuple(
                f"rootRotation.phase {going} waits for {name}: {why}; every cluster stays at {applied.phase!r} "
                "meanwhile (only removing it from clusters lets the rest go on)"
                for name, why in sorted(unreported.items())
            ),
        )
    if wanted is None:
        signing_new = sorted(name for name, phase in known.items() if _rank(phase) >= _rank("switch"))
        if applied.phase == "trust-both" and signing_new:
            raise RotationError(
                f"cannot abort the root rotation: {', '.join(signing_new)} already sign(s) under the new root. "
                "Set rootRotation.phase: trust-both and run `pulumi up` until every cluster signs under "
                "the old root again, then remove rootRotation"
            )
        return Gate(None)
    target = _rank(wanted)
    for phase in known.values():
        target = min(target, _rank(phase) + 1)
    target = max(target, _rank("trust-both"))
    phase = PHASES[target - 1]
    waiting = tuple(
        _waiting_line(name, known[name], wanted, phase, clusters[name].live, (catch_up or {}).get(name))
        for name in sorted(known)
        if _rank(known[name]) + 1 < _rank(wanted)
    )
    if phase == "retire" and applied.phase == "switch":
        _refuse_an_early_retire(clusters, new, retire_after, now)
    return Gate(phase, waiting)


def phase_to_apply(
    applied: RootRotationState,
    rotation: RootRotationSettings | None,
    recorded_roots: Mapping[int, str],
    clusters: Mapping[str, ClusterTrust],
    unreported: Mapping[str, str] | None = None,
    catch_up: Mapping[str, str] | None = None,
) -> str | None:
    """The rotation phase this run applies: the wanted one, held back (with one warning per cluster behind)
    by what each cluster's `cacerts` holds, during a rotation; `recorded_roots`: each generation's root PEM
    as the state recorded it. Never from a value this run computes. `unreported` and `catch_up`: see gate."""
    wanted = rotation.phase if rotation else None
    if not applied.rotating:
        return wanted
    phase_gate = gate(
        applied,
        wanted,
        {generation: fingerprint(pem) for generation, pem in recorded_roots.items()},
        clusters,
        retire_after=timedelta(hours=rotation.retire_after_hours if rotation else 0),
        now=datetime.now(UTC),
        catch_up=catch_up,
        unreported=unreported,
    )
    for line in phase_gate.waiting:
        pulumi.log.warn(line)
    return phase_gate.phase


def cluster_phase(trusted: Sequence[str], issuer: str | None, old: str | None, new: str | None) -> str | None:
    """The rotation phase a cluster's `cacerts` holds, from the roots it trusts and its intermediate's issuer
    (SHA-256 fingerprints): NOT_STARTED, a phase, or None for material that is neither root's (written by
    someone else: the takeover guard judges it)."""
    if old is not None and issuer == old:
        return "trust-both" if new is not None and new in trusted else NOT_STARTED
    if new is not None and issuer == new:
        return "switch" if old is not None and old in trusted else "retire"
    return None


def held_phase(applied: Mapping[str, Any], generations: RootRotationState, roots: Sequence[str]) -> str:
    """What a cluster's written `cacerts` (ClusterCA.applied_roots) holds, named after `generations`' phases;
    `roots`: the fingerprints of the generations trusted, oldest first. `steady` outside a rotation,
    `other` for material that fits no phase."""
    trusted, issuer = applied.get("trusted") or [], applied.get("issuer")
    if generations.rotating:
        return cluster_phase(trusted, issuer, roots[0], roots[-1]) or OTHER
    if issuer == roots[0] and list(trusted) == [roots[0]]:
        return generations.phase or STEADY
    if generations.phase == "retire" and issuer == roots[0]:
        return "switch"  # still trusts the retired root too
    return OTHER


STEADY, OTHER = "steady", "other"


def held_phase_output(
    applied: pulumi.Output[dict[str, Any]],
    before: ClusterTrust | None,
    generations: RootRotationState,
    roots: pulumi.Output[list[str]],
) -> pulumi.Output[str]:
    """held_phase of what a cluster's `cacerts` holds after this run; a cluster whose write failed (its
    applied state unknown) still holds `before`, what it held when the run started."""

    async def phase() -> str:
        if not await roots.is_known():
            return "unknown until applied"
        if await applied.is_known():
            return held_phase(await applied.future() or {}, generations, await roots.future() or [])
        return held_phase(before.to_output() if before else {}, generations, await roots.future() or [])

    return pulumi.Output.from_input(asyncio.ensure_future(phase()))


NOT_STARTED = "not started"
"""A cluster that trusts only the old root, which signs its intermediate."""


def _rank(phase: str) -> int:
    return 0 if phase == NOT_STARTED else PHASES.index(phase) + 1


_HOLDS = {
    NOT_STARTED: "trusts only the old root",
    "trust-both": "still signs under the old root",
    "switch": "still trusts the old root",
}


def _waiting_line(name: str, held: str, wanted: str, phase: str, live: bool, catch_up: str | None) -> str:
    missed = PHASES[_rank(held)]
    if catch_up is not None:
        then = catch_up
    elif live:
        then = f"this run brings it to {missed!r}; run `pulumi up` again after it"
    else:
        then = (
            "it did not answer, so its last recorded cacerts counts: bring it back and run `pulumi up` (or, if it "
            "is gone for good, remove it from clusters)"
        )
    return (
        f"rootRotation.phase {wanted!r} waits for {name}, which has not applied {missed!r} (its cacerts "
        f"{_HOLDS[held]}); every cluster stays at {phase!r} meanwhile: {then}"
    )


def _refuse_an_early_retire(
    clusters: Mapping[str, ClusterTrust], new: str | None, retire_after: timedelta, now: datetime
) -> None:
    switched = [(trust.issued_at, name) for name, trust in clusters.items() if trust.issuer == new and trust.issued_at]
    if not switched:
        return
    last_at, last = max(switched)
    allowed, hours = last_at + retire_after, retire_after.total_seconds() / 3600
    if now < allowed:
        raise RotationError(
            f"rootRotation.phase 'retire' waits until {allowed:%Y-%m-%dT%H:%MZ}: {last} got its intermediate "
            f"from the new root at {last_at:%Y-%m-%dT%H:%MZ}, and its workloads may hold certificates from the old "
            f"intermediate for up to rootRotation.retireAfterHours ({hours:g} h). "
            "Retiring sooner would stop every peer trusting them. Run again then, or set retireAfterHours to the "
            "longest workload certificate lifetime your istiod issues (0: retire now)"
        )


_BEFORE_THE_NEXT = {
    "trust-both": "its cacerts trusting both roots, and every proxy holding both (the istio-ca-root-cert "
    "ConfigMap), before 'switch'",
    "switch": "its cacerts with the intermediate from the new root, then the workload certificate lifetime "
    "passed, before 'retire'",
    "retire": "its cacerts trusting only the new root, before rootRotation is removed",
}


def remind_to_apply_rendered_clusters(phase: str | None, rendered: Sequence[str]) -> None:
    """A rendered cluster's manifests are applied by someone else, so no phase can wait for it: say what must be
    applied there before the next phase, in the preview where the phase is chosen."""
    if phase is None or not rendered or not pulumi.runtime.is_dry_run():
        return
    for name in rendered:
        pulumi.log.warn(
            f"{name} is rendered, so the rotation cannot see what it holds: apply its manifests there, with "
            f"{_BEFORE_THE_NEXT[phase]}"
        )
