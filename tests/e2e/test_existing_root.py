"""Migration: the per-cluster intermediates chain to a root the mesh already trusts."""

from __future__ import annotations

import json

import pytest

from tests.e2e.local_cluster import LocalCluster
from tests.e2e.pulumi_cli import Workspace, new_workspace
from tests.roots import make_root
from tests.x509_checks import load_certificates


def assert_signed_by(clusters: dict[str, LocalCluster], namespace: str, root_pem: str) -> None:
    (root,) = load_certificates(root_pem)
    for name, cluster in clusters.items():
        files = cluster.secret_data(namespace, "cacerts")
        assert files["root-cert.pem"] == root_pem, name
        (intermediate,) = load_certificates(files["ca-cert.pem"])
        intermediate.verify_directly_issued_by(root)
        assert load_certificates(files["cert-chain.pem"]) == [intermediate, root]


def adopting_workspace(
    pulumi_env: dict[str, str],
    clusters: dict[str, LocalCluster],
    tmp_path_factory: pytest.TempPathFactory,
    namespace: str,
) -> Workspace:
    for cluster in clusters.values():
        cluster.create_namespace(namespace)
    workspace = new_workspace(tmp_path_factory.mktemp(namespace) / "project", namespace, pulumi_env)
    workspace.write_config(
        {
            "istioNamespace": namespace,
            "clusters": [{"name": name, "kubeconfig": str(c.kubeconfig)} for name, c in clusters.items()],
        }
    )
    return workspace


def set_root_in_config(workspace: Workspace, cert_pem: str, key_pem: str) -> None:
    """As the README says: the PEMs through stdin, the key as a secret."""
    workspace.run("config", "set", "--path", "istio-ca:existingRoot.certPem", stdin=cert_pem)
    workspace.run("config", "set", "--secret", "--path", "istio-ca:existingRoot.keyPem", stdin=key_pem)


def test_adopts_istiods_self_signed_root_from_istio_ca_secret(
    pulumi_env: dict[str, str], clusters: dict[str, LocalCluster], tmp_path_factory: pytest.TempPathFactory
) -> None:
    namespace = "istio-adopt"
    workspace = adopting_workspace(pulumi_env, clusters, tmp_path_factory, namespace)
    root_cert, root_key = make_root()
    # What istiod's self-signed CA leaves behind.
    clusters["cluster1"].create_secret(
        namespace,
        "istio-ca-secret",
        {"ca-cert.pem": root_cert, "ca-key.pem": root_key, "cert-chain.pem": "", "key.pem": "", "root-cert.pem": ""},
        type_="istio.io/ca-root",
    )
    workspace.run("config", "set", "--path", "istio-ca:existingRoot.fromCluster", "cluster1")
    workspace.up()

    assert_signed_by(clusters, namespace, root_cert)
    assert workspace.outputs()["rootCertPem"] == root_cert
    assert root_key.splitlines()[1] not in workspace.export()
    workspace.run("destroy", "--yes", "--skip-preview")
    assert clusters["cluster1"].secret(namespace, "istio-ca-secret") is not None  # read, never owned


def test_never_adopts_the_cacerts_it_replaces(
    pulumi_env: dict[str, str], clusters: dict[str, LocalCluster], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A root kept in `cacerts` would be overwritten by this very stack: it must be imported as config."""
    namespace = "istio-adopt-cacerts"
    workspace = adopting_workspace(pulumi_env, clusters, tmp_path_factory, namespace)
    root_cert, root_key = make_root()
    clusters["cluster2"].create_secret(namespace, "cacerts", {"ca-cert.pem": root_cert, "ca-key.pem": root_key})
    workspace.run("config", "set", "--path", "istio-ca:existingRoot.fromCluster", "cluster2")
    result = workspace.run("up", "--yes", check=False)
    assert result.returncode != 0
    assert f"namespace {namespace} has no Secret istio-ca-secret" in result.stdout + result.stderr
    assert clusters["cluster2"].secret_data(namespace, "cacerts")["ca-cert.pem"] == root_cert  # untouched
    assert clusters["cluster1"].secret(namespace, "cacerts") is None


def test_adopts_a_root_given_as_config_with_its_key_a_secret(
    pulumi_env: dict[str, str], clusters: dict[str, LocalCluster], tmp_path_factory: pytest.TempPathFactory
) -> None:
    namespace = "istio-adopt-config"
    workspace = adopting_workspace(pulumi_env, clusters, tmp_path_factory, namespace)
    root_cert, root_key = make_root()
    set_root_in_config(workspace, root_cert, root_key)
    stack_file = (workspace.directory / f"Pulumi.{namespace}.yaml").read_text()
    assert "PRIVATE KEY" not in stack_file and "secure:" in stack_file
    workspace.up()

    assert_signed_by(clusters, namespace, root_cert)
    assert root_key.splitlines()[1] not in workspace.export()
    workspace.run("destroy", "--yes", "--skip-preview")


def test_refuses_a_key_that_does_not_match_before_creating_anything(
    pulumi_env: dict[str, str], clusters: dict[str, LocalCluster], tmp_path_factory: pytest.TempPathFactory
) -> None:
    namespace = "istio-adopt-bad"
    workspace = adopting_workspace(pulumi_env, clusters, tmp_path_factory, namespace)
    root_cert, _ = make_root()
    _, other_key = make_root()
    set_root_in_config(workspace, root_cert, other_key)
    result = workspace.run("up", "--yes", check=False)
    assert result.returncode != 0
    assert "the existing root key does not match the certificate" in result.stdout + result.stderr
    for cluster in clusters.values():
        assert cluster.secret(namespace, "cacerts") is None
    resources = json.loads(workspace.export())["deployment"].get("resources") or []
    assert {r["type"] for r in resources} <= {"pulumi:pulumi:Stack"}  # nothing half-created
