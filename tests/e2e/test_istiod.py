"""A fresh install: istio-ca writes `cacerts`, then the real istiod starts in each cluster and signs with it.

Each cluster gets its own istiod (Istio's `pilot-discovery`, out of cluster, see tests/e2e/istiod.py)
whose plugged-in CA directory is projected from that cluster's `cacerts`, as the kubelet would mount
it. Everything below is what istiod does, seen from outside: what it logs, what it does not create,
the certificate it serves, the root it publishes to workloads and the certificates it signs.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store

from tests.e2e.istiod import (
    PLUGGED_IN_CA_LINES,
    SELF_SIGNED_CA_LINES,
    Istiod,
    load_chain,
    running_istiod,
    spiffe_id,
    uri_sans,
)
from tests.e2e.local_cluster import LocalCluster
from tests.e2e.pulumi_cli import Toolchain, Workspace
from tests.e2e.stacks import FAST_KEYS, namespaced_workspace
from tests.x509_checks import load_certificates

NAMESPACE = "istio-fresh-istiod"
"""istiod's namespace, where istio-ca writes `cacerts`: this test's alone."""
WORKLOAD_NAMESPACE = "istiod-workloads"
SERVICE_ACCOUNT = "sleep"
CLUSTERS = ("cluster1", "cluster2")
WORKLOAD_TTL_SECONDS = 3600

log = logging.getLogger(__name__)


@dataclass
class FreshInstall:
    workspace: Workspace
    root_pem: str
    """The stack's `rootCertPem`: the root every cluster must trust and chain to."""
    trusted_roots: Path
    """A file holding `root_pem`, as a client configured with our root would have it."""
    istiods: dict[str, Istiod]
    cacerts: dict[str, dict[str, str]]

    def root(self) -> x509.Certificate:
        (root,) = load_certificates(self.root_pem)
        return root

    def intermediate(self, name: str) -> x509.Certificate:
        (intermediate,) = load_certificates(self.cacerts[name]["ca-cert.pem"])
        return intermediate


@pytest.fixture(scope="module")
def fresh_install(
    pulumi_env: dict[str, str],
    clusters: dict[str, LocalCluster],
    toolchain: Toolchain,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[FreshInstall]:
    """`pulumi up` into a namespace no istiod has seen, then one istiod per cluster, running until the
    module's tests are done and stopped whatever they do."""
    workspace = namespaced_workspace(pulumi_env, clusters, tmp_path_factory, NAMESPACE, intermediate=FAST_KEYS)
    workspace.up()
    root_pem = workspace.outputs()["rootCertPem"]
    base = tmp_path_factory.mktemp("istiod")
    trusted_roots = base / "trusted-roots.pem"
    trusted_roots.write_text(root_pem)
    istiods: dict[str, Istiod] = {}
    with contextlib.ExitStack() as running:
        for name in CLUSTERS:
            istiods[name] = running.enter_context(running_istiod(clusters[name], NAMESPACE, toolchain, base / name))
            log.info("istiod for %s ready in %.1fs", name, istiods[name].started_in)
        for name in CLUSTERS:  # after istiod started: it publishes its root into a namespace it sees appear
            clusters[name].create_namespace(WORKLOAD_NAMESPACE)
        yield FreshInstall(
            workspace=workspace,
            root_pem=root_pem,
            trusted_roots=trusted_roots,
            istiods=istiods,
            cacerts={name: clusters[name].secret_data(NAMESPACE, "cacerts") for name in CLUSTERS},
        )
    for name, istiod in istiods.items():
        assert istiod.process is None, f"{name}: istiod still running"


@pytest.mark.parametrize("name", CLUSTERS)
def test_istiod_reads_the_plugged_in_ca_not_its_self_signed_one(fresh_install: FreshInstall, name: str) -> None:
    istiod = fresh_install.istiods[name]
    with istiod.log_on_failure():
        lines = istiod.ca_log_lines()
        for expected in PLUGGED_IN_CA_LINES:
            assert any(expected.format(dir=istiod.ca_dir) in line for line in lines), (expected, lines)
        for unexpected in SELF_SIGNED_CA_LINES:
            assert not any(unexpected in line for line in lines), (unexpected, lines)


@pytest.mark.parametrize("name", CLUSTERS)
def test_istiod_creates_no_istio_ca_secret(fresh_install: FreshInstall, name: str) -> None:
    """A self-signed istiod would have written its own root there by now."""
    istiod = fresh_install.istiods[name]
    with istiod.log_on_failure():
        assert not istiod.istio_ca_secret_exists()


@pytest.mark.parametrize("name", CLUSTERS)
def test_istiod_serves_a_certificate_its_cluster_intermediate_signed(fresh_install: FreshInstall, name: str) -> None:
    istiod = fresh_install.istiods[name]
    with istiod.log_on_failure():
        chain = istiod.served_chain(fresh_install.trusted_roots)  # openssl verified it against our root
        intermediate, root = fresh_install.intermediate(name), fresh_install.root()
        assert len(chain) == 3, [c.subject.rfc4514_string() for c in chain]
        leaf = chain[0]
        assert chain[1:] == [intermediate, root]
        leaf.verify_directly_issued_by(intermediate)
        intermediate.verify_directly_issued_by(root)
        names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert istiod.host in names.get_values_for_type(x509.DNSName)
        assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


@pytest.mark.parametrize("name", CLUSTERS)
def test_istiod_publishes_our_root_to_workload_namespaces(fresh_install: FreshInstall, name: str) -> None:
    istiod = fresh_install.istiods[name]
    with istiod.log_on_failure():
        published = istiod.published_root(WORKLOAD_NAMESPACE)
        assert published == fresh_install.cacerts[name]["root-cert.pem"] == fresh_install.root_pem


@pytest.mark.parametrize("name", CLUSTERS)
def test_istiod_signs_workload_certificates_under_the_cluster_intermediate(
    fresh_install: FreshInstall, name: str
) -> None:
    istiod = fresh_install.istiods[name]
    with istiod.log_on_failure():
        key, pems = istiod.workload_certificate(
            WORKLOAD_NAMESPACE, SERVICE_ACCOUNT, fresh_install.root_pem.encode(), WORKLOAD_TTL_SECONDS
        )
        chain = load_chain(pems)
        intermediate, root = fresh_install.intermediate(name), fresh_install.root()
        leaf = chain[0]
        # cert_chain: the leaf, cert-chain.pem (intermediate, root), then root-cert.pem (the bundle).
        assert chain[1:] == [intermediate, root, root], [c.subject.rfc4514_string() for c in chain]
        assert leaf.public_key() == key.public_key()
        assert uri_sans(leaf) == [spiffe_id(WORKLOAD_NAMESPACE, SERVICE_ACCOUNT)]
        leaf.verify_directly_issued_by(intermediate)
        now = datetime.datetime.now(datetime.UTC)
        assert abs((leaf.not_valid_after_utc - now).total_seconds() - WORKLOAD_TTL_SECONDS) < 300
        # RFC 5280 path validation, as a peer holding only our root would do it.
        verified = PolicyBuilder().store(Store([root])).build_client_verifier().verify(leaf, [intermediate])
        assert verified.chain == [leaf, intermediate, root]


def test_workloads_of_each_cluster_trust_the_other_clusters_certificates(fresh_install: FreshInstall) -> None:
    """One root: what cluster1's istiod signs verifies against the bundle cluster2's istiod publishes, and back."""
    published = {name: istiod.published_root(WORKLOAD_NAMESPACE) for name, istiod in fresh_install.istiods.items()}
    assert len(set(published.values())) == 1
    assert len({fresh_install.cacerts[name]["root-cert.pem"] for name in CLUSTERS}) == 1
    for signer, peer in (("cluster1", "cluster2"), ("cluster2", "cluster1")):
        istiod = fresh_install.istiods[signer]
        with istiod.log_on_failure():
            _, pems = istiod.workload_certificate(WORKLOAD_NAMESPACE, SERVICE_ACCOUNT, published[signer].encode())
            leaf, intermediate, *_ = load_chain(pems)
            peer_store = Store(load_certificates(published[peer]))
            verified = PolicyBuilder().store(peer_store).build_client_verifier().verify(leaf, [intermediate])
            assert verified.chain[-1] == fresh_install.root()
            assert intermediate == fresh_install.intermediate(signer) != fresh_install.intermediate(peer)


@pytest.mark.parametrize("name", CLUSTERS)
def test_istiod_listens_on_loopback_only(fresh_install: FreshInstall, name: str) -> None:
    istiod = fresh_install.istiods[name]
    listening = istiod.listening_addresses()
    assert {address for address, _ in listening} == {"127.0.0.1"}, listening
    assert set(istiod.ports.values()) <= {port for _, port in listening}
