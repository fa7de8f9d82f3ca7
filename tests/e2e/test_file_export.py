"""The Makefile's files on disk after `pulumi up`, byte for byte what the clusters hold."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from istio_ca.file_export import MANIFEST
from tests.e2e.leak_audit import AUDIT
from tests.e2e.local_cluster import LocalCluster
from tests.e2e.pulumi_cli import new_workspace
from tests.e2e.stacks import namespaced_workspace
from tests.x509_checks import load_certificates

NAMESPACE = "istio-export"
KEY_FILES = {"ca-key.pem", "key.pem"}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_exported_files_match_the_secrets_and_follow_the_config(
    pulumi_env: dict[str, str], clusters: dict[str, LocalCluster], tmp_path_factory: pytest.TempPathFactory
) -> None:
    for cluster in clusters.values():
        cluster.create_namespace(NAMESPACE)
    export = tmp_path_factory.mktemp("export")
    AUDIT.key_directories.add(export)
    workspace = new_workspace(tmp_path_factory.mktemp("files") / "project", "files", pulumi_env)
    config = {
        "istioNamespace": NAMESPACE,
        "exportDirectory": str(export),
        "clusters": [{"name": name, "kubeconfig": str(c.kubeconfig)} for name, c in clusters.items()],
        "workloads": [{"namespace": "vm-apps"}],
    }
    workspace.write_config(config)
    workspace.up()
    workspace.run("preview", "--expect-no-changes")

    for name, cluster in clusters.items():
        secret = cluster.secret_data(NAMESPACE, "cacerts")
        written = {p.name: p.read_text() for p in (export / name).iterdir()}
        assert written == secret, name
        for file in written:
            assert mode(export / name / file) == (0o600 if file in KEY_FILES else 0o644), file
    outputs = workspace.outputs()
    assert (export / "root-cert.pem").read_text() == outputs["rootCertPem"]
    vm = export / "vm-apps"
    assert sorted(p.name for p in vm.iterdir()) == sorted(
        ["key.pem", "workload-cert.pem", "workload-cert-chain.pem", "root-cert.pem", "ca-cert.pem", "ca-key.pem"]
    )
    assert (vm / "workload-cert-chain.pem").read_text() == outputs["workloads"]["vm-apps"]["certChainPem"]
    assert all(mode(vm / file) == 0o600 for file in KEY_FILES)
    leaf, intermediate, root = load_certificates((vm / "workload-cert-chain.pem").read_text())
    leaf.verify_directly_issued_by(intermediate)
    intermediate.verify_directly_issued_by(root)

    # Four keys on disk (two clusters, the VM's pair) and none of them the root's.
    key_files = [p for p in export.rglob("*.pem") if "PRIVATE KEY" in p.read_text()]
    assert len(key_files) == 4
    for path in key_files:
        key = load_pem_private_key(path.read_bytes(), password=None)
        assert key.public_key() != root.public_key(), path

    config["clusters"] = config["clusters"][:1]
    workspace.write_config(config)
    workspace.up()
    assert not (export / "cluster2").exists()
    assert clusters["cluster2"].secret(NAMESPACE, "cacerts") is not None  # kept in the cluster by default
    assert (export / "cluster1" / "ca-cert.pem").read_text() == clusters["cluster1"].secret_data(NAMESPACE, "cacerts")[
        "ca-cert.pem"
    ]
    workspace.destroy()


def test_nothing_is_exported_until_every_cacerts_is_applied(
    pulumi_env: dict[str, str], clusters: dict[str, LocalCluster], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """cluster2 is down, so its cacerts fails: no file may claim otherwise."""
    namespace = "istio-export-partial"
    export = tmp_path_factory.mktemp("export-partial")
    AUDIT.key_directories.add(export)
    workspace = namespaced_workspace(
        pulumi_env,
        clusters,
        tmp_path_factory,
        namespace,
        exportDirectory=str(export),
        intermediate={"keyAlgorithm": "ECDSA"},
    )
    clusters["cluster2"].stop_api_server()
    try:
        result = workspace.run("up", "--yes", "--skip-preview", "--continue-on-error", check=False)
    finally:
        clusters["cluster2"].start_api_server()
    assert result.returncode != 0
    assert clusters["cluster1"].secret(namespace, "cacerts") is not None
    assert list(export.iterdir()) == []
    workspace.up()
    assert sorted(p.name for p in export.iterdir()) == [".gitignore", MANIFEST, "cluster1", "cluster2", "root-cert.pem"]
    assert mode(export) == 0o700
    workspace.destroy()
