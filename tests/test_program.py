"""The whole program: the trust tree it registers and the stack outputs it exports."""

from __future__ import annotations

import json

from pulumi.provider.experimental.analyzer import Analyzer

from istio_ca.cluster_ca import ClusterCA
from istio_ca.existing_root import ExistingRoot
from istio_ca.mesh_ca import MESH_CA_TYPE, MeshCA
from istio_ca.root_ca import RootCA
from istio_ca.workload_certs import WorkloadCerts
from tests.program import FAKE_NOT_AFTER, fake_cert, run_program, unwrap_secret

DEV_STACK = {"clusters": [{"name": "cluster1"}, {"name": "cluster2"}, {"name": "cluster3"}]}
ROOT_TYPE = "istio-ca:index:RootCA"
CLUSTER_TYPE = "istio-ca:index:ClusterCA"


def parent_of(urn: str) -> tuple[str, str]:
    """(type, name) of the resource a URN names."""
    qualified_type, name = urn.split("::")[2:4]
    return qualified_type.split("$")[-1], name


def test_trust_tree_is_one_root_with_each_cluster_under_it() -> None:
    recorder = run_program(DEV_STACK).recorder
    (mesh,) = recorder.of_type(MESH_CA_TYPE)
    assert mesh.name == "mesh" and parent_of(mesh.parent)[0] == "pulumi:pulumi:Stack"
    (root,) = recorder.of_type(ROOT_TYPE)
    assert root.name == "root"
    assert parent_of(root.parent) == (MESH_CA_TYPE, "mesh")
    clusters = recorder.of_type(CLUSTER_TYPE)
    assert sorted(c.name for c in clusters) == ["cluster1", "cluster2", "cluster3"]
    assert all(parent_of(c.parent) == (ROOT_TYPE, "root") for c in clusters)
    for name in ("root-key", "root-cert"):
        assert parent_of(recorder.named(name).parent) == (ROOT_TYPE, "root")


def test_every_cluster_child_is_parented_to_its_cluster() -> None:
    recorder = run_program(DEV_STACK).recorder
    for cluster in ("cluster1", "cluster2", "cluster3"):
        children = [r for r in recorder.resources if r.parent and parent_of(r.parent) == (CLUSTER_TYPE, cluster)]
        assert sorted((r.type, r.name) for r in children) == [
            ("kubernetes:core/v1:Secret", f"{cluster}-cacerts"),
            ("pulumi:providers:kubernetes", f"{cluster}-k8s"),
            ("tls:index/certRequest:CertRequest", f"{cluster}-csr"),
            ("tls:index/locallySignedCert:LocallySignedCert", f"{cluster}-cert"),
            ("tls:index/privateKey:PrivateKey", f"{cluster}-key"),
        ]
    assert len(recorder.resources) == 1 + 3 + 6 * 3  # the mesh; root, its key and cert; per cluster 1 + 5


def test_stack_outputs_hold_certificates_and_dates() -> None:
    outputs = run_program(DEV_STACK).outputs
    assert outputs["rootCertPem"] == (fake_cert("root-cert"), False)
    assert outputs["rootNotAfter"] == (FAKE_NOT_AFTER, False)
    clusters, clusters_secret = outputs["clusters"]
    assert not clusters_secret
    assert clusters["cluster2"] == {
        "certPem": fake_cert("cluster2-cert"),
        "certChainPem": fake_cert("cluster2-cert") + fake_cert("root-cert"),
        "notAfter": FAKE_NOT_AFTER,
        "renewalWindowOpens": "2035-05-02T16:00:00Z",  # 730 / 3 days = 243 d 8 h before 2036-01-01
        "keyGeneration": 1,
        "rootPhase": "other",  # the mocks' certificates do not parse; the e2e tests read real ones
    }


def test_no_private_key_in_any_plain_output() -> None:
    run = run_program(DEV_STACK)
    plain = {name: value for name, (value, secret) in run.outputs.items() if not secret}
    assert plain.keys() == {
        "rootCertPem",
        "rootNotAfter",
        "trustedRootsPem",
        "rootGenerations",
        "rootSettings",
        "clusters",
    }
    assert "PRIVATE KEY" not in json.dumps(plain)


def test_components_register_their_outputs_with_keys_only_as_secrets() -> None:
    registered = run_program(DEV_STACK).recorder.component_outputs
    assert set(registered) == {"mesh", "root", "cluster1", "cluster2", "cluster3"}
    # Every declared output; `adopted_root` is None without an adopted root, which the engine does not record.
    assert set(registered["mesh"]) == set(MeshCA.__annotations__) - {"adopted_root"}
    assert set(registered["root"]) == {"cert_pem", "private_key_pem", "not_after", "trusted_root_pems"}
    assert set(registered["cluster1"]) == {
        "cert_pem",
        "cert_chain_pem",
        "private_key_pem",
        "not_after",
        "renewal_opens",
        "cacerts",
        "cacerts_uid",
        "applied_roots",
    }
    for component, outputs in registered.items():
        secret = {name for name, value in outputs.items() if unwrap_secret(value)[1]}
        expected = {"mesh": {"workload_keys"}, "root": {"private_key_pem"}}.get(
            component, {"private_key_pem", "cacerts"}
        )
        assert secret == expected
        plain = {name: value for name, value in outputs.items() if name not in secret}
        assert "PRIVATE KEY" not in json.dumps(plain), component


def test_components_can_be_served_as_a_component_package() -> None:
    """The component-provider analyzer reads both components' args and outputs."""
    result = Analyzer("istio-ca").analyze([RootCA, ClusterCA, WorkloadCerts, ExistingRoot])
    adopted = result["component_definitions"]["ExistingRoot"]
    assert {"certPem", "privateKeyPem", "kubeconfig", "expectedSha256", "generations"} <= set(adopted.inputs)
    assert set(adopted.outputs) == {"certPem", "privateKeyPem", "notAfter", "sha256"}
    root = result["component_definitions"]["RootCA"]
    cluster = result["component_definitions"]["ClusterCA"]
    assert set(root.inputs) == {
        "organization",
        "commonName",
        "validityDays",
        "keyAlgorithm",
        "rsaBits",
        "ecdsaCurve",
        "generations",
        "signingGeneration",
    }
    assert set(root.outputs) == {"certPem", "privateKeyPem", "notAfter", "trustedRootPems"}
    assert {
        "issuerCertPem",
        "issuerPrivateKeyPem",
        "trustedRootPems",
        "dnsNames",
        "namespace",
        "kubeconfig",
        "renderDirectory",
    } <= set(cluster.inputs)
    assert set(cluster.outputs) == {
        "certPem",
        "certChainPem",
        "privateKeyPem",
        "notAfter",
        "renewalOpens",
        "cacerts",
        "cacertsUid",
        "appliedRoots",
    }
    assert root.inputs["rsaBits"].optional and not root.inputs["keyAlgorithm"].optional
    workload = result["component_definitions"]["WorkloadCerts"]
    assert {"namespace", "serviceAccount", "trustDomain", "workloadValidityDays"} <= set(workload.inputs)
    assert {"certPem", "certChainPem", "privateKeyPem", "caCertPem", "caPrivateKeyPem", "files"} <= set(
        workload.outputs
    )
