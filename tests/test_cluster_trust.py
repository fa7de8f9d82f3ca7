"""What a cluster's `cacerts` trusts, read from its files or from the state Pulumi recorded."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from istio_ca.cacerts import CacertsError, LiveCacerts
from istio_ca.cluster_trust import recorded_roots, recorded_trust, refuse_two_entries_for_one_cluster, trust_of
from istio_ca.config import parse_settings
from istio_ca.pem import sha256_fingerprint
from tests.roots import make_intermediate, make_root, sign_certificate
from tests.test_config import write_kubeconfig


def fingerprint(pem: str) -> str:
    return sha256_fingerprint(x509.load_pem_x509_certificate(pem.encode()))


def cacerts_files(intermediate: str, issuer: str, bundle: str) -> dict[str, str]:
    return {
        "ca-cert.pem": intermediate,
        "ca-key.pem": "",
        "root-cert.pem": bundle,
        "cert-chain.pem": intermediate + issuer,
    }


def test_the_trusted_roots_and_the_issuer_come_from_the_files() -> None:
    old, old_key = make_root(ecdsa=True)
    new, _ = make_root(ecdsa=True)
    intermediate, _ = make_intermediate(old, old_key)
    trust = trust_of(cacerts_files(intermediate, old, old + new), live=True)
    assert trust is not None
    assert trust.trusted == (fingerprint(old), fingerprint(new))
    assert trust.issuer == fingerprint(old)
    assert trust.issued_at == x509.load_pem_x509_certificate(intermediate.encode()).not_valid_before_utc


def test_a_same_key_renewal_is_told_apart_by_the_chain() -> None:
    old, old_key_pem = make_root(ecdsa=True)
    old_cert = x509.load_pem_x509_certificate(old.encode())
    key = serialization.load_pem_private_key(old_key_pem.encode(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    renewed = sign_certificate(old_cert.subject, key, old_cert.subject, key, days=10, ca=True, path_length=None)
    renewed_pem = renewed.public_bytes(serialization.Encoding.PEM).decode()
    intermediate, _ = make_intermediate(old, old_key_pem)  # verifies under both: same key, same subject
    before = trust_of(cacerts_files(intermediate, old, old + renewed_pem), live=True)
    after = trust_of(cacerts_files(intermediate, renewed_pem, old + renewed_pem), live=True)
    assert before is not None and after is not None
    assert (before.issuer, after.issuer) == (fingerprint(old), fingerprint(renewed_pem))


def test_files_without_an_intermediate_or_an_issuer_among_the_roots() -> None:
    old, old_key = make_root(ecdsa=True)
    other, _ = make_root(ecdsa=True)
    intermediate, _ = make_intermediate(old, old_key)
    assert trust_of({"root-cert.pem": old}, live=True) is None
    foreign = trust_of({"ca-cert.pem": intermediate, "root-cert.pem": other}, live=True)
    assert foreign is not None and foreign.issuer is None and foreign.trusted == (fingerprint(other),)


def test_the_recorded_secret_and_roots_are_found_by_their_names() -> None:
    root, root_key = make_root(ecdsa=True)
    second, _ = make_root(ecdsa=True)
    intermediate, _ = make_intermediate(root, root_key)
    files = cacerts_files(intermediate, root, root)
    secret = "urn:pulumi:s::p::istio-ca:index:RootCA$istio-ca:index:ClusterCA$kubernetes:core/v1:Secret::east-cacerts"
    resources = {
        secret: {
            "type": "kubernetes:core/v1:Secret",
            "outputs": {"data": {name: base64.b64encode(text.encode()).decode() for name, text in files.items()}},
        },
        "urn:pulumi:s::p::istio-ca:index:RootCA$tls:index/selfSignedCert:SelfSignedCert::root-cert": {
            "type": "tls:index/selfSignedCert:SelfSignedCert",
            "outputs": {"certPem": root},
        },
        "urn:pulumi:s::p::istio-ca:index:RootCA$tls:index/selfSignedCert:SelfSignedCert::root-g2-cert": {
            "type": "tls:index/selfSignedCert:SelfSignedCert",
            "outputs": {"certPem": second},
        },
    }
    recorded = recorded_trust(resources, "east")
    assert recorded is not None and not recorded.live and recorded.issuer == fingerprint(root)
    assert recorded_trust(resources, "eas") is None and recorded_trust(resources, "west") is None
    assert recorded_roots(resources, "root", (1, 2, 3)) == {1: root, 2: second}


def test_an_adopted_root_is_recorded_by_its_component() -> None:
    adopted, _ = make_root()
    resources = {
        "urn:pulumi:s::p::istio-ca:index:ExistingRoot::root": {
            "type": "istio-ca:index:ExistingRoot",
            "outputs": {"cert_pem": adopted},
        }
    }
    assert recorded_roots(resources, "root", (1,)) == {1: adopted}


def test_two_entries_that_reach_one_cluster_are_refused_whatever_their_urls(tmp_path: Path) -> None:
    kubeconfig = str(write_kubeconfig(tmp_path, contexts=["east", "other"], current="east"))
    settings = parse_settings(
        {
            "clusters": [
                {"name": "east", "kubeconfig": kubeconfig},
                {"name": "east-again", "kubeconfig": kubeconfig, "context": "other"},
            ]
        }
    )
    same = LiveCacerts(exists=False, cluster_uid="uid-1")
    with pytest.raises(CacertsError, match=r"'east' and 'east-again' reach the same cluster \(kube-system uid uid-1\)"):
        refuse_two_entries_for_one_cluster(settings.clusters, {"east": same, "east-again": same})
    apart = {"east": same, "east-again": LiveCacerts(exists=False, cluster_uid="uid-2")}
    refuse_two_entries_for_one_cluster(settings.clusters, apart)
    refuse_two_entries_for_one_cluster(settings.clusters, {"east": same, "east-again": None})  # did not answer
