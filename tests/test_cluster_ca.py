"""Each cluster's intermediate CA, its pulumi-tls arguments, and its `cacerts` Secret."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest

from istio_ca.certificate import pem_bundle
from istio_ca.cluster_ca import ClusterCA, ClusterCAArgs
from istio_ca.profiles import INTERMEDIATE_CA
from tests.program import base64_values, fake_cert, fake_private_key, run_program, unwrap_secret, use_mocks
from tests.x509_checks import CACERTS_KEYS

DEV_STACK = {"clusters": [{"name": "cluster1"}, {"name": "cluster2"}]}


def test_intermediate_certificate_arguments_follow_the_profile() -> None:
    inputs = run_program(DEV_STACK).recorder.named("cluster1-cert").inputs
    assert inputs["allowedUses"] == list(INTERMEDIATE_CA.key_usages)
    assert inputs["isCaCertificate"] is INTERMEDIATE_CA.is_ca
    assert inputs["maxPathLength"] == INTERMEDIATE_CA.max_path_length
    assert inputs["setSubjectKeyId"] is INTERMEDIATE_CA.subject_key_identifier


def test_intermediate_certificate_arguments_literally() -> None:
    recorder = run_program(DEV_STACK).recorder
    cert = dict(recorder.named("cluster1-cert").inputs)
    assert unwrap_secret(cert.pop("caPrivateKeyPem")) == (fake_private_key("root-key"), True)
    assert cert == {
        "certRequestPem": "csr-of-cluster1-csr",
        "caCertPem": fake_cert("root-cert"),
        "validityPeriodHours": 730 * 24,
        "earlyRenewalHours": 730 * 24 // 3,  # re-issued once two thirds of its life have passed
        "allowedUses": ["digital_signature", "content_commitment", "key_encipherment", "cert_signing"],
        "isCaCertificate": True,
        "maxPathLength": 0,
        "setSubjectKeyId": True,
    }
    csr = dict(recorder.named("cluster1-csr").inputs)
    assert unwrap_secret(csr.pop("privateKeyPem")) == (fake_private_key("cluster1-key"), True)
    assert csr == {
        "subject": {"organization": "Istio", "commonName": "Intermediate CA", "locality": "cluster1"},
        "dnsNames": ["istiod.istio-system.svc"],
    }
    assert recorder.named("cluster1-key").inputs == {"algorithm": "RSA", "rsaBits": 4096}


def test_cacerts_secret_holds_the_four_files_wired_to_the_right_pems() -> None:
    recorder = run_program(DEV_STACK).recorder
    for cluster in ("cluster1", "cluster2"):
        secret = recorder.named(f"{cluster}-cacerts").inputs
        assert secret["metadata"] == {
            "name": "cacerts",
            "namespace": "istio-system",
            "annotations": {
                "pulumi.com/patchForce": "true",  # takes over a cacerts the guard let through
                "istio-ca/owner": "organization/istio-ca/unit",  # marks it as this stack's
            },
        }
        assert secret["type"] == "Opaque"
        assert "stringData" not in secret  # `data`, so server-side apply owns each file
        encoded, is_secret = unwrap_secret(secret["data"])
        assert is_secret
        data = base64_values(encoded)
        assert set(data) == CACERTS_KEYS  # and so never `istio-generated`
        assert data["ca-cert.pem"] == fake_cert(f"{cluster}-cert")
        assert data["ca-key.pem"] == fake_private_key(f"{cluster}-key")
        assert data["root-cert.pem"] == fake_cert("root-cert")
        assert data["cert-chain.pem"] == fake_cert(f"{cluster}-cert") + fake_cert("root-cert")


def test_each_secret_goes_through_its_own_clusters_provider() -> None:
    recorder = run_program(DEV_STACK).recorder
    for cluster in ("cluster1", "cluster2"):
        provider = recorder.named(f"{cluster}-k8s")
        # enableSecretMutable: a changed cacerts is updated in place, never deleted and re-created.
        assert provider.inputs == {"renderYamlToDirectory": f"rendered/{cluster}", "enableSecretMutable": "true"}
        secret = recorder.named(f"{cluster}-cacerts")
        assert secret.provider is not None
        assert secret.provider.split("::")[-2] == f"{cluster}-k8s"


def test_namespace_is_created_only_when_asked_and_then_retained() -> None:
    assert not run_program(DEV_STACK).recorder.of_type("kubernetes:core/v1:Namespace")
    run = run_program({**DEV_STACK, "createNamespace": True, "istioNamespace": "mesh"})
    namespaces = run.recorder.of_type("kubernetes:core/v1:Namespace")
    assert sorted((n.name, n.inputs["metadata"]) for n in namespaces) == [
        ("cluster1-namespace", {"name": "mesh"}),
        ("cluster2-namespace", {"name": "mesh"}),
    ]
    assert all(n.retain_on_delete for n in namespaces)  # destroy never deletes an Istio namespace
    # An istiod restarting without `cacerts` mints a new self-signed root: kept unless asked otherwise.
    assert all(s.retain_on_delete for s in run.recorder.of_type("kubernetes:core/v1:Secret"))


def test_cacerts_is_deleted_with_its_cluster_only_when_asked() -> None:
    run = run_program(
        {"clusters": [{"name": "cluster1", "retainCacerts": False}, {"name": "cluster2"}], "retainCacerts": True}
    )
    assert not run.recorder.named("cluster1-cacerts").retain_on_delete
    assert run.recorder.named("cluster2-cacerts").retain_on_delete
    run = run_program({**DEV_STACK, "retainCacerts": False})
    assert not any(s.retain_on_delete for s in run.recorder.of_type("kubernetes:core/v1:Secret"))


def test_per_cluster_override_changes_only_that_cluster() -> None:
    recorder = run_program(
        {
            "clusters": [
                {"name": "cluster1", "intermediate": {"days": 30, "keyAlgorithm": "ECDSA"}},
                {"name": "cluster2"},
            ]
        }
    ).recorder
    assert recorder.named("cluster1-cert").inputs["validityPeriodHours"] == 30 * 24
    assert recorder.named("cluster1-key").inputs == {"algorithm": "ECDSA", "ecdsaCurve": "P256"}
    assert recorder.named("cluster2-cert").inputs["validityPeriodHours"] == 730 * 24
    assert recorder.named("cluster2-key").inputs == {"algorithm": "RSA", "rsaBits": 4096}


@pytest.mark.parametrize(
    ("pems", "bundle"),
    [(["A\n", "B\n"], "A\nB\n"), (["A", "B"], "A\nB\n"), (["A\n"], "A\n")],
)
def test_pem_bundle_puts_one_newline_between_blocks(pems: list[str], bundle: str) -> None:
    assert pem_bundle(pems) == bundle


def test_cluster_ca_works_on_its_own_with_a_root_from_elsewhere() -> None:
    """Another stack or language passes a root PEM and key; no RootCA is involved."""
    recorder = use_mocks()
    captured: dict[str, Any] = {}

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def build() -> pulumi.Output[Any]:
        ca = ClusterCA(
            "edge",
            ClusterCAArgs(
                cluster_name="edge",
                issuer_cert_pem="ROOT-PEM\n",
                issuer_private_key_pem=pulumi.Output.secret("ROOT-KEY"),
                trusted_root_pems=["ROOT-PEM\n"],
                organization="Istio",
                common_name="Intermediate CA",
                validity_days=10,
                key_algorithm="RSA",
                rsa_bits=2048,
                dns_names=["istiod.istio-system.svc"],
                namespace="istio-system",
                render_directory="out/edge",
            ),
        )

        def capture(values: list[Any]) -> None:
            captured["chain"], captured["key_is_secret"] = values

        return pulumi.Output.all(ca.cert_chain_pem, ca.private_key_pem.is_secret()).apply(capture)

    build()
    assert captured == {"chain": fake_cert("edge-cert") + "ROOT-PEM\n", "key_is_secret": True}
    assert unwrap_secret(recorder.named("edge-cert").inputs["caPrivateKeyPem"]) == ("ROOT-KEY", True)
    # The renewal default lives in the component: the last third of 10 days, not only after the end.
    assert recorder.named("edge-cert").inputs["earlyRenewalHours"] == 80
