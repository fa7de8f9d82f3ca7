"""MeshPKI run as a `pulumi up` under the mocks, with the mocks acting as pulumi-tls: the root is a real
certificate and key, and each `<cluster>-cert` is a real certificate signed with the key the component
passes for the request it passes. What the PKI exports is only a certificate it checked as the intermediate
profile; and it warns when a re-issued intermediate would outlive the root."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pulumi
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from istio_ca import MeshPKI, MeshPKIArgs
from istio_ca.certificate_checks import CertificateError
from istio_ca.config import parse_settings
from istio_ca.config_schema import KeyAlgorithm, MeshConfig
from istio_ca.member_reports import expected_request, validity
from tests.program import Recorder, unwrap_secret, use_mocks
from tests.roots import make_root
from tests.test_member_reports import csr_for
from tests.test_mesh_member import drop_the_refused_run, private

MESH: MeshConfig = {"clusters": [{"name": "east"}], "intermediate": {"keyAlgorithm": KeyAlgorithm.ECDSA}}
EAST = parse_settings(MESH, frozenset({"east"})).clusters[0]
STACK = "o/mesh-cluster/east"
STACKS = {"east": STACK}
CSR = csr_for(EAST)
INTERMEDIATE_HOURS = 730 * 24
"""The default intermediate.days (Makefile INTERMEDIATE_DAYS), in hours: what pulumi-tls is asked for."""
SPIFFE = "spiffe://cluster.local/ns/istio-system/sa/istiod"
REFUSED = f"east: the certificate signed for stack {STACK}'s request: the signed certificate differs: "

Issue = Callable[[str, str, str], str]
"""(request PEM, CA certificate PEM, CA key PEM) -> the certificate the provider returns."""


def rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def as_pulumi_tls_issues(
    request_pem: str,
    ca_cert_pem: str,
    ca_key_pem: str,
    *,
    hours: int = INTERMEDIATE_HOURS,
    uris: tuple[str, ...] = (),
) -> str:
    """The certificate pulumi-tls's LocallySignedCert issues for the request with the intermediate profile:
    the request's subject and DNS names (and `uris`, as a provider that copied a request's URIs would),
    basicConstraints CA critical (pulumi-tls drops pathlen 0), keyUsage digitalSignature, nonRepudiation,
    keyEncipherment, keyCertSign critical, subjectKeyIdentifier, authorityKeyIdentifier of the issuer's, and
    NotAfter = NotBefore + `hours`."""
    request = x509.load_pem_x509_csr(request_pem.encode())
    issuer = x509.load_pem_x509_certificate(ca_cert_pem.encode())
    issuer_ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    requested = request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in requested.get_values_for_type(x509.DNSName)]
    names += [x509.UniformResourceIdentifier(uri) for uri in uris]
    now = datetime.now(UTC).replace(microsecond=0)
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=True,
        key_encipherment=True,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(request.subject)
        .issuer_name(issuer.subject)
        .public_key(request.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(hours=hours))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(request.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(private(ca_key_pem), hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@dataclass(frozen=True)
class Up:
    """An `up` of the PKI stack, ready to run."""

    recorder: Recorder
    warnings: list[str]
    """What the run warned of."""
    issued: dict[str, str]
    """What the provider issued, by resource name: `east-cert`'s certificate PEM."""
    root_not_after: str
    """The root's NotAfter, RFC 3339."""


def up_pki(monkeypatch: pytest.MonkeyPatch, issue: Issue = as_pulumi_tls_issues, root_days: int = 3650) -> Up:
    """An `up` of the PKI stack of east, whose stack reported a valid request; the provider makes a real root
    ending in `root_days` and issues east's certificate with `issue`."""
    recorder = use_mocks(preview=False)
    recorder.other_stacks[STACK] = {"istioCaMember": {"cluster": "east", "csrPem": CSR}}
    root_pem, root_key_pem = make_root(days=root_days, organization="mesh root", ecdsa=True)
    root_ends = rfc3339(x509.load_pem_x509_certificate(root_pem.encode()).not_valid_after_utc)
    up = Up(recorder=recorder, warnings=[], issued={}, root_not_after=root_ends)
    mocked = recorder.new_resource

    def new_resource(args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        resource_id, state = mocked(args)
        if args.name == "root-key":
            state["privateKeyPem"] = root_key_pem
        elif args.name == "root-cert":
            state.update(certPem=root_pem, validityEndTime=root_ends)
        elif args.typ == "tls:index/locallySignedCert:LocallySignedCert":
            inputs = args.inputs
            assert (inputs["certRequestPem"], inputs["caCertPem"]) == (CSR, root_pem)
            assert inputs["validityPeriodHours"] == INTERMEDIATE_HOURS
            ca_key_pem, secret = unwrap_secret(inputs["caPrivateKeyPem"])
            assert (ca_key_pem, secret) == (root_key_pem, True)
            cert_pem = issue(inputs["certRequestPem"], inputs["caCertPem"], ca_key_pem)
            not_after = x509.load_pem_x509_certificate(cert_pem.encode()).not_valid_after_utc
            up.issued[args.name] = cert_pem
            state.update(certPem=cert_pem, validityEndTime=rfc3339(not_after))
        return resource_id, state

    monkeypatch.setattr(recorder, "new_resource", new_resource)
    monkeypatch.setattr(pulumi.log, "warn", lambda message, *args, **kwargs: up.warnings.append(message))
    return up


def run(up: Up) -> None:
    """The program: the PKI, waiting for what it exports."""

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def program() -> pulumi.Output[Any]:
        pki = MeshPKI("pki", MeshPKIArgs(mesh=MESH, cluster_stacks=STACKS))
        return pulumi.Output.all(pki.exchange, pki.clusters)

    program()


def test_the_request_east_reported_is_the_one_the_pki_describes() -> None:
    """The premise of every test here: a request the PKI signs, not one it refuses before signing."""
    assert [name.value for name in x509.load_pem_x509_csr(CSR.encode()).subject] == [
        EAST.intermediate.organization,
        EAST.intermediate.common_name,
        "east",
    ]
    assert expected_request(EAST).dns_names == ("istiod.istio-system.svc",)


def test_a_certificate_issued_exactly_to_the_profile_is_exported(monkeypatch: pytest.MonkeyPatch) -> None:
    up = up_pki(monkeypatch)
    run(up)
    cert_pem = up.issued["east-cert"]
    outputs = up.recorder.component_outputs["pki"]
    assert outputs["clusters"]["east"]["certPem"] == cert_pem
    assert outputs["clusters"]["east"]["certChainPem"].startswith(cert_pem)
    assert outputs["exchange"]["clusters"]["east"]["certPem"] == cert_pem
    not_after = x509.load_pem_x509_certificate(cert_pem.encode()).not_valid_after_utc
    assert outputs["clusters"]["east"]["notAfter"] == rfc3339(not_after)
    assert outputs["clusters"]["east"]["issued"] == validity(cert_pem)
    assert not [line for line in up.warnings if "the root ends" in line], up.warnings


@pytest.mark.parametrize(
    ("issue", "difference"),
    [
        (
            partial(as_pulumi_tls_issues, uris=(SPIFFE,)),
            f"subjectAltName URI [{SPIFFE!r}], not []",
        ),
        (
            partial(as_pulumi_tls_issues, hours=INTERMEDIATE_HOURS + 1),
            f"NotAfter - NotBefore is {INTERMEDIATE_HOURS + 1} hours, not {INTERMEDIATE_HOURS} hours",
        ),
    ],
    ids=["a URI the request's SANs gave it", "an hour too long"],
)
def test_a_certificate_beyond_the_profile_is_refused_and_never_exported(
    monkeypatch: pytest.MonkeyPatch, issue: Issue, difference: str
) -> None:
    up = up_pki(monkeypatch, issue)
    with pytest.raises(CertificateError) as error:
        run(up)
    drop_the_refused_run()
    assert str(error.value) == REFUSED + difference
    cert_pem = up.issued["east-cert"]  # signed (the provider did), then refused before any output held it
    body = "".join(cert_pem.splitlines()[1:-1])
    registered = json.dumps(up.recorder.component_outputs, default=str).replace("\\n", "")
    assert body[:64] not in registered
    assert "clusters" not in up.recorder.component_outputs.get("pki", {})


def renewal_of(cert_pem: str) -> str:
    """When east's window opens for the certificate: its NotAfter less the default renewal window."""
    not_after = x509.load_pem_x509_certificate(cert_pem.encode()).not_valid_after_utc
    return rfc3339(not_after - timedelta(hours=EAST.renew_before_hours))


@pytest.mark.parametrize("root_days", [30, 3650], ids=["root ends in 30 days", "root ends in 10 years"])
def test_the_pki_warns_when_a_re_issued_intermediate_would_outlive_the_root(
    monkeypatch: pytest.MonkeyPatch, root_days: int
) -> None:
    up = up_pki(monkeypatch, root_days=root_days)
    run(up)
    first = [line for line in up.warnings if "the root ends" in line]
    if root_days == 3650:
        assert first == [], up.warnings
        return
    assert first == [
        f"the root ends {up.root_not_after}, before the intermediate CA of east re-issued at its renewal "
        f"({renewal_of(up.issued['east-cert'])}, 730 days) would: renew the root first (see the README, Day two)"
    ]
