"""The shipped examples do what the README says."""

from __future__ import annotations

import yaml

from tests.program import PROJECT_DIR


def test_the_renewal_schedule_alarms_with_a_preview_then_renews_with_up() -> None:
    workflow = yaml.safe_load((PROJECT_DIR / "examples" / "renewal-schedule.yml").read_text())
    assert workflow[True]["schedule"]  # `on:` reads as True in YAML 1.1
    steps = workflow["jobs"]["renew"]["steps"]
    runs = [step.get("run", "") for step in steps]
    alarm = next(i for i, run in enumerate(runs) if "pulumi preview" in run)
    renew = next(i for i, run in enumerate(runs) if "pulumi up" in run)
    assert "--expect-no-changes" in runs[alarm] and alarm < renew
    assert steps[renew]["if"] == f"steps.{steps[alarm]['id']}.outcome == 'failure'"
