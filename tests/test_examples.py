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


def test_the_split_workflow_runs_cluster_stacks_then_the_pki_then_the_cluster_stacks() -> None:
    workflow = yaml.safe_load((PROJECT_DIR / "examples" / "split" / "ci.yml").read_text())
    jobs = workflow["jobs"]
    assert (jobs["sign"]["needs"], jobs["install"]["needs"]) == ("requests", "sign")
    assert jobs["requests"]["strategy"]["matrix"]["cluster"] == jobs["install"]["strategy"]["matrix"]["cluster"]
    runs = {name: [step.get("run", "") for step in job["steps"]] for name, job in jobs.items()}
    cluster_up = "pulumi up --yes --non-interactive --cwd examples/split/cluster --stack ${{ matrix.cluster }}"
    assert runs["requests"][-1] == runs["install"][-1] == cluster_up
    assert runs["sign"][-1] == "pulumi up --yes --non-interactive --cwd examples/split/pki --stack prod"
    for project in ("pki", "cluster"):  # each example names the checkout it is in, as a host stack would
        assert "../../..\n" in (PROJECT_DIR / "examples" / "split" / project / "requirements.txt").read_text()
