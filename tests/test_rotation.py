"""Root generations and rotation phases: what each phase holds, and the steps that are refused."""

from __future__ import annotations

import pulumi
import pytest

from istio_ca.rotation import (
    RootRotationState,
    RotationError,
    next_rotation_state,
    refuse_a_changed_rotation,
    refuse_to_drop_an_adopted_root,
)
from istio_ca.validation import ConfigError
from tests.program import fake_cert, run_program
from tests.roots import make_root

STEADY = RootRotationState()
TRUST_BOTH = RootRotationState(trusted=(1, 2), signing=1, phase="trust-both")
SWITCH = RootRotationState(trusted=(1, 2), signing=2, phase="switch")
RETIRE = RootRotationState(trusted=(2,), signing=2, phase="retire")


@pytest.mark.parametrize(
    ("applied", "wanted", "result"),
    [
        (STEADY, None, STEADY),
        (STEADY, "trust-both", TRUST_BOTH),
        (TRUST_BOTH, "trust-both", TRUST_BOTH),
        (TRUST_BOTH, "switch", SWITCH),
        (SWITCH, "switch", SWITCH),
        (SWITCH, "retire", RETIRE),
        (RETIRE, "retire", RETIRE),
        (RETIRE, None, RootRotationState(trusted=(2,), signing=2)),
        (SWITCH, "trust-both", TRUST_BOTH),  # one phase back
        (RETIRE, "trust-both", RootRotationState(trusted=(2, 3), signing=2, phase="trust-both")),  # the next rotation
        (TRUST_BOTH, None, STEADY),  # an abort: the new generation leaves the state
        (
            RootRotationState(trusted=(1, 2), signing=1, phase="trust-both", shared_keys={2: 1}),
            None,
            STEADY,
        ),  # a same-key renewal aborted
    ],
    ids=[
        "steady",
        "trust both",
        "again",
        "switch",
        "again ",
        "retire",
        "again  ",
        "steady after",
        "back",
        "next",
        "abort",
        "abort same key",
    ],
)
def test_each_phase_holds_what_it_promises(
    applied: RootRotationState, wanted: str | None, result: RootRotationState
) -> None:
    assert next_rotation_state(applied, wanted) == result


@pytest.mark.parametrize(
    ("applied", "wanted", "message"),
    [
        (STEADY, "switch", "'switch' cannot follow no rotation (the steady state): the next phase is 'trust-both'"),
        (STEADY, "retire", "'retire' cannot follow no rotation"),
        (TRUST_BOTH, "retire", "'retire' cannot follow trust-both: the next phase is 'switch'"),
        (RETIRE, "switch", "after 'retire': retire is one-way"),
        (
            SWITCH,
            None,
            "a root rotation is in phase 'switch': set rootRotation.phase to go on ('retire'), or back to "
            "'trust-both' and then remove rootRotation to abort it",
        ),
    ],
    ids=["skip to switch", "skip to retire", "skip switch", "back from retire", "dropped after switch"],
)
def test_a_skipped_phase_or_a_step_back_from_retire_is_refused(
    applied: RootRotationState, wanted: str | None, message: str
) -> None:
    with pytest.raises(RotationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        next_rotation_state(applied, wanted)


def test_a_same_key_renewal_reuses_the_signing_roots_key() -> None:
    renewed = next_rotation_state(STEADY, "trust-both", same_key=True)
    assert renewed.trusted == (1, 2) and renewed.key_owner(2) == 1
    assert RootRotationState.from_output(renewed.to_output()) == renewed


def test_the_program_builds_the_phase_from_the_last_runs_outputs() -> None:
    config = {"clusters": [{"name": "east"}], "rootRotation": {"phase": "switch"}}
    run = run_program(config, last_outputs={"rootGenerations": TRUST_BOTH.to_output()})
    names = {r.name for r in run.recorder.of_type("tls:index/selfSignedCert:SelfSignedCert")}
    assert names == {"root-cert", "root-g2-cert"}
    assert (
        run.recorder.named("east-cert")
        .inputs["caCertPem"]
        .startswith("-----BEGIN CERTIFICATE-----\nfake-cert-of-root-g2-cert")
    )
    assert run.outputs["rootGenerations"][0] == SWITCH.to_output()
    with pytest.raises(RotationError, match="'switch' cannot follow no rotation"):
        run_program(config)  # a first run has generation 1 alone


def test_an_expired_root_stops_the_run_unless_a_rotation_is_under_way() -> None:
    config: dict[str, object] = {"clusters": [{"name": "east"}]}
    expired = {"rootNotAfter": "2020-01-01T00:00:00.000000001Z"}
    with pytest.raises(
        ConfigError, match=r"the root ended on 2020-01-01T00:00:00Z: .*rootRotation.phase to trust-both"
    ):
        run_program(config, last_outputs=expired)
    run_program({**config, "rootRotation": {"phase": "trust-both"}}, last_outputs=expired)
    run_program(config, last_outputs={"rootNotAfter": "2099-01-01T00:00:00Z"})


def test_an_adopted_root_rotates_away_through_the_same_phases() -> None:
    root_cert, root_key = make_root()
    config: dict[str, object] = {
        "clusters": [{"name": "east"}],
        "existingRoot": {"certPem": root_cert, "keyPem": root_key},
        "root": {"keyAlgorithm": "ECDSA"},  # the new root's settings
        "rootRotation": {"phase": "trust-both"},
    }
    run = run_program(config, secret_keys=["existingRoot"])
    new_root = run.recorder.named("root-g2-cert")
    assert new_root.parent.endswith("istio-ca:index:ExistingRoot::root")
    assert run.recorder.named("root-g2-key").inputs["algorithm"] == "ECDSA"
    assert run.recorder.named("east-cert").inputs["caCertPem"] == root_cert  # the adopted root still signs
    assert run.outputs["rootGenerations"][0]["adopted"] is True
    assert run.outputs["trustedRootsPem"][0] == root_cert + fake_cert("root-g2-cert")

    trust_both = RootRotationState.from_output(run.outputs["rootGenerations"][0])
    switched = run_program(
        {**config, "rootRotation": {"phase": "switch"}},
        secret_keys=["existingRoot"],
        last_outputs={"rootGenerations": trust_both.to_output()},
    )
    assert switched.recorder.named("east-cert").inputs["caCertPem"] == fake_cert("root-g2-cert")


def test_the_adopted_root_stays_in_the_config_until_it_is_retired() -> None:
    applied = RootRotationState(trusted=(1, 2), signing=2, phase="switch", adopted=True)
    with pytest.raises(RotationError, match="keep existingRoot in the config until a rotation has retired it"):
        run_program({"clusters": [{"name": "east"}]}, last_outputs={"rootGenerations": applied.to_output()})
    retired = RootRotationState(trusted=(2,), signing=2, phase="retire", adopted=True)
    run = run_program({"clusters": [{"name": "east"}]}, last_outputs={"rootGenerations": retired.to_output()})
    assert {r.name for r in run.recorder.of_type("tls:index/selfSignedCert:SelfSignedCert")} == {"root-g2-cert"}


def test_changed_root_settings_keep_the_root_and_say_so(monkeypatch: pytest.MonkeyPatch) -> None:
    warnings: list[str] = []
    monkeypatch.setattr(pulumi.log, "warn", lambda message, *args, **kwargs: warnings.append(message))
    first = run_program({"clusters": [{"name": "east"}]})
    last = {key: value for key, (value, _) in first.outputs.items()}
    run_program({"clusters": [{"name": "east"}], "root": {"days": 7300, "org": "Acme"}}, last_outputs=last)
    (message,) = [w for w in warnings if "root settings changed" in w]
    assert message.startswith("root settings changed (days, org): the current root is kept")


def test_a_same_key_renewal_of_an_adopted_root_keeps_existing_root_while_its_key_signs() -> None:
    renewed = RootRotationState(trusted=(2,), signing=2, phase="retire", shared_keys={2: 1}, adopted=True)
    with pytest.raises(RotationError, match="keep existingRoot \\(its key signs\\)"):
        refuse_to_drop_an_adopted_root(renewed)
    refuse_to_drop_an_adopted_root(RootRotationState(trusted=(2,), signing=2, phase="retire", adopted=True))


@pytest.mark.parametrize(
    ("applied", "wanted", "protected", "released"),
    [
        (None, None, {"root-key", "root-cert"}, set()),
        (STEADY, "trust-both", {"root-key", "root-cert"}, {"root-g2-key", "root-g2-cert"}),  # abort may remove it
        (TRUST_BOTH, "switch", {"root-g2-key", "root-g2-cert"}, {"root-key", "root-cert"}),  # retire removes it
        (RETIRE, None, {"root-g2-key", "root-g2-cert"}, set()),
    ],
    ids=["steady", "trust both", "switch", "after"],
)
def test_the_signing_roots_key_and_certificate_are_protected(
    applied: RootRotationState | None, wanted: str | None, protected: set[str], released: set[str]
) -> None:
    config: dict[str, object] = {"clusters": [{"name": "east"}]}
    if wanted is not None:
        config["rootRotation"] = {"phase": wanted}
    last = {"rootGenerations": applied.to_output()} if applied else None
    requests = run_program(config, last_outputs=last).recorder.requests
    roots = {name for name in requests if name.startswith("root-")}
    assert roots == protected | released
    assert {name for name in roots if requests[name].protect} == protected


def test_a_same_key_renewal_keeps_the_shared_key_protected_after_retire() -> None:
    renewed = RootRotationState(trusted=(2,), signing=2, phase="retire", shared_keys={2: 1})
    requests = run_program({"clusters": [{"name": "east"}]}, last_outputs={"rootGenerations": renewed.to_output()})
    roots = {name: request.protect for name, request in requests.recorder.requests.items() if name.startswith("root-")}
    assert roots == {"root-key": True, "root-g2-cert": True}


ROOT_SETTINGS = {"org": "cluster.local", "commonName": "Root CA", "days": 3650, "keyAlgorithm": "RSA", "keySize": 4096}


@pytest.mark.parametrize(
    ("applied", "same_key", "settings", "message"),
    [
        (TRUST_BOTH, True, ROOT_SETTINGS, "rootRotation.sameKey is true, but the new root was made with a new key"),
        (
            RootRotationState(trusted=(1, 2), signing=2, phase="switch", shared_keys={2: 1}),
            False,
            ROOT_SETTINGS,
            "sameKey is false, but the new root was made with the old root's key when 'trust-both' was applied",
        ),
        (TRUST_BOTH, False, {**ROOT_SETTINGS, "days": 7300}, r"root settings changed \(days\) after"),
    ],
    ids=["same key set late", "same key dropped", "root settings"],
)
def test_rotation_settings_changed_after_trust_both_are_refused_with_the_way_out(
    applied: RootRotationState, same_key: bool, settings: dict[str, object], message: str
) -> None:
    with pytest.raises(RotationError, match=message) as error:
        refuse_a_changed_rotation(applied, same_key, ROOT_SETTINGS, settings)
    assert "abort first (remove rootRotation while in 'trust-both')" in str(error.value)


def test_unchanged_rotation_settings_an_abort_or_the_steady_state_pass() -> None:
    refuse_a_changed_rotation(TRUST_BOTH, False, ROOT_SETTINGS, ROOT_SETTINGS)
    refuse_a_changed_rotation(TRUST_BOTH, None, ROOT_SETTINGS, {**ROOT_SETTINGS, "days": 1})  # an abort
    refuse_a_changed_rotation(STEADY, True, ROOT_SETTINGS, {**ROOT_SETTINGS, "days": 1})  # the next rotation's


def test_a_lowered_key_generation_is_refused() -> None:
    last = {"rootGenerations": STEADY.to_output(), "clusters": {"east": {"keyGeneration": 3}}}
    with pytest.raises(ConfigError, match=r"clusters\[0\].keyGeneration is 2, lower than the 3 the last run applied"):
        run_program({"clusters": [{"name": "east", "keyGeneration": 2}]}, last_outputs=last)
    run_program({"clusters": [{"name": "east", "keyGeneration": 3}]}, last_outputs=last)


def test_an_adopted_root_rotates_to_a_new_key_only() -> None:
    root_cert, root_key = make_root()
    config: dict[str, object] = {
        "clusters": [{"name": "east"}],
        "existingRoot": {"certPem": root_cert, "keyPem": root_key},
        "rootRotation": {"phase": "trust-both", "sameKey": True},
    }
    with pytest.raises(ConfigError, match=r"an adopted root \(existingRoot\) rotates to a new key only"):
        run_program(config, secret_keys=["existingRoot"])
