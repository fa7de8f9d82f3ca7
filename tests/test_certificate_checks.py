"""The PKI exports a certificate it signed only when it is exactly the profile, the request and the issuer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from istio_ca.certificate_checks import CertificateError, certificate_differences, check_issued
from istio_ca.profiles import CA_KEY_USAGES, INTERMEDIATE_CA, ROOT_CA
from tests.test_csr_checks import EXPECTED, GO_REQUEST, request

HOURS = 730 * 24
WHERE = "stack organization/mesh-pki/prod, cluster east's intermediate"
SPIFFE = "spiffe://cluster.local/ns/x/sa/y"
Key = ec.EllipticCurvePrivateKey

GO_ROOT = """-----BEGIN CERTIFICATE-----
MIIBhTCCASqgAwIBAgIQaS1OTGteeg93573ANGA0sTAKBggqhkjOPQQDAjAiMQ4w
DAYDVQQKEwVJc3RpbzEQMA4GA1UEAxMHUm9vdCBDQTAeFw0yNjEyMDIyMTM5Mzda
Fw0zNjExMjkyMTM5MzdaMCIxDjAMBgNVBAoTBUlzdGlvMRAwDgYDVQQDEwdSb290
IENBMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAELbqnwbYUt2Xp3C+VeQDkWrKj
PDPDa1qQYKWXEJFRHxACPuz/in2JGzHZyUCFcV+8w+5RUOEdQ6LnQ9bhkBONmKNC
MEAwDgYDVR0PAQH/BAQDAgLkMA8GA1UdEwEB/wQFMAMBAf8wHQYDVR0OBBYEFAfb
YfQ3C3No1Of32k9wFs1ZJq2OMAoGCCqGSM49BAMCA0kAMEYCIQDtR5Z1Re8fBXZT
bhUBE9QNmocrvIlVgGFjJNqGeMTJxwIhAMRdlnaJM2jdJJ40HBI7HXiZtCtC+V/8
MGRnWwor4k12
-----END CERTIFICATE-----
"""
GO_INTERMEDIATE = """-----BEGIN CERTIFICATE-----
MIIB4zCCAYmgAwIBAgIRAPmCc8vNDyHkZjuHBYy7Ya4wCgYIKoZIzj0EAwIwIjEO
MAwGA1UEChMFSXN0aW8xEDAOBgNVBAMTB1Jvb3QgQ0EwHhcNMjYxMjAyMjEzOTM3
WhcNMjgxMjAxMjEzOTM3WjA5MQ0wCwYDVQQHEwRlYXN0MQ4wDAYDVQQKEwVJc3Rp
bzEYMBYGA1UEAxMPSW50ZXJtZWRpYXRlIENBMFkwEwYHKoZIzj0CAQYIKoZIzj0D
AQcDQgAEm5DYLDeKFtSFi79nhEfkxSlntJSWpQgYlqBXlNntWrPJJE0iI22Ztl0N
T/oHfY6QBfiYKSWRggoP3mNBPk9hKaOBiDCBhTAOBgNVHQ8BAf8EBAMCAuQwDwYD
VR0TAQH/BAUwAwEB/zAdBgNVHQ4EFgQUKUOa1/7FaP6xkuybgOn3glCrdsQwHwYD
VR0jBBgwFoAUB9th9DcLc2jU5/faT3AWzVkmrY4wIgYDVR0RBBswGYIXaXN0aW9k
LmlzdGlvLXN5c3RlbS5zdmMwCgYIKoZIzj0EAwIDSAAwRQIhAPwot9BDAJrnmMXl
oO/fGE1hEidio0Ka3T/A9OH/EwSCAiBouuX48c4Sq6CHhCuCUgMSSSLCbe/pLdbw
eiBbDVhRyg==
-----END CERTIFICATE-----
"""
"""A root as pulumi-tls's SelfSignedCert makes it for ROOT_CA, and the intermediate its LocallySignedCert signs
for GO_REQUEST with INTERMEDIATE_CA for 730 days: Go's x509.CreateCertificate of the provider's templates
(IsCA, MaxPathLen 0 without MaxPathLenZero, so no pathlen; SHA-1 subjectKeyIdentifier), made once with Go 1.26."""


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def key_usage(usages: tuple[str, ...]) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature="digital_signature" in usages,
        content_commitment="content_commitment" in usages,
        key_encipherment="key_encipherment" in usages,
        data_encipherment="data_encipherment" in usages,
        key_agreement=False,
        key_cert_sign="cert_signing" in usages,
        crl_sign="crl_signing" in usages,
        encipher_only=False,
        decipher_only=False,
    )


ROOT_KEY = ec.generate_private_key(ec.SECP256R1())
ROOT_NAME = x509.Name(
    [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Istio"), x509.NameAttribute(NameOID.COMMON_NAME, "Root CA")]
)
ROOT = (
    x509.CertificateBuilder()
    .subject_name(ROOT_NAME)
    .issuer_name(ROOT_NAME)
    .public_key(ROOT_KEY.public_key())
    .serial_number(x509.random_serial_number())
    .not_valid_before(datetime.now(UTC))
    .not_valid_after(datetime.now(UTC) + timedelta(days=3650))
    .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    .add_extension(key_usage(CA_KEY_USAGES), critical=True)
    .add_extension(x509.SubjectKeyIdentifier.from_public_key(ROOT_KEY.public_key()), critical=False)
    .sign(ROOT_KEY, hashes.SHA256())
)
KEY = ec.generate_private_key(ec.SECP256R1())
REQUEST = request(key=KEY)
SUBJECT = x509.Name(
    [
        x509.NameAttribute(NameOID.LOCALITY_NAME, "east"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Istio"),
        x509.NameAttribute(NameOID.COMMON_NAME, "Intermediate CA"),
    ]
)
ABSENT = None


def issue(
    *,
    subject: x509.Name = SUBJECT,
    also_named: tuple[x509.GeneralName, ...] = (),
    ca: bool = True,
    path_length: int | None = 0,
    usages: tuple[str, ...] = CA_KEY_USAGES,
    key_usage_critical: bool = True,
    extended_key_usage: tuple[x509.ObjectIdentifier, ...] = (),
    subject_key_identifier: bool = True,
    extra: tuple[x509.ExtensionType, ...] = (),
    hours: int = HOURS,
    seconds: int = 0,
    issuer: x509.Name = ROOT_NAME,
    issuer_key: Key = ROOT_KEY,
    key: Key = KEY,
) -> str:
    """The intermediate as pulumi-tls issues it for INTERMEDIATE_CA, or with what is given instead: NotBefore
    now (whole seconds, as X.509 times are), NotAfter that many hours later."""
    not_before = datetime.now(UTC).replace(microsecond=0)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + timedelta(hours=hours, seconds=seconds))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
        .add_extension(key_usage(usages), critical=key_usage_critical)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                x509.SubjectKeyIdentifier.from_public_key(issuer_key.public_key())
            ),
            critical=False,
        )
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("istiod.istio-system.svc"), *also_named]), critical=False
        )
    )
    if subject_key_identifier:
        builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    if extended_key_usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(extended_key_usage)), critical=False)
    for extension in extra:
        builder = builder.add_extension(extension, critical=False)
    return pem(builder.sign(issuer_key, hashes.SHA256()))


def check(cert_pem: str, *, issuer_pem: str = pem(ROOT), request_pem: str = REQUEST, strict: bool = False) -> None:
    check_issued(
        cert_pem,
        issuer_pem=issuer_pem,
        request_pem=request_pem,
        expected=EXPECTED,
        profile=INTERMEDIATE_CA,
        validity_hours=HOURS,
        where=WHERE,
        allow_dropped_path_length=not strict,
    )


def test_a_certificate_signed_exactly_to_the_profile_passes() -> None:
    check(issue(), strict=True)


def test_the_intermediate_pulumi_tls_issues_passes() -> None:
    """Go's own output, pathlen dropped and all: what the PKI will check on every run."""
    check(GO_INTERMEDIATE, issuer_pem=GO_ROOT, request_pem=GO_REQUEST)


def test_the_root_pulumi_tls_issues_is_its_profile() -> None:
    root = x509.load_pem_x509_certificate(GO_ROOT.encode())
    subject = {NameOID.ORGANIZATION_NAME: "Istio", NameOID.COMMON_NAME: "Root CA"}
    assert certificate_differences(root, issuer=root, profile=ROOT_CA, subject=subject, validity_hours=87600) == []


def test_the_pathlen_pulumi_tls_drops_is_refused_only_when_strict() -> None:
    check(issue(path_length=ABSENT))
    with pytest.raises(CertificateError, match=r"basicConstraints pathlen is absent, not 0$"):
        check(issue(path_length=ABSENT), strict=True)


OTHER_KEY = ec.generate_private_key(ec.SECP256R1())


@pytest.mark.parametrize(
    ("cert_pem", "message"),
    [
        (
            issue(also_named=(x509.UniformResourceIdentifier(SPIFFE),)),
            f"subjectAltName URI [{SPIFFE!r}], not []",
        ),
        (
            issue(subject=x509.Name([*SUBJECT, x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Mesh")])),
            "subject also holds organizationalUnitName ['Mesh']",
        ),
        (
            issue(subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Intermediate CA")])),
            "subject organizationName is [], not ['Istio']; subject localityName is [], not ['east']",
        ),
        (issue(usages=CA_KEY_USAGES[:-1]), "keyUsage lacks cert_signing"),
        (issue(usages=(*CA_KEY_USAGES, "crl_signing")), "keyUsage also allows crl_signing"),
        (issue(key_usage_critical=False), "keyUsage is not critical"),
        (
            issue(extended_key_usage=(ExtendedKeyUsageOID.SERVER_AUTH,)),
            "extensions beyond the profile: extendedKeyUsage",
        ),
        (
            issue(
                extra=(x509.NameConstraints(permitted_subtrees=[x509.DNSName("x.example")], excluded_subtrees=None),)
            ),
            "extensions beyond the profile: nameConstraints",
        ),
        (issue(subject_key_identifier=False), "extensions missing: subjectKeyIdentifier"),
        (issue(path_length=1), "basicConstraints pathlen is 1, not 0"),
        (issue(ca=False, path_length=None), "basicConstraints CA is False, not True"),
        (issue(hours=HOURS + 1), f"NotAfter - NotBefore is {HOURS + 1} hours, not {HOURS} hours"),
        (issue(seconds=1), f"NotAfter - NotBefore is 730 days, 0:00:01, not {HOURS} hours"),
        (issue(issuer_key=OTHER_KEY), "its signature does not verify with the issuer's key"),
        (
            issue(issuer=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Other CA")]), issuer_key=OTHER_KEY),
            "issuer is 'CN=Other CA', not 'CN=Root CA,O=Istio'",
        ),
        (issue(key=OTHER_KEY), "its public key is not the request's"),
    ],
    ids=[
        "uri san",
        "ou",
        "subject lacks o and l",
        "no keyCertSign",
        "crl signing",
        "key usage not critical",
        "eku",
        "name constraints",
        "no ski",
        "pathlen 1",
        "not ca",
        "an hour longer",
        "a second longer",
        "other issuer key",
        "other issuer name",
        "other public key",
    ],
)
def test_a_certificate_unlike_what_was_asked_for_is_refused_naming_the_difference(cert_pem: str, message: str) -> None:
    with pytest.raises(CertificateError) as error:
        check(cert_pem, strict=True)
    refusal = str(error.value)
    assert refusal.startswith(f"{WHERE}: the signed certificate differs: ") and message in refusal, refusal
    assert "\n" not in refusal


def test_every_difference_is_named() -> None:
    cert = issue(path_length=1, extended_key_usage=(ExtendedKeyUsageOID.CLIENT_AUTH,), hours=1)
    with pytest.raises(CertificateError) as error:
        check(cert)
    assert str(error.value) == (
        f"{WHERE}: the signed certificate differs: extensions beyond the profile: extendedKeyUsage; "
        f"basicConstraints pathlen is 1, not 0; NotAfter - NotBefore is 1 hour, not {HOURS} hours"
    )


def test_what_is_not_pem_is_refused() -> None:
    with pytest.raises(CertificateError, match=f"^{WHERE}: the signed certificate is not PEM$"):
        check("-----BEGIN CERTIFICATE-----\nnot one\n-----END CERTIFICATE-----\n")
