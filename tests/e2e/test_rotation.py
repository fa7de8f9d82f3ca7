"""A root-key rotation in three explicit phases, with trust holding for every workload at every step."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.e2e.local_cluster import LocalCluster
from tests.e2e.pulumi_cli import Workspace
from tests.e2e.stacks import FAST_KEYS, namespaced_workspace, set_root_in_config
from tests.makefile import issue_like_the_makefile
from tests.x509_checks import load_certificates, openssl_verifies, signed_by

NAMESPACE = "istio-rotation"


def workload_certificate(ca_cert_pem: str, ca_key_pem: str) -> str:
    """What istiod signs for a workload with the cluster's intermediate: a SPIFFE leaf."""
    issuer = x509.load_pem_x509_certificate(ca_cert_pem.encode())
    issuer_key = serialization.load_pem_private_key(ca_key_pem.encode(), password=None)
    assert isinstance(issuer_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=24))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier("spiffe://cluster.local/ns/a/sa/b")]),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), False)
        .sign(issuer_key, hashes.SHA256())
    )
    return leaf.public_bytes(serialization.Encoding.PEM).decode()


def phase(workspace: Workspace, wanted: str | None) -> None:
    config = workspace.config()
    config.pop("rootRotation", None)
    if wanted is not None:
        config["rootRotation"] = {"phase": wanted, "retireAfterHours": 0}  # no workload holds an old certificate
    workspace.write_config(config)


def assert_every_intermediate_chains_to_a_trusted_root(
    clusters: dict[str, LocalCluster], namespace: str = NAMESPACE, issuer_pem: str | None = None
) -> None:
    """Each cluster's intermediate is signed by a root of its own bundle (by `issuer_pem`, when given),
    and `cert-chain.pem` is that intermediate then that root."""
    for name, cluster in clusters.items():
        files = cluster.secret_data(namespace, "cacerts")
        roots = load_certificates(files["root-cert.pem"])
        (intermediate,) = load_certificates(files["ca-cert.pem"])
        # Two generations of a same-key renewal both verify it: the chain names the one it was issued under.
        chain = load_certificates(files["cert-chain.pem"])
        assert chain[0] == intermediate and len(chain) == 2, name
        assert chain[1] in roots and chain[1].subject == intermediate.issuer and signed_by(intermediate, chain[1]), name
        if issuer_pem is not None:
            assert [chain[1]] == load_certificates(issuer_pem), name


def test_a_root_rotates_in_three_phases_and_trust_holds_at_every_step(
    pulumi_env: dict[str, str],
    clusters: dict[str, LocalCluster],
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
) -> None:
    workspace = namespaced_workspace(
        pulumi_env, clusters, tmp_path_factory, NAMESPACE, root={"keyAlgorithm": "ECDSA"}, intermediate=FAST_KEYS
    )
    workspace.up()
    first = {name: cluster.secret_data(NAMESPACE, "cacerts") for name, cluster in clusters.items()}
    old_root = first["cluster1"]["root-cert.pem"]
    # A workload certificate istiod issued before the rotation, under cluster1's intermediate.
    old_leaf = workload_certificate(first["cluster1"]["ca-cert.pem"], first["cluster1"]["ca-key.pem"])
    old_intermediate = first["cluster1"]["ca-cert.pem"]

    # Skipping a phase is refused, and changes nothing.
    phase(workspace, "switch")
    history, resources = workspace.history_length(), workspace.resources()
    refused = workspace.run("up", "--yes", check=False)
    assert refused.returncode != 0 and "Traceback" not in refused.stdout + refused.stderr
    assert "'switch' cannot follow no rotation (the steady state): the next phase is 'trust-both'" in refused.stdout
    assert (workspace.history_length(), workspace.resources()) == (history, resources)

    # trust both: a new root; every bundle holds the old root's exact bytes first, then the new one.
    phase(workspace, "trust-both")
    assert workspace.planned_changes() == {
        "root-g2-key": "create",
        "root-g2-cert": "create",
        "cluster1-cacerts": "update",
        "cluster2-cacerts": "update",
    }
    workspace.up()
    for name, cluster in clusters.items():
        files = cluster.secret_data(NAMESPACE, "cacerts")
        assert files["root-cert.pem"].startswith(old_root) and len(load_certificates(files["root-cert.pem"])) == 2
        assert (files["ca-cert.pem"], files["cert-chain.pem"]) == (
            first[name]["ca-cert.pem"],
            first[name]["cert-chain.pem"],
        )
    new_root = clusters["cluster1"].secret_data(NAMESPACE, "cacerts")["root-cert.pem"].removeprefix(old_root)
    assert_every_intermediate_chains_to_a_trusted_root(clusters)
    assert openssl_verifies(
        tmp_path, old_leaf, old_intermediate, clusters["cluster2"].secret_data(NAMESPACE, "cacerts")["root-cert.pem"]
    )

    # switch: the new root signs new intermediates; both roots are still trusted.
    phase(workspace, "switch")
    assert workspace.planned_changes() == {
        "cluster1-cert": "replace",
        "cluster2-cert": "replace",
        "cluster1-cacerts": "update",
        "cluster2-cacerts": "update",
    }
    workspace.up()
    for name, cluster in clusters.items():
        files = cluster.secret_data(NAMESPACE, "cacerts")
        assert files["root-cert.pem"] == old_root + new_root
        assert files["cert-chain.pem"].endswith(new_root) and files["ca-cert.pem"] != first[name]["ca-cert.pem"]
    assert_every_intermediate_chains_to_a_trusted_root(clusters)
    bundle = clusters["cluster2"].secret_data(NAMESPACE, "cacerts")["root-cert.pem"]
    assert openssl_verifies(tmp_path, old_leaf, old_intermediate, bundle)  # old workloads still trusted
    switched = clusters["cluster1"].secret_data(NAMESPACE, "cacerts")
    new_leaf = workload_certificate(switched["ca-cert.pem"], switched["ca-key.pem"])
    assert openssl_verifies(tmp_path, new_leaf, switched["ca-cert.pem"], first["cluster2"]["root-cert.pem"] + new_root)

    # retire: only the new root is trusted, and the old one leaves the state.
    phase(workspace, "retire")
    assert workspace.planned_changes() == {
        "root-key": "delete",
        "root-cert": "delete",
        "cluster1-cacerts": "update",
        "cluster2-cacerts": "update",
    }
    workspace.up()
    for cluster in clusters.values():
        assert cluster.secret_data(NAMESPACE, "cacerts")["root-cert.pem"] == new_root
    assert_every_intermediate_chains_to_a_trusted_root(clusters)
    assert not any(urn.endswith("::root-cert") or urn.endswith("::root-key") for urn in workspace.resources())
    assert not openssl_verifies(tmp_path, old_leaf, old_intermediate, new_root)  # the old root is gone, as promised
    assert openssl_verifies(tmp_path, new_leaf, switched["ca-cert.pem"], new_root)

    # retire is one-way; dropping the rotation is the steady state with the new root.
    phase(workspace, "switch")
    assert "retire is one-way" in workspace.run("preview", check=False).stdout
    phase(workspace, None)
    workspace.run("preview", "--expect-no-changes")  # no certificate or Secret changes
    workspace.up()
    assert workspace.outputs()["rootGenerations"] == {
        "trusted": [2],
        "signing": 2,
        "phase": None,
        "keyOf": {},
        "adopted": False,
    }
    workspace.destroy()


def test_a_same_key_root_renewal_completes_and_keeps_every_intermediate_valid(
    pulumi_env: dict[str, str], clusters: dict[str, LocalCluster], tmp_path_factory: pytest.TempPathFactory
) -> None:
    namespace = "istio-renew-root"
    workspace = namespaced_workspace(
        pulumi_env, clusters, tmp_path_factory, namespace, root={"keyAlgorithm": "ECDSA"}, intermediate=FAST_KEYS
    )
    workspace.up()
    before = clusters["cluster1"].secret_data(namespace, "cacerts")
    config = workspace.config()
    config["rootRotation"] = {"phase": "trust-both", "sameKey": True}
    workspace.write_config(config)
    assert "root-g2-key" not in workspace.planned_changes()  # a new certificate, not a new key
    workspace.up()
    old_root, renewed_root = load_certificates(clusters["cluster1"].secret_data(namespace, "cacerts")["root-cert.pem"])
    assert renewed_root.public_key() == old_root.public_key() and renewed_root.subject == old_root.subject
    assert renewed_root.serial_number != old_root.serial_number
    (intermediate,) = load_certificates(before["ca-cert.pem"])
    intermediate.verify_directly_issued_by(renewed_root)  # issued before, valid under the renewed root

    # switch and retire: the renewed certificate alone is trusted; the key it shares stays in the state.
    for phase in ("switch", "retire"):
        config["rootRotation"] = {"phase": phase, "sameKey": True, "retireAfterHours": 0}
        workspace.write_config(config)
        workspace.up()
        assert_every_intermediate_chains_to_a_trusted_root(clusters, namespace)
    for cluster in clusters.values():
        assert load_certificates(cluster.secret_data(namespace, "cacerts")["root-cert.pem"]) == [renewed_root]
    intermediate.verify_directly_issued_by(renewed_root)
    names = {urn.rsplit("::", 1)[-1] for urn in workspace.resources()}
    assert {"root-key", "root-g2-cert"} <= names and not {"root-cert", "root-g2-key"} & names

    # The steady state after it changes nothing, and goes on with the same key.
    config.pop("rootRotation")
    workspace.write_config(config)
    workspace.run("preview", "--expect-no-changes")
    workspace.up()
    assert workspace.outputs()["rootGenerations"] == {
        "trusted": [2],
        "signing": 2,
        "phase": None,
        "keyOf": {"2": 1},
        "adopted": False,
    }
    workspace.destroy()


def test_a_mesh_migrated_with_an_adopted_root_rotates_away_from_it(
    pulumi_env: dict[str, str],
    clusters: dict[str, LocalCluster],
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
) -> None:
    namespace = "istio-rotate-adopted"
    workspace = namespaced_workspace(pulumi_env, clusters, tmp_path_factory, namespace, intermediate=FAST_KEYS)
    makefile = issue_like_the_makefile(tmp_path)
    adopted_root = (makefile / "root-cert.pem").read_text()
    set_root_in_config(workspace, adopted_root, (makefile / "root-key.pem").read_text())
    workspace.up()

    def phase(name: str) -> None:
        config = workspace.config()
        config["rootRotation"] = {"phase": name, "retireAfterHours": 0}
        config["root"] = {"keyAlgorithm": "ECDSA"}  # the new root's settings
        workspace.write_config(config)
        workspace.up()

    phase("trust-both")
    bundle = clusters["cluster1"].secret_data(namespace, "cacerts")["root-cert.pem"]
    assert bundle.startswith(adopted_root) and len(load_certificates(bundle)) == 2
    new_root = bundle.removeprefix(adopted_root)
    phase("switch")
    assert_every_intermediate_chains_to_a_trusted_root(clusters, namespace, new_root)
    phase("retire")
    for cluster in clusters.values():
        assert cluster.secret_data(namespace, "cacerts")["root-cert.pem"] == new_root

    # The adopted root is gone: dropping existingRoot (and the rotation) changes nothing that was issued.
    config = workspace.config()
    for key in ("existingRoot", "rootRotation"):
        config.pop(key)
    workspace.write_config(config)
    assert workspace.planned_changes() == {}  # the generated root and every intermediate are kept (aliases)
    workspace.up()
    types = {resource["type"] for resource in workspace.resources().values()}
    assert "istio-ca:index:RootCA" in types and "istio-ca:index:ExistingRoot" not in types
    workspace.run("preview", "--expect-no-changes")
    for cluster in clusters.values():
        assert cluster.secret_data(namespace, "cacerts")["root-cert.pem"] == new_root
    workspace.destroy()


def test_a_changed_root_setting_keeps_the_root_and_everything_itsigned_by(
    pulumi_env: dict[str, str], clusters: dict[str, LocalCluster], tmp_path_factory: pytest.TempPathFactory
) -> None:
    namespace = "istio-root-settings"
    workspace = namespaced_workspace(
        pulumi_env, clusters, tmp_path_factory, namespace, root={"keyAlgorithm": "ECDSA"}, intermediate=FAST_KEYS
    )
    workspace.up()
    before = {name: cluster.secret(namespace, "cacerts") for name, cluster in clusters.items()}
    workspace.write_config({**workspace.config(), "root": {"keyAlgorithm": "ECDSA", "days": 7300, "org": "Acme"}})
    assert workspace.planned_changes() == {}  # no root re-issued, so no intermediate either
    assert "root settings changed (days, org): the current root is kept" in workspace.run("preview").stdout
    workspace.up()
    assert {name: cluster.secret(namespace, "cacerts") for name, cluster in clusters.items()} == before
    workspace.destroy()
