"""Migration under the real istiod: from its own self-signed CA to our plugged-in one, without breaking trust.

istiod first runs with no `cacerts` at all, so it makes its own root (kept in `istio-ca-secret`) and
signs a workload certificate with it. A stack with `existingRoot.fromCluster` then adopts that root
and writes `cacerts` into both clusters; istiod restarts on it, as the README's migration says. The
certificate signed before the migration and those signed after must all chain to the one root every
istiod publishes, in both clusters.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store

from tests.e2e.istiod import (
    PLUGGED_IN_CA_LINES,
    SELF_SIGNED_CA_LINES,
    Istiod,
    load_chain,
    prepared_istiod,
    running_istiod,
    spiffe_id,
    uri_sans,
)
from tests.e2e.local_cluster import LocalCluster
from tests.e2e.pulumi_cli import Toolchain
from tests.e2e.stacks import FAST_KEYS, namespaced_workspace
from tests.x509_checks import load_certificates

NAMESPACE = "istio-migrate-istiod"
"""istiod's namespace in both clusters: this test's alone."""
WORKLOADS = "istiod-migrate-workloads"
SERVICE_ACCOUNT = "sleep"

log = logging.getLogger(__name__)


def uses_plugged_in_ca(istiod: Istiod) -> bool:
    lines = istiod.ca_log_lines()
    plugged_in = all(any(e.format(dir=istiod.ca_dir) in line for line in lines) for e in PLUGGED_IN_CA_LINES)
    return plugged_in and not any(e in line for e in SELF_SIGNED_CA_LINES for line in lines)


def verified_chain(
    leaf: x509.Certificate, intermediates: list[x509.Certificate], bundle: str
) -> list[x509.Certificate]:
    """RFC 5280 path validation, as a peer whose trust bundle is `bundle` (a published root) does it."""
    verifier = PolicyBuilder().store(Store(load_certificates(bundle))).build_client_verifier()
    return list(verifier.verify(leaf, intermediates).chain)


def test_istiod_moves_from_its_self_signed_root_to_our_intermediates_under_the_same_root(
    pulumi_env: dict[str, str],
    clusters: dict[str, LocalCluster],
    toolchain: Toolchain,
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
) -> None:
    workspace = namespaced_workspace(
        pulumi_env,
        clusters,
        tmp_path_factory,
        NAMESPACE,
        existingRoot={"fromCluster": "cluster1"},
        intermediate=FAST_KEYS,
    )
    cluster1 = clusters["cluster1"]
    with prepared_istiod(cluster1, NAMESPACE, toolchain, tmp_path / "cluster1") as istiod:
        # 1. Before: no cacerts, so istiod makes its own root and signs with it.
        assert cluster1.secret(NAMESPACE, "cacerts") is None
        istiod.start()
        log.info("self-signed istiod ready in %.1fs", istiod.started_in)
        lines = istiod.ca_log_lines()
        for expected in ("Use self-signed certificate as the CA certificate", "Use roots from istio-ca-secret"):
            assert any(expected in line for line in lines), (expected, lines)
        assert not any("Use local CA certificate" in line for line in lines), lines
        assert istiod.istio_ca_secret_exists()
        self_signed_root_pem = cluster1.secret_data(NAMESPACE, "istio-ca-secret")["ca-cert.pem"]
        (self_signed_root,) = load_certificates(self_signed_root_pem)
        assert self_signed_root.issuer == self_signed_root.subject
        cluster1.create_namespace(WORKLOADS)  # after istiod started: it publishes its root there
        assert istiod.published_root(WORKLOADS) == self_signed_root_pem
        _, pems = istiod.workload_certificate(WORKLOADS, SERVICE_ACCOUNT, self_signed_root_pem.encode())
        old_leaf, *old_rest = load_chain(pems)
        assert old_rest[0] == self_signed_root, [c.subject.rfc4514_string() for c in old_rest]
        assert uri_sans(old_leaf) == [spiffe_id(WORKLOADS, SERVICE_ACCOUNT)]

        # 2. The stack adopts that root: every cluster's cacerts holds it, byte for byte.
        started = time.monotonic()
        workspace.up()
        log.info("pulumi up in %.1fs", time.monotonic() - started)
        cacerts = {name: cluster.secret_data(NAMESPACE, "cacerts") for name, cluster in clusters.items()}
        for name, files in cacerts.items():
            assert files["root-cert.pem"] == self_signed_root_pem, name
            (intermediate,) = load_certificates(files["ca-cert.pem"])
            intermediate.verify_directly_issued_by(self_signed_root)
        assert workspace.outputs()["rootCertPem"] == self_signed_root_pem
        intermediates = {name: load_certificates(files["ca-cert.pem"])[0] for name, files in cacerts.items()}

        # 3. istiod restarts on the projected cacerts: our intermediate, the same root.
        istiod.stop()
        assert istiod.sync_cacerts() == cacerts["cluster1"]
        istiod.start()
        log.info("plugged-in istiod ready in %.1fs", istiod.started_in)
        assert uses_plugged_in_ca(istiod), istiod.ca_log_lines()
        published = istiod.published_root(WORKLOADS)
        assert published == self_signed_root_pem
        _, pems = istiod.workload_certificate(WORKLOADS, SERVICE_ACCOUNT, published.encode())
        new_leaf, *new_rest = load_chain(pems)
        assert new_rest[:2] == [intermediates["cluster1"], self_signed_root], [c.subject for c in new_rest]
        assert uri_sans(new_leaf) == [spiffe_id(WORKLOADS, SERVICE_ACCOUNT)]
        assert verified_chain(new_leaf, [intermediates["cluster1"]], published) == [
            new_leaf,
            intermediates["cluster1"],
            self_signed_root,
        ]
        # The certificate signed before the migration is still trusted by what istiod now publishes.
        assert verified_chain(old_leaf, [], published) == [old_leaf, self_signed_root]

        # 4. cluster2's istiod, plugged in from the start: its certificates and cluster1's trust each other.
        with running_istiod(clusters["cluster2"], NAMESPACE, toolchain, tmp_path / "cluster2") as istiod2:
            log.info("cluster2 istiod ready in %.1fs", istiod2.started_in)
            assert uses_plugged_in_ca(istiod2), istiod2.ca_log_lines()
            assert not istiod2.istio_ca_secret_exists()
            clusters["cluster2"].create_namespace(WORKLOADS)
            published2 = istiod2.published_root(WORKLOADS)
            assert published2 == published
            _, pems = istiod2.workload_certificate(WORKLOADS, SERVICE_ACCOUNT, published2.encode())
            leaf2, intermediate2, *_ = load_chain(pems)
            assert intermediate2 == intermediates["cluster2"] != intermediates["cluster1"]
            assert verified_chain(leaf2, [intermediate2], published)[-1] == self_signed_root
            for leaf, chain in ((new_leaf, [intermediates["cluster1"]]), (old_leaf, [])):
                assert verified_chain(leaf, chain, published2)[-1] == self_signed_root
        assert istiod2.process is None
    assert istiod.process is None

    # 5. destroy leaves istiod's own root where it was: it was read, never owned.
    workspace.destroy()
    assert cluster1.secret_data(NAMESPACE, "istio-ca-secret")["ca-cert.pem"] == self_signed_root_pem
