"""The project files Pulumi reads are valid and say what the README says."""

from __future__ import annotations

from typing import Any

import yaml

from istio_ca.config import parse_settings
from tests.program import PROJECT_DIR


def load(name: str) -> dict[str, Any]:
    document = yaml.safe_load((PROJECT_DIR / name).read_text())
    assert isinstance(document, dict)
    return document


def test_pulumi_yaml_declares_the_python_project() -> None:
    project = load("Pulumi.yaml")
    assert project["name"] == "istio-ca"
    assert project["runtime"] == {"name": "python", "options": {"toolchain": "pip", "virtualenv": ".venv"}}


def test_dev_stack_is_two_clusters_in_render_mode() -> None:
    config = load("Pulumi.dev.yaml")["config"]
    assert all(key.startswith("istio-ca:") for key in config)
    settings = parse_settings({key.removeprefix("istio-ca:"): value for key, value in config.items()})
    assert [(c.name, c.kubeconfig, c.render_directory) for c in settings.clusters] == [
        ("cluster1", None, "rendered/cluster1"),
        ("cluster2", None, "rendered/cluster2"),
    ]
