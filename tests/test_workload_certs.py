"""VM workload certificates: a namespace intermediate and a SPIFFE leaf, like `<namespace>-certs`."""

from __future__ import annotations

import json
from typing import Any

from istio_ca.profiles import INTERMEDIATE_CA, WORKLOAD
from tests.program import fake_cert, fake_private_key, run_program, unwrap_secret

STACK: dict[str, Any] = {
    "clusters": [{"name": "cluster1"}],
    "workloads": [{"namespace": "vm-apps", "serviceAccount": "vm-sa"}],
}
WORKLOAD_TYPE = "istio-ca:index:WorkloadCerts"


def test_workload_certs_sit_under_the_root_with_two_signed_certificates() -> None:
    recorder = run_program(STACK).recorder
    (component,) = recorder.of_type(WORKLOAD_TYPE)
    assert component.name == "vm-apps"
    assert component.parent.split("::")[2].endswith("istio-ca:index:RootCA")
    children = sorted(r.name for r in recorder.resources if r.parent.endswith("::vm-apps"))
    assert children == [
        "vm-apps-ca-cert",
        "vm-apps-ca-csr",
        "vm-apps-ca-key",
        "vm-apps-cert",
        "vm-apps-csr",
        "vm-apps-key",
    ]
    assert [s.name for s in recorder.of_type("kubernetes:core/v1:Secret")] == ["cluster1-cacerts"]  # none for VMs


def test_namespace_intermediate_is_signed_by_the_root_with_the_intermediate_profile() -> None:
    recorder = run_program(STACK).recorder
    csr = dict(recorder.named("vm-apps-ca-csr").inputs)
    csr.pop("privateKeyPem")
    assert csr == {
        "subject": {"organization": "Istio", "commonName": "Intermediate CA", "locality": "vm-apps"},
        "dnsNames": ["istiod.istio-system.svc"],
    }
    cert = dict(recorder.named("vm-apps-ca-cert").inputs)
    assert unwrap_secret(cert.pop("caPrivateKeyPem")) == (fake_private_key("root-key"), True)
    assert cert["caCertPem"] == fake_cert("root-cert")
    assert cert["allowedUses"] == INTERMEDIATE_CA.allowed_uses
    assert (cert["isCaCertificate"], cert["maxPathLength"], cert["validityPeriodHours"]) == (True, 0, 730 * 24)


def test_leaf_is_the_makefiles_workload_certificate_literally() -> None:
    recorder = run_program(STACK).recorder
    csr = dict(recorder.named("vm-apps-csr").inputs)
    assert unwrap_secret(csr.pop("privateKeyPem")) == (fake_private_key("vm-apps-key"), True)
    assert csr == {
        "subject": {"organization": "Istio", "commonName": "Workload", "locality": "vm-apps"},
        "uris": ["spiffe://cluster.local/ns/vm-apps/sa/vm-sa"],
    }
    cert = dict(recorder.named("vm-apps-cert").inputs)
    assert unwrap_secret(cert.pop("caPrivateKeyPem")) == (fake_private_key("vm-apps-ca-key"), True)
    assert cert == {
        "certRequestPem": "csr-of-vm-apps-csr",
        "caCertPem": fake_cert("vm-apps-ca-cert"),
        "validityPeriodHours": 24,
        "earlyRenewalHours": 8,  # the last third of one day
        "allowedUses": ["digital_signature", "key_encipherment", "server_auth", "client_auth"],
        "isCaCertificate": False,
        "setSubjectKeyId": True,
    }
    assert cert["allowedUses"] == WORKLOAD.allowed_uses
    assert recorder.named("vm-apps-key").inputs == {"algorithm": "RSA", "rsaBits": 4096}


def test_workload_outputs_keep_keys_apart_and_secret() -> None:
    run = run_program(STACK)
    workloads, workloads_secret = run.outputs["workloads"]
    assert not workloads_secret
    assert workloads["vm-apps"]["certPem"] == fake_cert("vm-apps-cert")
    assert workloads["vm-apps"]["caCertPem"] == fake_cert("vm-apps-ca-cert")
    assert workloads["vm-apps"]["certChainPem"] == (
        fake_cert("vm-apps-cert") + fake_cert("vm-apps-ca-cert") + fake_cert("root-cert")
    )
    assert "PRIVATE KEY" not in json.dumps(workloads)
    keys, keys_secret = run.outputs["workloadKeys"]
    assert keys_secret
    assert keys == {
        "vm-apps": {"keyPem": fake_private_key("vm-apps-key"), "caKeyPem": fake_private_key("vm-apps-ca-key")}
    }
    registered = run.recorder.component_outputs["vm-apps"]
    for name in ("private_key_pem", "ca_private_key_pem", "files"):
        assert unwrap_secret(registered[name])[1], name


def test_no_workloads_no_workload_outputs() -> None:
    outputs = run_program({"clusters": [{"name": "cluster1"}]}).outputs
    assert "workloads" not in outputs and "workloadKeys" not in outputs
