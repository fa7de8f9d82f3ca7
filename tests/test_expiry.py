"""Renewal windows: their defaults and overrides, the dates they open, and the warnings when they are due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pulumi
import pytest

from istio_ca.config import parse_settings
from istio_ca.expiry import renewal_opens, warn_when_due, warn_when_the_root_ends_first
from tests.program import run_program, use_mocks

CLUSTERS: dict[str, Any] = {"clusters": [{"name": "east"}, {"name": "west"}]}


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.123456789Z")  # as the provider writes it


def test_intermediates_renew_in_the_last_third_of_their_life_by_default() -> None:
    east, west = parse_settings(CLUSTERS).clusters
    assert east.renew_before_hours == west.renew_before_hours == 730 * 24 // 3


def test_the_window_is_set_stack_wide_and_per_cluster_and_for_workloads() -> None:
    settings = parse_settings(
        {
            "clusters": [{"name": "east", "intermediate": {"renewBeforeDays": 10}}, {"name": "west"}],
            "intermediate": {"renewBeforeDays": 60},
            "workloads": [{"namespace": "vm", "days": 3, "renewBeforeDays": 1}, {"namespace": "vm2"}],
        }
    )
    east, west = settings.clusters
    assert (east.renew_before_hours, west.renew_before_hours) == (10 * 24, 60 * 24)
    vm, vm2 = settings.workloads
    assert (vm.renew_before_hours, vm.intermediate_renew_before_hours) == (24, 60 * 24)
    assert vm2.renew_before_hours == 8  # a third of the 1-day default


def test_the_window_reaches_the_certificates_and_a_new_key_generation_only_its_cluster() -> None:
    run = run_program(
        {"clusters": [{"name": "east", "keyGeneration": 2}, {"name": "west"}], "intermediate": {"renewBeforeDays": 30}}
    )
    for cluster in ("east", "west"):
        assert run.recorder.named(f"{cluster}-cert").inputs["earlyRenewalHours"] == 30 * 24
    assert run.recorder.requests["east-key"].replacement_trigger.number_value == 2
    assert run.recorder.requests["west-key"].replacement_trigger.number_value == 1
    assert "earlyRenewalHours" not in run.recorder.named("root-cert").inputs  # a root renews only explicitly


def test_renewal_opens_that_long_before_not_after() -> None:
    use_mocks()
    seen: dict[str, str] = {}

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def check() -> pulumi.Output[Any]:
        return renewal_opens("2030-03-31T12:00:00.999999999Z", 36).apply(lambda opens: seen.update(opens=opens))

    check()
    assert seen == {"opens": "2030-03-30T00:00:00Z"}


@pytest.mark.parametrize(
    ("ends_in", "renew_before_hours", "warning"),
    [
        (timedelta(days=100), 24 * 30, None),
        (timedelta(days=20), 24 * 30, "the intermediate CA of east is inside its renewal window"),
        (timedelta(days=-1), 24 * 30, "the intermediate CA of east expired on"),
    ],
    ids=["far", "inside its window", "expired"],
)
def test_a_certificate_inside_its_window_or_expired_is_warned_of(
    ends_in: timedelta, renew_before_hours: int, warning: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    warnings: list[str] = []
    monkeypatch.setattr(pulumi.log, "warn", lambda message, *args, **kwargs: warnings.append(message))
    warn_when_due("the intermediate CA of east", stamp(datetime.now(UTC) + ends_in), renew_before_hours)
    if warning is None:
        assert warnings == []
    else:
        (message,) = warnings
        assert message.startswith(warning) and "the next `pulumi up` re-issues it" in message


def test_a_root_ending_before_a_renewed_intermediate_would_is_warned_of(monkeypatch: pytest.MonkeyPatch) -> None:
    warnings: list[str] = []
    monkeypatch.setattr(pulumi.log, "warn", lambda message, *args, **kwargs: warnings.append(message))
    use_mocks()

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def check() -> None:
        warn_when_the_root_ends_first(
            "2030-01-01T00:00:00Z", "the intermediate CA of east", "2029-06-01T00:00:00Z", 730
        )
        warn_when_the_root_ends_first(
            "2040-01-01T00:00:00Z", "the intermediate CA of west", "2029-06-01T00:00:00Z", 730
        )

    check()
    (message,) = warnings
    assert message.startswith("the root ends 2030-01-01T00:00:00Z, before the intermediate CA of east re-issued")


def test_each_run_warns_of_what_the_last_run_issued_that_is_now_due(monkeypatch: pytest.MonkeyPatch) -> None:
    warnings: list[str] = []
    monkeypatch.setattr(pulumi.log, "warn", lambda message, *args, **kwargs: warnings.append(message))
    soon, later = stamp(datetime.now(UTC) + timedelta(days=10)), stamp(datetime.now(UTC) + timedelta(days=700))
    run_program(
        {**CLUSTERS, "workloads": [{"namespace": "vm"}]},
        preview=True,
        last_outputs={
            "clusters": {"east": {"notAfter": soon}, "west": {"notAfter": later}},
            "workloads": {"vm": {"notAfter": stamp(datetime.now(UTC) - timedelta(hours=1))}},
        },
    )
    due = sorted(message for message in warnings if "re-issues it" in message)
    assert len(due) == 2
    assert due[0].startswith("the intermediate CA of east is inside its renewal window")
    assert due[1].startswith("the workload certificate of vm expired on")
