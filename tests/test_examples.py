"""The shipped examples do what the README says."""

from __future__ import annotations

import re

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


def test_the_readmes_host_stack_snippet_is_the_example_the_e2e_suite_runs() -> None:
    readme = (PROJECT_DIR / "README.md").read_text()
    section = readme.split("## Use it from your own Python stack", 1)[1].split("\n## ", 1)[0]
    (snippet,) = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    example = PROJECT_DIR / "examples" / "host-stack"
    assert snippet == (example / "__main__.py").read_text()  # run by tests/e2e/test_host_stack.py
    requirements = [line for line in (example / "requirements.txt").read_text().splitlines() if line[:1] not in "#"]
    assert requirements == ["../.."]  # istio-ca from the checkout, as tests/installed.py installs it
