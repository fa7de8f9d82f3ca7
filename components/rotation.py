"""Root generations and the phases of a root rotation, as plain data: which roots exist, which one signs.

A stack starts with generation 1. A rotation walks three explicit phases, each a `pulumi up` of its own:

    trust-both   a new generation is created; every bundle trusts the old root (its exact bytes
                 first), then the new one; the old root still signs
    switch       the new root signs (intermediates are re-issued); both are still trusted
    retire       only the new root is trusted; the old one leaves the state

Config holds only the wanted phase; the applied one is what the stack's last run recorded in its
outputs (`rootGenerations`). Going back one phase is allowed except from `retire`; skipping one is
refused. After `retire`, removing `rootRotation` from the config is the steady state again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pulumi

from istio_ca.cluster_trust import ClusterTrust
from istio_ca.config_schema import ROOT_ROTATION_PHASES
from istio_ca.validation import ConfigError

PHASES = ROOT_ROTATION_PHASES


class RotationError(ConfigError):
    """A phase that cannot follow the applied one; Pulumi prints the message without a stack trace."""


@dataclass(frozen=True)
class RootGenerations:
    """Which root generations exist, which one signs, and where a rotation stands."""

    trusted: tuple[int, ...] = (1,)
    """The generations every trust bundle holds, oldest first."""
    signing: int = 1
    phase: str | None = None
    """The rotation phase applied; None in the steady state."""
    key_of: Mapping[int, int] = field(default_factory=dict)
    """A generation that re-uses an older generation's key (a same-key renewal), by number."""
    adopted: bool = False
    """Generation 1 is a root adopted with `existingRoot`, not one this stack made."""

    @property
    def rotating(self) -> bool:
        """A rotation is half-way: some clusters may hold the phase before."""
        return self.phase in ("trust-both", "switch")

    def key_generation(self, generation: int) -> int:
        return self.key_of.get(generation, generation)

    def to_output(self) -> dict[str, Any]:
        """What the stack exports, for the next run to read."""
        return {
            "trusted": list(self.trusted),
            "signing": self.signing,
            "phase": self.phase,
            "keyOf": {str(k): v for k, v in self.key_of.items()},
            "adopted": self.adopted,
        }

    @staticmethod
    def from_output(value: Mapping[str, Any] | None) -> RootGenerations:
        """The last run's `rootGenerations`; a stack without one has only generation 1."""
        if not value:
            return RootGenerations()
        return RootGenerations(
            trusted=tuple(int(g) for g in value["trusted"]),
            signing=int(value["signing"]),
            phase=value.get("phase"),
            key_of={int(k): int(v) for k, v in (value.get("keyOf") or {}).items()},
            adopted=bool(value.get("adopted", False)),
        )


def next_generations(applied: RootGenerations, wanted: str | None, same_key: bool = False) -> RootGenerations:
    """The generations after this run, or RotationError naming why the wanted phase cannot come next."""
    old, new = applied.trusted[0], applied.trusted[-1]
    steady = applied.phase in (None, "retire")
    if wanted is None:
        if steady or applied.phase == "trust-both":
            # From trust-both that is an abort: the old root alone again, the new generation leaves the state.
            kept = applied.signing
            return RootGenerations(
                trusted=(kept,),
                signing=kept,
                key_of={g: k for g, k in applied.key_of.items() if g == kept},
                adopted=applied.adopted,
            )
        raise RotationError(
            f"a root rotation is in phase {applied.phase!r}: set istio-ca:rootRotation.phase to go on "
            f"({_after(applied.phase)!r}), or back to 'trust-both' and then remove rootRotation to abort it"
        )
    if wanted not in PHASES:
        raise RotationError(f"istio-ca:rootRotation.phase: {wanted!r} is not one of {list(PHASES)}")
    if wanted == "trust-both":
        if steady:
            created = max(applied.trusted) + 1
            key_of = {**applied.key_of, created: applied.key_generation(applied.signing)} if same_key else {}
            return RootGenerations(
                trusted=(applied.signing, created),
                signing=applied.signing,
                phase=wanted,
                key_of=key_of,
                adopted=applied.adopted,
            )
        return RootGenerations(
            trusted=(old, new), signing=old, phase=wanted, key_of=applied.key_of, adopted=applied.adopted
        )
    if wanted == "switch":
        if applied.phase in ("trust-both", "switch"):
            return RootGenerations(
                trusted=(old, new), signing=new, phase=wanted, key_of=applied.key_of, adopted=applied.adopted
            )
        raise _skip(applied, wanted)
    if applied.phase in ("switch", "retire"):
        return RootGenerations(
            trusted=(new,), signing=new, phase=wanted, key_of=applied.key_of, adopted=applied.adopted
        )
    raise _skip(applied, wanted)


def _after(phase: str | None) -> str:
    return PHASES[PHASES.index(phase) + 1] if phase in PHASES[:-1] else PHASES[0]


def _skip(applied: RootGenerations, wanted: str) -> RotationError:
    now = applied.phase or "no rotation (the steady state)"
    if applied.phase == "retire":
        return RotationError(
            f"istio-ca:rootRotation.phase {wanted!r} after 'retire': retire is one-way (the old root has left the "
            "state); remove rootRotation for the steady state, or start a new rotation with 'trust-both'"
        )
    return RotationError(
        f"istio-ca:rootRotation.phase {wanted!r} cannot follow {now}: the next phase is {_after(applied.phase)!r}. "
        "Each phase must be applied (and every cluster checked) before the next: skipping one would leave "
        "workloads holding a root their peers do not trust"
    )


def refuse_to_drop_an_adopted_root(applied: RootGenerations) -> None:
    """Without `existingRoot`, generation 1 would be a new root made here: refuse while the adopted one is
    trusted, or while its key signs (a same-key renewal of it): that key was never in the state."""
    if applied.adopted and 1 in applied.trusted:
        raise RotationError(
            "generation 1 is the root adopted with istio-ca:existingRoot and is still trusted: keep existingRoot "
            "in the config until a rotation has retired it (istio-ca:rootRotation.phase: retire)"
        )
    if applied.adopted and any(applied.key_generation(g) == 1 for g in applied.trusted):
        raise RotationError(
            "the trusted root is a same-key renewal of the root adopted with istio-ca:existingRoot, whose key is "
            "only in the config: keep existingRoot (its key signs) until a rotation to a new key has retired it"
        )


@dataclass(frozen=True)
class Gate:
    """The phase this run applies, which may stay behind the wanted one while a cluster catches up."""

    phase: str | None
    waiting: tuple[str, ...] = ()
    """One line per cluster that holds the wanted phase back: which, why, and what to run."""


def gate(
    applied: RootGenerations,
    wanted: str | None,
    roots: Mapping[int, str],
    clusters: Mapping[str, ClusterTrust],
    retire_after: timedelta,
    now: datetime,
) -> Gate:
    """The phase every cluster may be given now, from what each cluster's `cacerts` holds (`clusters`,
    by name; `roots`: each generation's SHA-256 fingerprint as recorded).

    `switch` waits until every cluster trusts the new root; `retire` until every intermediate is
    signed by it and `retire_after` (the workload certificate lifetime) has passed since the last
    cluster got it. A cluster behind is brought to the phase it missed, never past it, and the others
    wait with it. An abort (no phase, from `trust-both`) is refused once a cluster signs under the new root.
    """
    next_generations(applied, wanted)  # a skipped phase is refused whatever the clusters hold
    if not applied.rotating:
        return Gate(wanted)
    old, new = roots.get(applied.trusted[0]), roots.get(applied.trusted[-1])
    held = {name: cluster_phase(trust.trusted, trust.issuer, old, new) for name, trust in clusters.items()}
    known = {name: phase for name, phase in held.items() if phase is not None}
    if wanted is None:
        signing_new = sorted(name for name, phase in known.items() if _rank(phase) >= _rank("switch"))
        if applied.phase == "trust-both" and signing_new:
            raise RotationError(
                f"cannot abort the root rotation: {', '.join(signing_new)} already sign(s) under the new root. "
                "Set istio-ca:rootRotation.phase: trust-both and run `pulumi up` until every cluster signs under "
                "the old root again, then remove rootRotation"
            )
        return Gate(None)
    target = _rank(wanted)
    for phase in known.values():
        target = min(target, _rank(phase) + 1)
    target = max(target, _rank("trust-both"))
    phase = PHASES[target - 1]
    waiting = tuple(
        _waiting_line(name, known[name], wanted, phase, clusters[name].live)
        for name in sorted(known)
        if _rank(known[name]) + 1 < _rank(wanted)
    )
    if phase == "retire" and applied.phase == "switch":
        _refuse_an_early_retire(clusters, new, retire_after, now)
    return Gate(phase, waiting)


def cluster_phase(trusted: Sequence[str], issuer: str | None, old: str | None, new: str | None) -> str | None:
    """The rotation phase a cluster's `cacerts` holds, from the roots it trusts and its intermediate's issuer
    (SHA-256 fingerprints): NOT_STARTED, a phase, or None for material that is neither root's (written by
    someone else: the takeover guard judges it)."""
    if old is not None and issuer == old:
        return "trust-both" if new is not None and new in trusted else NOT_STARTED
    if new is not None and issuer == new:
        return "switch" if old is not None and old in trusted else "retire"
    return None


def held_phase(applied: Mapping[str, Any], generations: RootGenerations, roots: Sequence[str]) -> str:
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
    generations: RootGenerations,
    roots: pulumi.Output[list[str]],
) -> pulumi.Output[str]:
    """held_phase of what a cluster's `cacerts` holds after this run; a cluster whose write failed (its
    applied state unknown) still holds `before`, what it held when the run started."""

    async def phase() -> str:
        if not await roots.is_known():
            return "unknown until applied"
        if await applied.is_known():
            held = await applied.future() or {}
        else:
            held = {"trusted": list(before.trusted), "issuer": before.issuer} if before else {}
        return held_phase(held, generations, await roots.future() or [])

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


def _waiting_line(name: str, held: str, wanted: str, phase: str, live: bool) -> str:
    missed = PHASES[_rank(held)]
    if live:
        then = f"this run brings it to {missed!r}; run `pulumi up` again after it"
    else:
        then = (
            "it did not answer, so its last recorded cacerts counts: bring it back and run `pulumi up` (or, if it "
            "is gone for good, remove it from istio-ca:clusters)"
        )
    return (
        f"istio-ca:rootRotation.phase {wanted!r} waits for {name}, which has not applied {missed!r} (its cacerts "
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
            f"istio-ca:rootRotation.phase 'retire' waits until {allowed:%Y-%m-%dT%H:%MZ}: {last} got its intermediate "
            f"from the new root at {last_at:%Y-%m-%dT%H:%MZ}, and its workloads may hold certificates from the old "
            f"intermediate for up to istio-ca:rootRotation.retireAfterHours ({hours:g} h). "
            "Retiring sooner would stop every peer trusting them. Run again then, or set retireAfterHours to the "
            "longest workload certificate lifetime your istiod issues (0: retire now)"
        )


def refuse_a_changed_rotation(
    applied: RootGenerations,
    same_key: bool | None,
    last_settings: Mapping[str, Any] | None,
    settings: Mapping[str, Any],
) -> None:
    """Once `trust-both` is applied, the new root exists: a changed `sameKey` or `root` setting cannot apply
    to it, and a root made anew would give istiod a bundle that is neither a superset nor a subset of the
    one it has. `same_key`: the wanted setting, None without a rotation (an abort changes nothing made)."""
    if not applied.rotating or same_key is None:
        return
    way_out = (
        "abort first (remove istio-ca:rootRotation while in 'trust-both'), then start a new rotation "
        "with 'trust-both' and the settings you want"
    )
    made_same_key = applied.trusted[-1] in applied.key_of
    if same_key != made_same_key:
        made = "with the old root's key" if made_same_key else "with a new key"
        raise RotationError(
            f"istio-ca:rootRotation.sameKey is {str(same_key).lower()}, but the new root was made {made} when "
            f"'trust-both' was applied; it cannot change now: {way_out}"
        )
    if last_settings and dict(last_settings) != dict(settings):
        changed = sorted(key for key in settings if last_settings.get(key) != settings[key])
        raise RotationError(
            f"istio-ca:root settings changed ({', '.join(changed)}) after 'trust-both' made the new root with the "
            f"old ones; they cannot apply to it now: restore them, or {way_out}"
        )


def warn_of_changed_root_settings(last: Mapping[str, Any] | None, wanted: Mapping[str, Any], rotating: bool) -> None:
    """A changed `root` setting never re-issues the root (that would break every workload's trust at
    once); it applies to the next generation. Say so in the preview, where the change is made."""
    if last and not rotating and dict(last) != dict(wanted):
        changed = sorted(key for key in wanted if last.get(key) != wanted[key])
        pulumi.log.warn(
            f"istio-ca:root settings changed ({', '.join(changed)}): the current root is kept; they apply to "
            "the next root generation, made by a rotation (istio-ca:rootRotation.phase: trust-both)"
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
