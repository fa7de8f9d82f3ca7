"""`pulumi up`, preview, a targeted change and destroy against two real API servers.

The first tests read one deployed stack and change nothing; every test that changes a stack
makes its own, in its own namespace, so the tests pass in any order.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from istio_ca.config import parse_settings
from istio_ca.profiles import INTERMEDIATE_CA, ROOT_CA
from istio_ca.settings import ClusterSettings, KeySettings, StackSettings
from tests.e2e.local_cluster import LocalCluster
from tests.e2e.pulumi_cli import Workspace, new_workspace
from tests.e2e.stacks import FAST_KEYS, namespaced_workspace
from tests.x509_checks import (
    CACERTS_KEYS,
    check_certificate,
    check_key_matches,
    check_path_length,
    load_certificates,
    subject_of,
)

NAMESPACE = "istio-system"


@dataclass
class Deployment:
    workspace: Workspace
    clusters: dict[str, LocalCluster]
    config: dict[str, Any]

    @property
    def settings(self) -> StackSettings:
        return parse_settings(self.config)

    def cluster_settings(self, name: str) -> ClusterSettings:
        (cluster,) = [c for c in self.settings.clusters if c.name == name]
        return cluster

    def cacerts(self, name: str) -> dict[str, str]:
        return self.clusters[name].secret_data(NAMESPACE, "cacerts")

    def apply(self, config: dict[str, Any]) -> None:
        self.config = config
        self.workspace.write_config(config)


def two_cluster_config(clusters: dict[str, LocalCluster], **cluster1: Any) -> dict[str, Any]:
    return {
        "clusters": [
            {"name": "cluster1", "kubeconfig": str(clusters["cluster1"].kubeconfig), **cluster1},
            {"name": "cluster2", "kubeconfig": str(clusters["cluster2"].kubeconfig)},
        ]
    }


@pytest.fixture(scope="module")
def deployment(
    pulumi_env: dict[str, str], clusters: dict[str, LocalCluster], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    for cluster in clusters.values():
        cluster.create_namespace(NAMESPACE)  # Istio's namespace exists before its CA does
    workspace = new_workspace(tmp_path_factory.mktemp("two-clusters") / "project", "e2e", pulumi_env)
    deployment = Deployment(workspace, clusters, config={})
    deployment.apply(two_cluster_config(clusters))
    workspace.up()
    yield deployment


def test_up_writes_cacerts_with_the_four_files_into_each_cluster(deployment: Deployment) -> None:
    for name, cluster in deployment.clusters.items():
        secret = cluster.secret(NAMESPACE, "cacerts")
        assert secret is not None, name
        assert secret["type"] == "Opaque"
        assert set(secret["data"]) == CACERTS_KEYS


def test_each_intermediate_chains_to_the_shared_root_with_the_makefile_extensions(deployment: Deployment) -> None:
    roots = set()
    for name in deployment.clusters:
        files = deployment.cacerts(name)
        (root,) = load_certificates(files["root-cert.pem"])
        (intermediate,) = load_certificates(files["ca-cert.pem"])
        settings = deployment.cluster_settings(name)
        check_certificate(
            root,
            profile=ROOT_CA,
            settings=deployment.settings.root,
            subject=subject_of(deployment.settings.root),
            issuer=root,
        )
        check_certificate(
            intermediate,
            profile=INTERMEDIATE_CA,
            settings=settings.intermediate,
            subject=subject_of(settings.intermediate, locality=name),
            issuer=root,
            dns_names=settings.dns_names,
        )
        check_key_matches(intermediate, files["ca-key.pem"])
        assert load_certificates(files["cert-chain.pem"]) == [intermediate, root]
        roots.add(root)
    assert len(roots) == 1, "every cluster must trust the same root"


class MissingPathLength(Exception):
    """The intermediate's basicConstraints carry no pathlen at all."""


@pytest.mark.xfail(
    strict=True,
    raises=MissingPathLength,
    reason="pulumi-tls (terraform-provider-tls) never sets Go's MaxPathLenZero, so max_path_length=0 "
    "yields no pathlen; strict, so a provider that fixes it turns this red and the README gets updated",
)
def test_intermediate_carries_pathlen_zero(deployment: Deployment) -> None:
    (intermediate,) = load_certificates(deployment.cacerts("cluster1")["ca-cert.pem"])
    basic = intermediate.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca
    if basic.value.path_length is None:
        raise MissingPathLength  # exactly the known gap; any other pathlen fails below
    check_path_length(intermediate, INTERMEDIATE_CA)


def test_openssl_verifies_each_intermediate_against_the_root(deployment: Deployment, tmp_path: Path) -> None:
    for name in deployment.clusters:
        files = deployment.cacerts(name)
        (tmp_path / "root.pem").write_text(files["root-cert.pem"])
        (tmp_path / "ca.pem").write_text(files["ca-cert.pem"])
        result = subprocess.run(
            ["openssl", "verify", "-x509_strict", "-CAfile", "root.pem", "ca.pem"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0 and result.stdout.strip() == "ca.pem: OK", result.stdout + result.stderr


def test_stack_outputs_match_what_the_clusters_hold(deployment: Deployment) -> None:
    outputs = deployment.workspace.outputs()
    assert set(outputs) == {
        "rootCertPem",
        "rootNotAfter",
        "trustedRootsPem",
        "rootGenerations",
        "rootSettings",
        "clusters",
    }
    assert outputs["trustedRootsPem"] == outputs["rootCertPem"]
    assert outputs["rootGenerations"] == {
        "trusted": [1],
        "signing": 1,
        "phase": None,
        "keyOf": {},
        "adopted": False,
    }
    for name in deployment.clusters:
        files = deployment.cacerts(name)
        assert outputs["rootCertPem"] == files["root-cert.pem"]
        assert outputs["clusters"][name]["certPem"] == files["ca-cert.pem"]
        assert outputs["clusters"][name]["certChainPem"] == files["cert-chain.pem"]
        (intermediate,) = load_certificates(files["ca-cert.pem"])
        # RFC 3339 with the provider's nanoseconds; the certificate keeps whole seconds.
        not_after = outputs["clusters"][name]["notAfter"]
        assert not_after[:19] == intermediate.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%S")


def test_a_second_run_changes_nothing(deployment: Deployment) -> None:
    before = {name: deployment.cacerts(name) for name in deployment.clusters}
    deployment.workspace.run("preview", "--expect-no-changes")
    deployment.workspace.up()
    assert {name: deployment.cacerts(name) for name in deployment.clusters} == before


def test_changing_one_cluster_reissues_only_its_intermediate_and_updates_its_secret(
    pulumi_env: dict[str, str], clusters: dict[str, LocalCluster], tmp_path_factory: pytest.TempPathFactory
) -> None:
    namespace = "istio-targeted"
    workspace = namespaced_workspace(pulumi_env, clusters, tmp_path_factory, namespace, intermediate=FAST_KEYS)
    workspace.up()
    before = {name: cluster.secret(namespace, "cacerts") for name, cluster in clusters.items()}
    config = workspace.config()
    config["clusters"][0]["intermediate"] = {"days": 365}
    workspace.write_config(config)

    assert workspace.planned_changes() == {"cluster1-cert": "replace", "cluster1-cacerts": "update"}

    workspace.up()
    after = {name: cluster.secret(namespace, "cacerts") for name, cluster in clusters.items()}
    assert after["cluster2"] == before["cluster2"]  # untouched, to the resourceVersion
    cluster1_before, cluster1_after = before["cluster1"], after["cluster1"]
    assert cluster1_before is not None and cluster1_after is not None
    assert cluster1_after["metadata"]["uid"] == cluster1_before["metadata"]["uid"]  # updated, not re-created
    assert cluster1_after["data"]["ca-key.pem"] == cluster1_before["data"]["ca-key.pem"]
    assert cluster1_after["data"]["root-cert.pem"] == cluster1_before["data"]["root-cert.pem"]
    (intermediate,) = load_certificates(clusters["cluster1"].secret_data(namespace, "cacerts")["ca-cert.pem"])
    assert (intermediate.not_valid_after_utc - intermediate.not_valid_before_utc).days == 365
    workspace.destroy()


def test_no_private_key_in_cli_output_or_plain_state(deployment: Deployment) -> None:
    key_lines = set()
    for name in deployment.clusters:
        pem = deployment.cacerts(name)["ca-key.pem"]
        key_lines |= {line for line in pem.splitlines() if "-----" not in line}
    state = deployment.workspace.export()
    transcripts = "\n".join(deployment.workspace.transcripts)
    for line in key_lines:
        assert line not in state
        assert line not in transcripts
    assert "PRIVATE KEY" not in state
    assert '"ciphertext"' in state  # the keys are there, encrypted


def test_destroy_keeps_the_secrets_and_a_created_namespace(
    pulumi_env: dict[str, str], clusters: dict[str, LocalCluster], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """An istiod restarting without `cacerts` would mint a new self-signed root: destroy leaves it."""
    workspace = namespaced_workspace(pulumi_env, clusters, tmp_path_factory, "istio-destroy", intermediate=FAST_KEYS)
    config = workspace.config()
    config.update(istioNamespace="mesh-created", createNamespace=True)
    workspace.write_config(config)
    workspace.up()
    written = {name: cluster.secret_data("mesh-created", "cacerts") for name, cluster in clusters.items()}
    workspace.destroy()
    for name, cluster in clusters.items():
        assert cluster.namespace_exists("mesh-created")
        assert cluster.secret_data("mesh-created", "cacerts") == written[name]
    assert workspace.resources() == {}


def test_ecdsa_root_and_intermediates_on_both_curves(
    pulumi_env: dict[str, str], clusters: dict[str, LocalCluster], tmp_path_factory: pytest.TempPathFactory
) -> None:
    namespace = "istio-ecdsa"
    workspace = namespaced_workspace(
        pulumi_env,
        clusters,
        tmp_path_factory,
        namespace,
        root={"keyAlgorithm": "ECDSA", "keySize": 384},
        intermediate={"keyAlgorithm": "ECDSA"},
    )
    config = workspace.config()
    config["clusters"][1]["intermediate"] = {"keyAlgorithm": "ECDSA", "keySize": 384}
    workspace.write_config(config)
    workspace.up()
    settings = parse_settings(config)
    assert settings.root.key == KeySettings("ECDSA", 384)
    assert [c.intermediate.key.size for c in settings.clusters] == [256, 384]
    for cluster_settings in settings.clusters:
        files = clusters[cluster_settings.name].secret_data(namespace, "cacerts")
        (root,) = load_certificates(files["root-cert.pem"])
        (intermediate,) = load_certificates(files["ca-cert.pem"])
        check_certificate(root, profile=ROOT_CA, settings=settings.root, subject=subject_of(settings.root), issuer=root)
        check_certificate(
            intermediate,
            profile=INTERMEDIATE_CA,
            settings=cluster_settings.intermediate,
            subject=subject_of(cluster_settings.intermediate, locality=cluster_settings.name),
            issuer=root,
            dns_names=cluster_settings.dns_names,
        )
        check_key_matches(intermediate, files["ca-key.pem"])
    workspace.run("preview", "--expect-no-changes")
    workspace.destroy()
