"""The root CA's pulumi-tls arguments, checked against the profile data and literally."""

from __future__ import annotations

from istio_ca.profiles import ROOT_CA
from tests.program import fake_private_key, run_program, unwrap_secret

DEV_STACK = {"clusters": [{"name": "cluster1"}, {"name": "cluster2"}]}


def test_root_key_is_rsa_4096_by_default() -> None:
    run = run_program(DEV_STACK)
    assert run.recorder.named("root-key").inputs == {"algorithm": "RSA", "rsaBits": 4096}


def test_root_key_can_be_ecdsa() -> None:
    run = run_program({**DEV_STACK, "root": {"keyAlgorithm": "ECDSA", "keySize": 384}})
    assert run.recorder.named("root-key").inputs == {"algorithm": "ECDSA", "ecdsaCurve": "P384"}


def test_root_certificate_arguments_follow_the_profile() -> None:
    inputs = run_program(DEV_STACK).recorder.named("root-cert").inputs
    assert inputs["allowedUses"] == list(ROOT_CA.key_usages)
    assert inputs["isCaCertificate"] is ROOT_CA.is_ca
    assert inputs.get("maxPathLength") == ROOT_CA.max_path_length
    assert inputs["setSubjectKeyId"] is ROOT_CA.subject_key_identifier
    assert inputs["setAuthorityKeyId"] is ROOT_CA.authority_key_identifier


def test_root_certificate_arguments_literally() -> None:
    inputs = run_program(DEV_STACK).recorder.named("root-cert").inputs
    key_pem, key_is_secret = unwrap_secret(inputs.pop("privateKeyPem"))
    assert (key_pem, key_is_secret) == (fake_private_key("root-key"), True)
    assert inputs == {
        "subject": {"organization": "Istio", "commonName": "Root CA"},
        "validityPeriodHours": 3650 * 24,
        "allowedUses": ["digital_signature", "content_commitment", "key_encipherment", "cert_signing"],
        "isCaCertificate": True,
        "setSubjectKeyId": True,
        "setAuthorityKeyId": False,
    }


def test_root_settings_reach_the_certificate() -> None:
    run = run_program({**DEV_STACK, "root": {"days": 9000, "org": "Acme", "commonName": "Acme Root"}})
    inputs = run.recorder.named("root-cert").inputs
    assert inputs["subject"] == {"organization": "Acme", "commonName": "Acme Root"}
    assert inputs["validityPeriodHours"] == 9000 * 24
