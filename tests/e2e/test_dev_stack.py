"""The shipped dev stack: no cluster, so `pulumi up` renders manifests to rendered/<cluster>/."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml

from istio_ca.config import parse_settings
from istio_ca.profiles import INTERMEDIATE_CA
from tests.e2e.pulumi_cli import new_workspace
from tests.x509_checks import CACERTS_KEYS, check_certificate, check_key_matches, load_certificates, subject_of


def rendered_objects(directory: Path) -> list[dict[str, Any]]:
    return [
        document
        for path in sorted(directory.rglob("*.yaml"))
        for document in yaml.safe_load_all(path.read_text())
        if document
    ]


def test_dev_stack_renders_a_cacerts_secret_per_cluster(
    pulumi_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    workspace = new_workspace(tmp_path_factory.mktemp("dev") / "project", "dev", pulumi_env)
    workspace.up()
    config = yaml.safe_load((workspace.directory / "Pulumi.dev.yaml").read_text())["config"]
    settings = parse_settings({key.removeprefix("istio-ca:"): value for key, value in config.items()})
    assert [c.name for c in settings.clusters] == ["cluster1", "cluster2"]
    roots = set()
    for cluster in settings.clusters:
        objects = rendered_objects(workspace.directory / "rendered" / cluster.name)
        assert [(o["kind"], o["metadata"]["name"], o["metadata"]["namespace"]) for o in objects] == [
            ("Secret", "cacerts", "istio-system")
        ]
        (secret,) = objects
        assert secret["type"] == "Opaque"
        files = {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}
        assert set(files) == CACERTS_KEYS
        (root,) = load_certificates(files["root-cert.pem"])
        (intermediate,) = load_certificates(files["ca-cert.pem"])
        check_certificate(
            intermediate,
            profile=INTERMEDIATE_CA,
            settings=cluster.intermediate,
            subject=subject_of(cluster.intermediate, locality=cluster.name),
            issuer=root,
            dns_names=cluster.dns_names,
        )
        check_key_matches(intermediate, files["ca-key.pem"])
        assert load_certificates(files["cert-chain.pem"]) == [intermediate, root]
        roots.add(root)
    assert len(roots) == 1
    workspace.run("preview", "--expect-no-changes")
