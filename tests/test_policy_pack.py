"""The policy pack's rules (policy/cacerts_guard), each on a resource that passes and one that breaks it, as the
engine would show them: inputs, some still unknown at preview, and across a stack the resources each input
came from. The pack's wiring (policy/__main__.py) needs pulumi-policy and runs in tests/e2e/test_policy_pack.py.
"""

from __future__ import annotations

import base64
import datetime
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID

from cacerts_guard.resources import (
    CERT_REQUEST,
    KUBERNETES_PROVIDER,
    LOCALLY_SIGNED_CERT,
    PRIVATE_KEY,
    SECRET,
    SELF_SIGNED_CERT,
    STACK,
    UNKNOWN,
    Resource,
    Stack,
)
from cacerts_guard.rules import PLANNED_SUFFIX, RULES, Rule, policy_names
from istio_ca.private_keys import holds_private_key
from istio_ca.profiles import CA_KEY_USAGES
from tests.program import PROJECT_DIR

DAY = 24
NOW = datetime.datetime.now(datetime.UTC)


def key_pem(key: CertificateIssuerPrivateKeyTypes) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def certificate(
    name: str,
    key: CertificateIssuerPrivateKeyTypes,
    *,
    issuer: tuple[x509.Certificate, CertificateIssuerPrivateKeyTypes] | None = None,
    ca: bool = True,
    days: int = 365,
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_name, signer = (issuer[0].subject, issuer[1]) if issuer else (subject, key)
    algorithm = None if isinstance(signer, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW)
        .not_valid_after(NOW + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(signer, algorithm)
    )


def cert_pem(*certs: x509.Certificate) -> str:
    return "".join(cert.public_bytes(serialization.Encoding.PEM).decode() for cert in certs)


def request_pem(key: CertificateIssuerPrivateKeyTypes) -> str:
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "intermediate")]))
        .sign(key, algorithm)
    )
    return request.public_bytes(serialization.Encoding.PEM).decode()


ROOT_KEY = ec.generate_private_key(ec.SECP256R1())
ROOT = certificate("root", ROOT_KEY, days=3650)
CA_KEY = ec.generate_private_key(ec.SECP384R1())
CA = certificate("intermediate", CA_KEY, issuer=(ROOT, ROOT_KEY), days=730)
LEAF_KEY = ec.generate_private_key(ec.SECP256R1())
LEAF = certificate("leaf", LEAF_KEY, ca=False)
SMALL_RSA = rsa.generate_private_key(public_exponent=65537, key_size=1024)
ED25519 = ed25519.Ed25519PrivateKey.generate()
P521 = ec.generate_private_key(ec.SECP521R1())
CACERTS = {
    "ca-cert.pem": cert_pem(CA),
    "ca-key.pem": key_pem(CA_KEY),
    "root-cert.pem": cert_pem(ROOT),
    "cert-chain.pem": cert_pem(CA, ROOT),
}
MUTABLE = Resource(KUBERNETES_PROVIDER, "cluster", {"enableSecretMutable": "true", "kubeconfig": "{}"})


def root(**props: Any) -> Resource:
    base = {
        "privateKeyPem": key_pem(ROOT_KEY),
        "isCaCertificate": True,
        "allowedUses": list(CA_KEY_USAGES),
        "validityPeriodHours": 3650 * DAY,
    }
    return Resource(SELF_SIGNED_CERT, "root", {**base, **props})


def intermediate(**props: Any) -> Resource:
    base = {
        "certRequestPem": request_pem(CA_KEY),
        "caCertPem": cert_pem(ROOT),
        "caPrivateKeyPem": key_pem(ROOT_KEY),
        "isCaCertificate": True,
        "allowedUses": list(CA_KEY_USAGES),
        "validityPeriodHours": 730 * DAY,
    }
    return Resource(LOCALLY_SIGNED_CERT, "intermediate", {**base, **props})


def cacerts(files: Mapping[str, str] = CACERTS, provider: Resource | None = MUTABLE, **props: Any) -> Resource:
    data = {name: base64.b64encode(text.encode()).decode() for name, text in files.items()}
    base = {"metadata": {"name": "cacerts", "namespace": "istio-system"}, "type": "Opaque", "data": data}
    return Resource(SECRET, "cluster1-cacerts", {**base, **props}, provider=provider)


def without(name: str) -> dict[str, str]:
    return {key: value for key, value in CACERTS.items() if key != name}


RESOURCE_CASES: list[tuple[str, Resource, Resource]] = [
    ("ca-key-rsa-too-small", root(), root(privateKeyPem=key_pem(SMALL_RSA))),
    ("ca-key-rsa-too-small", intermediate(), intermediate(caPrivateKeyPem=key_pem(SMALL_RSA))),
    ("ca-key-rsa-too-small", cacerts(), cacerts({**CACERTS, "ca-key.pem": key_pem(SMALL_RSA)})),
    ("ca-key-unsupported-algorithm", root(), root(privateKeyPem=key_pem(ED25519))),
    ("ca-key-unsupported-algorithm", intermediate(), intermediate(certRequestPem=request_pem(P521))),
    ("ca-key-unsupported-algorithm", cacerts(), cacerts({**CACERTS, "ca-key.pem": key_pem(ED25519)})),
    ("ca-extended-key-usage", intermediate(), intermediate(allowedUses=[*CA_KEY_USAGES, "server_auth"])),
    ("ca-missing-key-cert-sign", root(), root(allowedUses=["digital_signature", "key_encipherment"])),
    ("ca-issuer-not-ca", intermediate(), intermediate(caCertPem=cert_pem(LEAF))),
    ("ca-validity-too-long", root(), root(validityPeriodHours=7301 * DAY)),
    ("ca-validity-too-long", intermediate(), intermediate(validityPeriodHours=3651 * DAY)),
    ("ca-outlives-root", intermediate(), intermediate(validityPeriodHours=3651 * DAY)),
    ("cacerts-missing-file", cacerts(), cacerts(without("cert-chain.pem"))),
    ("cacerts-istio-generated", cacerts(), cacerts({**CACERTS, "istio-generated": ""})),
    ("cacerts-not-opaque", cacerts(), cacerts(type="kubernetes.io/tls")),
    ("cacerts-broken-chain", cacerts(), cacerts({**CACERTS, "root-cert.pem": cert_pem(LEAF)})),
    ("cacerts-key-mismatch", cacerts(), cacerts({**CACERTS, "ca-key.pem": key_pem(ROOT_KEY)})),
    ("cacerts-root-not-ca", cacerts(), cacerts({**CACERTS, "root-cert.pem": cert_pem(ROOT, LEAF)})),
    ("cacerts-provider-not-mutable", cacerts(), cacerts(provider=replace(MUTABLE, props={}))),
    (
        "private-key-in-input",
        Resource("kubernetes:core/v1:ConfigMap", "ca", {"data": {"ca.pem": cert_pem(ROOT)}}),
        Resource("kubernetes:core/v1:ConfigMap", "ca", {"data": {"ca.pem": cert_pem(ROOT) + key_pem(ROOT_KEY)}}),
    ),
    (
        "private-key-in-input",
        Resource(SECRET, "tls", {"stringData": {"tls.key": key_pem(LEAF_KEY)}}),
        Resource(
            SECRET, "tls", {"metadata": {"annotations": {"key": base64.b64encode(key_pem(LEAF_KEY).encode()).decode()}}}
        ),
    ),
]


def rule(name: str) -> Rule:
    (found,) = [rule for rule in RULES if rule.name == name]
    return found


def assert_named_only(findings: list[str]) -> None:
    """A finding names fields and resources, never a value."""
    for message in findings:
        assert "PRIVATE KEY" not in message and "CERTIFICATE" not in message and not holds_private_key(message)


@pytest.mark.parametrize(("name", "passing", "failing"), RESOURCE_CASES)
def test_each_resource_rule_passes_good_material_and_refuses_its_mistake(
    name: str, passing: Resource, failing: Resource
) -> None:
    assert rule(name).findings(passing) == []
    findings = rule(name).findings(failing)
    assert findings
    assert_named_only(findings)


def test_the_good_material_passes_every_rule() -> None:
    as_string_data = cacerts(data=None, stringData=dict(CACERTS))
    mismatched = cacerts(data=None, stringData={**CACERTS, "ca-key.pem": key_pem(ROOT_KEY)})
    assert rule("cacerts-key-mismatch").findings(mismatched) == ["ca-key.pem is not the key of ca-cert.pem"]
    for resource in (root(), intermediate(), cacerts(), as_string_data, MUTABLE):
        assert {r.name: r.findings(resource) for r in RULES if r.check} == {r.name: [] for r in RULES if r.check}


def test_a_preview_judges_only_what_is_known() -> None:
    """At preview a new certificate's PEM, and so a Secret's data, is unknown: no finding, and no error."""
    unknown = [
        root(privateKeyPem=UNKNOWN),
        intermediate(caCertPem=UNKNOWN, caPrivateKeyPem=UNKNOWN, certRequestPem=UNKNOWN, validityPeriodHours=UNKNOWN),
        cacerts(data=UNKNOWN),
        cacerts(data={name: UNKNOWN for name in CACERTS}),
        cacerts(provider=replace(MUTABLE, props={"enableSecretMutable": UNKNOWN})),
        Resource(SECRET, "cacerts", {"metadata": UNKNOWN, "type": "kubernetes.io/tls"}),
    ]
    for resource in unknown:
        assert {r.name: r.findings(resource) for r in RULES if r.check} == {r.name: [] for r in RULES if r.check}
    # What is known is judged: the type, and the names of files whose values are still unknown.
    partly = cacerts(type="kubernetes.io/tls", data={"ca-cert.pem": UNKNOWN, "istio-generated": UNKNOWN})
    assert rule("cacerts-not-opaque").findings(partly)
    assert rule("cacerts-missing-file").findings(partly) == ["cacerts lacks ca-key.pem, root-cert.pem, cert-chain.pem"]
    assert rule("cacerts-istio-generated").findings(partly)


def test_the_limits_are_the_config_s() -> None:
    assert rule("ca-validity-too-long").findings(root(validityPeriodHours=7301 * DAY), {"maxRootDays": 7400}) == []
    assert rule("ca-validity-too-long").findings(root(), {"maxRootDays": 365})
    assert rule("ca-key-rsa-too-small").findings(
        root(privateKeyPem=key_pem(rsa.generate_private_key(65537, 2048))), {"minRsaBits": 3072}
    )
    leak = Resource("example:index:Vault", "vault", {"payload": {"key": key_pem(LEAF_KEY)}})
    assert rule("private-key-in-input").findings(leak)
    assert rule("private-key-in-input").findings(leak, {"keyBearingFields": ["example:index:Vault:payload.*"]}) == []


def planned(key: Mapping[str, Any], *, into: str = "cert", issuer_ca: bool = True, hours: int = 730 * DAY) -> Stack:
    """A stack at preview: a PrivateKey `key` that becomes the root's key (`into` "root"), the intermediate's
    (through its CertRequest, "cert") or a leaf's ("leaf"); the intermediate signed under the root."""
    private_key = Resource(PRIVATE_KEY, "key", dict(key), "urn:key")
    request = Resource(CERT_REQUEST, "csr", {"privateKeyPem": UNKNOWN}, "urn:csr", None, {"privateKeyPem": ["urn:key"]})
    issuer = Resource(
        SELF_SIGNED_CERT,
        "root",
        {**root().props, "privateKeyPem": UNKNOWN, "isCaCertificate": issuer_ca},
        "urn:root",
        None,
        {"privateKeyPem": ["urn:key"] if into == "root" else ["urn:root-key"]},
    )
    signed = Resource(
        LOCALLY_SIGNED_CERT,
        "intermediate" if into != "leaf" else "leaf",
        {**intermediate().props, "certRequestPem": UNKNOWN, "caCertPem": UNKNOWN, "validityPeriodHours": hours}
        | ({"isCaCertificate": False} if into == "leaf" else {}),
        "urn:cert",
        None,
        {"certRequestPem": ["urn:csr"], "caCertPem": ["urn:root"], "caPrivateKeyPem": ["urn:root-key"]},
    )
    outputs = Resource(STACK, "stack", {"rootCertPem": cert_pem(ROOT)}, "urn:stack")
    return Stack([private_key, request, issuer, signed, outputs])


STACK_CASES: list[tuple[str, Stack, Stack]] = [
    # A small key that makes no CA is not the pack's business.
    (
        "ca-key-rsa-too-small",
        Stack([Resource(PRIVATE_KEY, "web", {"algorithm": "RSA", "rsaBits": 1024}, "urn:web")]),
        planned({"algorithm": "RSA", "rsaBits": 1024}),
    ),
    (
        "ca-key-rsa-too-small",
        planned({"algorithm": "RSA", "rsaBits": 2048}),
        planned({"algorithm": "RSA", "rsaBits": 1024}),
    ),
    (
        "ca-key-rsa-too-small",
        planned({"algorithm": "RSA"}),
        planned({"algorithm": "RSA", "rsaBits": 1024}, into="root"),
    ),
    (
        "ca-key-unsupported-algorithm",
        planned({"algorithm": "ECDSA", "ecdsaCurve": "P384"}),
        planned({"algorithm": "ECDSA", "ecdsaCurve": "P521"}),
    ),
    ("ca-key-unsupported-algorithm", planned({"algorithm": "ED25519"}, into="leaf"), planned({"algorithm": "ED25519"})),
    # pulumi-tls's default curve is P-224.
    ("ca-key-unsupported-algorithm", planned({"algorithm": "RSA"}), planned({"algorithm": "ECDSA"}, into="root")),
    ("ca-issuer-not-ca", planned({"algorithm": "RSA"}), planned({"algorithm": "RSA"}, issuer_ca=False)),
    ("ca-outlives-root", planned({"algorithm": "RSA"}), planned({"algorithm": "RSA"}, hours=3650 * DAY)),
]


@pytest.mark.parametrize(("name", "passing", "failing"), STACK_CASES)
def test_each_planned_companion_judges_what_a_ca_is_made_from(name: str, passing: Stack, failing: Stack) -> None:
    assert rule(name).stack_findings(passing) == []
    findings = rule(name).stack_findings(failing)
    assert findings
    assert_named_only([message for _, message in findings])


def test_a_key_in_a_stack_output_is_found_whatever_its_encoding() -> None:
    def outputs(**values: Any) -> Stack:
        return Stack([Resource(STACK, "stack", values, "urn:stack")])

    check = rule("private-key-in-output")
    assert check.stack_findings(outputs(rootCertPem=cert_pem(ROOT), clusters={"c": {"certPem": cert_pem(CA)}})) == []
    encoded = base64.b64encode(key_pem(CA_KEY).encode()).decode()
    found = check.stack_findings(outputs(clusters={"c": {"cacerts": {"ca-key.pem": encoded}}}))
    assert found == [("urn:stack", "stack output clusters.c.cacerts.ca-key.pem holds a private key")]
    assert (
        check.stack_findings(outputs(workloadKeys={"ns": key_pem(LEAF_KEY)}), {"allowedOutputs": ["workloadKeys"]})
        == []
    )


def test_every_rule_is_documented_and_the_pack_pins_what_the_program_pins() -> None:
    readme = (PROJECT_DIR / "README.md").read_text()
    section = readme[readme.index("## Guard any stack with the policy pack") : readme.index("## Split the PKI")]
    assert set(re.findall(r"`([a-z-]+)`", section)) >= set(policy_names())
    assert all(rule.reason and rule.catches for rule in RULES)
    assert {name.removesuffix(PLANNED_SUFFIX) for name in policy_names()} == {rule.name for rule in RULES}

    def pins(path: str) -> dict[str, str]:
        lines = (PROJECT_DIR / path).read_text().splitlines()
        return dict(line.split("==") for line in lines if "==" in line and not line.startswith("#"))

    pack, program = pins("policy/requirements.txt"), pins("requirements.txt")
    assert {name: pack.get(name) for name in program} == program  # every pin of the program's, at its version
    assert "pulumi-policy" in pack and "protobuf" in pack
