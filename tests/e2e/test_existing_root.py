"""Migration: the per-cluster intermediates chain to a root the mesh already trusts."""

from __future__ import annotations

from pathlib import Path

import pytest

from istio_ca.config import parse_settings
from istio_ca.pem import sha256_fingerprint
from istio_ca.profiles import INTERMEDIATE_CA
from tests.e2e.local_cluster import LocalCluster
from tests.e2e.pulumi_cli import Workspace
from tests.e2e.stacks import namespaced_workspace, set_root_in_config
from tests.makefile import issue_like_the_makefile
from tests.roots import make_root
from tests.x509_checks import check_certificate, check_key_matches, load_certificates, subject_of


def assert_signed_by(workspace: Workspace, clusters: dict[str, LocalCluster], namespace: str, root_pem: str) -> None:
    """Each cluster's cacerts: the adopted root byte for byte, and an intermediate with every extension."""
    (root,) = load_certificates(root_pem)
    settings = parse_settings({k: v for k, v in workspace.config().items() if k != "existingRoot"})
    for name, cluster in clusters.items():
        files = cluster.secret_data(namespace, "cacerts")
        assert files["root-cert.pem"] == root_pem, name
        (intermediate,) = load_certificates(files["ca-cert.pem"])
        (cluster_settings,) = [c for c in settings.clusters if c.name == name]
        check_certificate(
            intermediate,
            profile=INTERMEDIATE_CA,
            settings=cluster_settings.intermediate,
            subject=subject_of(cluster_settings.intermediate, locality=name),
            issuer=root,
            dns_names=cluster_settings.dns_names,
        )
        check_key_matches(intermediate, files["ca-key.pem"])
        assert load_certificates(files["cert-chain.pem"]) == [intermediate, root]


def istiod_self_signed_secret(cluster: LocalCluster, namespace: str, cert: str, key: str) -> None:
    """What istiod's self-signed CA leaves behind (its key PKCS#1, as istiod writes it)."""
    cluster.create_secret(
        namespace,
        "istio-ca-secret",
        {"ca-cert.pem": cert, "ca-key.pem": key, "cert-chain.pem": "", "key.pem": "", "root-cert.pem": ""},
        type_="istio.io/ca-root",
    )


def test_adopts_istiods_self_signed_root_from_istio_ca_secret(
    pulumi_env: dict[str, str], clusters: dict[str, LocalCluster], tmp_path_factory: pytest.TempPathFactory
) -> None:
    namespace = "istio-adopt"
    workspace = namespaced_workspace(pulumi_env, clusters, tmp_path_factory, namespace)
    root_cert, root_key = make_root(key_format="PKCS1")
    istiod_self_signed_secret(clusters["cluster1"], namespace, root_cert, root_key)
    workspace.run("config", "set", "--path", "istio-ca:existingRoot.fromCluster", "cluster1")
    workspace.up()

    assert_signed_by(workspace, clusters, namespace, root_cert)
    outputs = workspace.outputs()
    assert outputs["rootCertPem"] == root_cert
    fingerprint = sha256_fingerprint(load_certificates(root_cert)[0])
    assert outputs["adoptedRoot"] == {"fromCluster": "cluster1", "sha256": fingerprint}
    workspace.run("preview", "--expect-no-changes")

    # istiod regenerates its root (its Secret was deleted): the stack stops instead of re-rooting the mesh.
    clusters["cluster1"].request("DELETE", f"/api/v1/namespaces/{namespace}/secrets/istio-ca-secret")
    other_cert, other_key = make_root(key_format="PKCS1")
    istiod_self_signed_secret(clusters["cluster1"], namespace, other_cert, other_key)
    history, resources = workspace.history_length(), workspace.resources()
    result = workspace.run("up", "--yes", check=False)
    output = result.stdout + result.stderr
    other_fingerprint = sha256_fingerprint(load_certificates(other_cert)[0])
    assert result.returncode != 0 and "Traceback" not in output
    assert f"now holds another root (SHA-256 {other_fingerprint}) than the one this stack adopted" in output
    assert f"(SHA-256 {fingerprint})" in output and "existingRoot.sha256" in output
    assert (workspace.history_length(), workspace.resources()) == (history, resources)  # stopped in preview
    assert_signed_by(workspace, clusters, namespace, root_cert)  # the clusters keep the old root

    workspace.destroy()
    assert clusters["cluster1"].secret(namespace, "istio-ca-secret") is not None  # read, never owned


def test_never_adopts_the_cacerts_it_replaces(
    pulumi_env: dict[str, str], clusters: dict[str, LocalCluster], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A root kept in `cacerts` would be overwritten by this very stack: it must be imported as config."""
    namespace = "istio-adopt-cacerts"
    workspace = namespaced_workspace(pulumi_env, clusters, tmp_path_factory, namespace)
    root_cert, root_key = make_root()
    clusters["cluster2"].create_secret(namespace, "cacerts", {"ca-cert.pem": root_cert, "ca-key.pem": root_key})
    workspace.run("config", "set", "--path", "istio-ca:existingRoot.fromCluster", "cluster2")
    result = workspace.run("up", "--yes", check=False)
    assert result.returncode != 0
    assert f"namespace {namespace} has no Secret istio-ca-secret" in result.stdout + result.stderr
    assert clusters["cluster2"].secret_data(namespace, "cacerts")["ca-cert.pem"] == root_cert  # untouched
    assert clusters["cluster1"].secret(namespace, "cacerts") is None


def test_adopts_the_makefiles_root_as_the_readme_says(
    pulumi_env: dict[str, str],
    clusters: dict[str, LocalCluster],
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
) -> None:
    namespace = "istio-adopt-config"
    workspace = namespaced_workspace(pulumi_env, clusters, tmp_path_factory, namespace)
    makefile = issue_like_the_makefile(tmp_path)
    root_cert, root_key = (makefile / "root-cert.pem").read_text(), (makefile / "root-key.pem").read_text()
    set_root_in_config(workspace, root_cert, root_key)
    stack_file = (workspace.directory / f"Pulumi.{namespace}.yaml").read_text()
    assert "PRIVATE KEY" not in stack_file and "secure:" in stack_file
    workspace.up()

    assert_signed_by(workspace, clusters, namespace, root_cert)
    # The Makefile's own intermediate and ours chain to the same root: workloads of both trust each other.
    (makefile_intermediate,) = load_certificates((makefile / "ca-cert.pem").read_text())
    makefile_intermediate.verify_directly_issued_by(load_certificates(root_cert)[0])
    workspace.run("preview", "--expect-no-changes")
    workspace.destroy()


def test_refuses_the_makefiles_cluster_intermediate_as_a_root(
    pulumi_env: dict[str, str],
    clusters: dict[str, LocalCluster],
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
) -> None:
    """The old README's import of a plugged-in cacerts' ca-cert.pem: a pathlen:0 intermediate, refused."""
    namespace = "istio-adopt-intermediate"
    workspace = namespaced_workspace(pulumi_env, clusters, tmp_path_factory, namespace)
    makefile = issue_like_the_makefile(tmp_path)
    set_root_in_config(workspace, (makefile / "ca-cert.pem").read_text(), (makefile / "ca-key.pem").read_text())
    result = workspace.run("preview", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "Traceback" not in output
    assert "existingRoot.certPem: " in output
    assert "is not a root: it is issued by CN=Root CA,O=Istio, not self-signed" in output
    assert {r["type"] for r in workspace.resources().values()} <= {"pulumi:pulumi:Stack"}


def test_refuses_a_key_that_does_not_match_before_creating_anything(
    pulumi_env: dict[str, str], clusters: dict[str, LocalCluster], tmp_path_factory: pytest.TempPathFactory
) -> None:
    namespace = "istio-adopt-bad"
    workspace = namespaced_workspace(pulumi_env, clusters, tmp_path_factory, namespace)
    root_cert, _ = make_root()
    _, other_key = make_root()
    set_root_in_config(workspace, root_cert, other_key)
    result = workspace.run("up", "--yes", check=False)
    assert result.returncode != 0
    assert "existingRoot.keyPem does not match the certificate" in result.stdout + result.stderr
    for cluster in clusters.values():
        assert cluster.secret(namespace, "cacerts") is None
    assert {r["type"] for r in workspace.resources().values()} <= {"pulumi:pulumi:Stack"}  # nothing half-created


def test_a_key_set_in_plain_text_beside_a_secret_certificate_is_refused(
    pulumi_env: dict[str, str], clusters: dict[str, LocalCluster], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The engine reports `existingRoot` as secret when any leaf is; the leaf itself must be."""
    namespace = "istio-adopt-plain"
    workspace = namespaced_workspace(pulumi_env, clusters, tmp_path_factory, namespace)
    root_cert, root_key = make_root()
    workspace.run("config", "set", "--secret", "--path", "istio-ca:existingRoot.certPem", stdin=root_cert)
    workspace.run("config", "set", "--path", "istio-ca:existingRoot.keyPem", stdin=root_key)
    result = workspace.run("preview", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "Traceback" not in output
    assert "istio-ca:existingRoot.keyPem holds a private key in plain text" in output
    assert {r["type"] for r in workspace.resources().values()} <= {"pulumi:pulumi:Stack"}
    # The fix the message gives works, and leaves no key in plain text in the stack's file.
    workspace.run("config", "rm", "--path", "istio-ca:existingRoot.keyPem")
    workspace.run("config", "set", "--secret", "--path", "istio-ca:existingRoot.keyPem", stdin=root_key)
    assert "PRIVATE KEY" not in (workspace.directory / f"Pulumi.{namespace}.yaml").read_text()
    workspace.run("preview")
