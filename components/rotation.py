"""Root generations and the phases of a root rotation, as plain data: which roots exist, which one signs.

A stack starts with generation 1. A rotation walks three explicit phases, each a `pulumi up` of its own:

    trust-both   a new generation is created; every bundle trusts the old root (its exact bytes
                 first), then the new one; the old root still signs
    switch       the new root signs (intermediates are re-issued); both are still trusted
    retire       only the new root is trusted; the old one leaves the state

Config holds only the wanted phase; the applied one is what the last run recorded (RootRotationState,
in MeshCA's outputs). Going back one phase is allowed except from `retire`; skipping one is
refused. After `retire`, removing `rootRotation` from the config is the steady state again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi

from istio_ca.config_schema import ROOT_ROTATION_PHASES
from istio_ca.validation import ConfigError

PHASES = ROOT_ROTATION_PHASES


class RotationError(ConfigError):
    """A phase that cannot follow the applied one; Pulumi prints the message without a stack trace."""


@dataclass(frozen=True)
class RootRotationState:
    """Which root generations exist, which one signs, and where a rotation stands."""

    trusted: tuple[int, ...] = (1,)
    """The generations every trust bundle holds, oldest first."""
    signing: int = 1
    phase: str | None = None
    """The rotation phase applied; None in the steady state."""
    shared_keys: Mapping[int, int] = field(default_factory=dict)
    """Generation -> the older generation whose key it re-uses (a same-key renewal); recorded as `keyOf`."""
    adopted: bool = False
    """Generation 1 is a root adopted with `existingRoot`, not one this stack made."""

    @property
    def rotating(self) -> bool:
        """A rotation is half-way: some clusters may hold the phase before."""
        return self.phase in ("trust-both", "switch")

    def key_owner(self, generation: int) -> int:
        """The generation whose key `generation` signs with: its own, or the one it renewed."""
        return self.shared_keys.get(generation, generation)

    def to_output(self) -> dict[str, Any]:
        """As recorded in the state (MeshCA's `root_generations`), for the next run to read."""
        return {
            "trusted": list(self.trusted),
            "signing": self.signing,
            "phase": self.phase,
            "keyOf": {str(k): v for k, v in self.shared_keys.items()},
            "adopted": self.adopted,
        }

    @staticmethod
    def from_output(value: Mapping[str, Any] | None) -> RootRotationState:
        """The last run's `rootGenerations`; a stack without one has only generation 1."""
        if not value:
            return RootRotationState()
        return RootRotationState(
            trusted=tuple(int(g) for g in value["trusted"]),
            signing=int(value["signing"]),
            phase=value.get("phase"),
            shared_keys={int(k): int(v) for k, v in (value.get("keyOf") or {}).items()},
            adopted=bool(value.get("adopted", False)),
        )


def next_rotation_state(applied: RootRotationState, wanted: str | None, same_key: bool = False) -> RootRotationState:
    """The generations after this run, or RotationError naming why the wanted phase cannot come next."""
    old, new = applied.trusted[0], applied.trusted[-1]
    steady = applied.phase in (None, "retire")
    if wanted is None:
        if steady or applied.phase == "trust-both":
            # From trust-both that is an abort: the old root alone again, the new generation leaves the state.
            kept = applied.signing
            return RootRotationState(
                trusted=(kept,),
                signing=kept,
                shared_keys={g: k for g, k in applied.shared_keys.items() if g == kept},
                adopted=applied.adopted,
            )
        raise RotationError(
            f"a root rotation is in phase {applied.phase!r}: set rootRotation.phase to go on "
            f"({_after(applied.phase)!r}), or back to 'trust-both' and then remove rootRotation to abort it"
        )
    if wanted not in PHASES:
        raise RotationError(f"rootRotation.phase: {wanted!r} is not one of {list(PHASES)}")
    if wanted == "trust-both":
        if steady:
            created = max(applied.trusted) + 1
            shared_keys = {**applied.shared_keys, created: applied.key_owner(applied.signing)} if same_key else {}
            return RootRotationState(
                trusted=(applied.signing, created),
                signing=applied.signing,
                phase=wanted,
                shared_keys=shared_keys,
                adopted=applied.adopted,
            )
        return RootRotationState(
            trusted=(old, new), signing=old, phase=wanted, shared_keys=applied.shared_keys, adopted=applied.adopted
        )
    if wanted == "switch":
        if applied.phase in ("trust-both", "switch"):
            return RootRotationState(
                trusted=(old, new), signing=new, phase=wanted, shared_keys=applied.shared_keys, adopted=applied.adopted
            )
        raise _skip(applied, wanted)
    if applied.phase in ("switch", "retire"):
        return RootRotationState(
            trusted=(new,), signing=new, phase=wanted, shared_keys=applied.shared_keys, adopted=applied.adopted
        )
    raise _skip(applied, wanted)


def _after(phase: str | None) -> str:
    return PHASES[PHASES.index(phase) + 1] if phase in PHASES[:-1] else PHASES[0]


def _skip(applied: RootRotationState, wanted: str) -> RotationError:
    now = applied.phase or "no rotation (the steady state)"
    if applied.phase == "retire":
        return RotationError(
            f"rootRotation.phase {wanted!r} after 'retire': retire is one-way (the old root has left the "
            "state); remove rootRotation for the steady state, or start a new rotation with 'trust-both'"
        )
    return RotationError(
        f"rootRotation.phase {wanted!r} cannot follow {now}: the next phase is {_after(applied.phase)!r}. "
        "Each phase must be applied (and every cluster checked) before the next: skipping one would leave "
        "workloads holding a root their peers do not trust"
    )


def refuse_to_drop_an_adopted_root(applied: RootRotationState) -> None:
    """Without `existingRoot`, generation 1 would be a new root made here: refuse while the adopted one is
    trusted, or while its key signs (a same-key renewal of it): that key was never in the state."""
    if applied.adopted and 1 in applied.trusted:
        raise RotationError(
            "generation 1 is the root adopted with existingRoot and is still trusted: keep existingRoot "
            "in the config until a rotation has retired it (rootRotation.phase: retire)"
        )
    if applied.adopted and any(applied.key_owner(g) == 1 for g in applied.trusted):
        raise RotationError(
            "the trusted root is a same-key renewal of the root adopted with existingRoot, whose key is "
            "only in the config: keep existingRoot (its key signs) until a rotation to a new key has retired it"
        )


def refuse_a_changed_rotation(
    applied: RootRotationState,
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
        "abort first (remove rootRotation while in 'trust-both'), then start a new rotation "
        "with 'trust-both' and the settings you want"
    )
    made_same_key = applied.trusted[-1] in applied.shared_keys
    if same_key != made_same_key:
        made = "with the old root's key" if made_same_key else "with a new key"
        raise RotationError(
            f"rootRotation.sameKey is {str(same_key).lower()}, but the new root was made {made} when "
            f"'trust-both' was applied; it cannot change now: {way_out}"
        )
    if last_settings and dict(last_settings) != dict(settings):
        changed = sorted(key for key in settings if last_settings.get(key) != settings[key])
        raise RotationError(
            f"root settings changed ({', '.join(changed)}) after 'trust-both' made the new root with the "
            f"old ones; they cannot apply to it now: restore them, or {way_out}"
        )


def warn_of_changed_root_settings(last: Mapping[str, Any] | None, wanted: Mapping[str, Any], rotating: bool) -> None:
    """A changed `root` setting never re-issues the root (that would break every workload's trust at
    once); it applies to the next generation. Say so in the preview, where the change is made."""
    if last and not rotating and dict(last) != dict(wanted):
        changed = sorted(key for key in wanted if last.get(key) != wanted[key])
        pulumi.log.warn(
            f"root settings changed ({', '.join(changed)}): the current root is kept; they apply to "
            "the next root generation, made by a rotation (rootRotation.phase: trust-both)"
        )
