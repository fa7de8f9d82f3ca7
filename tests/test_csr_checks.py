"""The PKI signs a cluster's CSR only when it asks for exactly that cluster's intermediate."""

from __future__ import annotations

import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import AttributeOID, ExtendedKeyUsageOID, NameOID

from istio_ca.csr_checks import CsrError, ExpectedRequest, check_request
from istio_ca.settings import KeySettings

EXPECTED = ExpectedRequest(
    organization="Istio",
    common_name="Intermediate CA",
    locality="east",
    dns_names=("istiod.istio-system.svc",),
    key=KeySettings(algorithm="ECDSA", size=256),
)
WHERE = "stack organization/mesh-cluster/east, output istioCaMember.csrPem"


def request(
    *,
    organization: str = "Istio",
    locality: str = "east",
    dns: tuple[str, ...] = ("istiod.istio-system.svc",),
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | None = None,
    subject: x509.Name | None = None,
    also_named: tuple[x509.GeneralName, ...] = (),
    extensions: tuple[x509.ExtensionType, ...] = (),
    attributes: tuple[tuple[x509.ObjectIdentifier, bytes], ...] = (),
) -> str:
    """A request as the cluster stack makes it, or with what is given instead or besides."""
    signer = key or ec.generate_private_key(ec.SECP256R1())
    subject = subject or x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, "Intermediate CA"),
            x509.NameAttribute(NameOID.LOCALITY_NAME, locality),
        ]
    )
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    names = [*(x509.DNSName(d) for d in dns), *also_named]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    for extension in extensions:
        builder = builder.add_extension(extension, critical=True)
    for oid, value in attributes:
        builder = builder.add_attribute(oid, value)
    return builder.sign(signer, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def name(*extra: x509.NameAttribute[str], common_names: tuple[str, ...] = ("Intermediate CA",)) -> x509.Name:
    """The expected subject, with more attributes after it."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Istio"),
            *(x509.NameAttribute(NameOID.COMMON_NAME, cn) for cn in common_names),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "east"),
            *extra,
        ]
    )


GO_REQUEST = """-----BEGIN CERTIFICATE REQUEST-----
MIIBKjCB0AIBADA5MQ0wCwYDVQQHEwRlYXN0MQ4wDAYDVQQKEwVJc3RpbzEYMBYG
A1UEAxMPSW50ZXJtZWRpYXRlIENBMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE
m5DYLDeKFtSFi79nhEfkxSlntJSWpQgYlqBXlNntWrPJJE0iI22Ztl0NT/oHfY6Q
BfiYKSWRggoP3mNBPk9hKaA1MDMGCSqGSIb3DQEJDjEmMCQwIgYDVR0RBBswGYIX
aXN0aW9kLmlzdGlvLXN5c3RlbS5zdmMwCgYIKoZIzj0EAwIDSQAwRgIhAKnDyWUf
9Kg2uffmFgXC0pCOc8C+8+Xsl1HDBJQqb9bRAiEA2OOYd/yxDY+X6zJ2H6r/HQWs
5C+Uw6Mjne0Gr1TCVQw=
-----END CERTIFICATE REQUEST-----
"""
"""What pulumi-tls's CertRequest makes for the cluster (Go's x509.CreateCertificateRequest of a template of
subject O, CN, L and DNSNames, as terraform-provider-tls builds it), made once with Go 1.26."""


def test_the_request_the_cluster_stack_makes_is_signed() -> None:
    check_request(request(), EXPECTED, WHERE)
    check_request(GO_REQUEST, EXPECTED, WHERE)


@pytest.mark.parametrize(
    ("pem", "message"),
    [
        (request(organization="Acme"), "subject organizationName is ['Acme'], not ['Istio']"),
        (request(locality="west"), "subject localityName is ['west'], not ['east']"),
        (
            request(dns=("istiod.other.svc",)),
            "subjectAltName DNS ['istiod.other.svc'], not ['istiod.istio-system.svc']",
        ),
        (request(dns=()), "subjectAltName DNS [], not ['istiod.istio-system.svc']"),
        (request(key=ec.generate_private_key(ec.SECP384R1())), "the key is ECDSA 384, not ECDSA 256"),
        (request(key=rsa.generate_private_key(65537, 2048)), "the key is RSA 2048, not ECDSA 256"),
        ("-----BEGIN CERTIFICATE REQUEST-----\nnot one\n-----END CERTIFICATE REQUEST-----\n", "is not a PEM"),
    ],
    ids=["organization", "locality", "san", "no san", "curve", "algorithm", "garbage"],
)
def test_a_request_unlike_the_pkis_description_is_refused_naming_where_it_came_from(pem: str, message: str) -> None:
    with pytest.raises(CsrError) as error:
        check_request(pem, EXPECTED, WHERE)
    assert str(error.value).startswith(WHERE) and message in str(error.value)


def test_a_request_whose_signature_does_not_verify_is_refused() -> None:
    good = x509.load_pem_x509_csr(request().encode())
    der = bytearray(good.public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01  # the last byte of the signature
    forged = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM).decode()
    with pytest.raises(CsrError, match="signature does not verify with its own key"):
        check_request(forged, EXPECTED, WHERE)


SPIFFE = "spiffe://cluster.local/ns/x/sa/y"


@pytest.mark.parametrize(
    ("pem", "message"),
    [
        (request(also_named=(x509.UniformResourceIdentifier(SPIFFE),)), f"subjectAltName URI [{SPIFFE!r}], not []"),
        (
            request(also_named=(x509.IPAddress(ipaddress.ip_address("10.0.0.1")),)),
            "subjectAltName also holds IP address '10.0.0.1'",
        ),
        (request(also_named=(x509.RFC822Name("ca@example.com"),)), "subjectAltName also holds email 'ca@example.com'"),
        (
            request(also_named=(x509.DirectoryName(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")])),)),
            "subjectAltName also holds directory name 'CN=x'",
        ),
        (
            request(also_named=(x509.OtherName(x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2.3"), b"\x0c\x01x"),)),
            "subjectAltName also holds other name 1.3.6.1.4.1.311.20.2.3",
        ),
        (
            request(also_named=(x509.RegisteredID(x509.ObjectIdentifier("1.2.3.4")),)),
            "subjectAltName also holds registered ID 1.2.3.4",
        ),
        (
            request(dns=("istiod.istio-system.svc", "evil.example.com")),
            "subjectAltName DNS ['evil.example.com', 'istiod.istio-system.svc'], not ['istiod.istio-system.svc']",
        ),
        (
            request(dns=("istiod.istio-system.svc", "istiod.istio-system.svc")),
            "subjectAltName DNS ['istiod.istio-system.svc', 'istiod.istio-system.svc'], "
            "not ['istiod.istio-system.svc']",
        ),
        (
            request(subject=name(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Mesh"))),
            "subject also holds organizationalUnitName ['Mesh']",
        ),
        (
            request(subject=name(x509.NameAttribute(NameOID.COUNTRY_NAME, "US"))),
            "subject also holds countryName ['US']",
        ),
        (
            request(subject=name(x509.NameAttribute(NameOID.SERIAL_NUMBER, "42"))),
            "subject also holds serialNumber ['42']",
        ),
        (
            request(subject=name(common_names=("Intermediate CA", "Other CA"))),
            "subject commonName is ['Intermediate CA', 'Other CA'], not ['Intermediate CA']",
        ),
        (
            request(
                subject=x509.Name(
                    [
                        x509.RelativeDistinguishedName(
                            [
                                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Istio"),
                                x509.NameAttribute(NameOID.COMMON_NAME, "Intermediate CA"),
                            ]
                        ),
                        x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.LOCALITY_NAME, "east")]),
                    ]
                )
            ),
            "subject has a multi-valued RDN",
        ),
        (
            request(extensions=(x509.BasicConstraints(ca=True, path_length=None),)),
            "requested extensions beyond subjectAltName: basicConstraints",
        ),
        (
            request(
                extensions=(
                    x509.KeyUsage(
                        digital_signature=True,
                        content_commitment=False,
                        key_encipherment=False,
                        data_encipherment=False,
                        key_agreement=False,
                        key_cert_sign=True,
                        crl_sign=True,
                        encipher_only=False,
                        decipher_only=False,
                    ),
                )
            ),
            "requested extensions beyond subjectAltName: keyUsage",
        ),
        (
            request(extensions=(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),)),
            "requested extensions beyond subjectAltName: extendedKeyUsage",
        ),
        (
            request(
                extensions=(
                    x509.NameConstraints(permitted_subtrees=[x509.DNSName("example.com")], excluded_subtrees=None),
                )
            ),
            "requested extensions beyond subjectAltName: nameConstraints",
        ),
        (
            request(attributes=((AttributeOID.CHALLENGE_PASSWORD, b"hunter2"),)),
            "attribute challengePassword beyond the extension request",
        ),
        (
            request(attributes=((AttributeOID.UNSTRUCTURED_NAME, b"anything"),)),
            "attribute unstructuredName beyond the extension request",
        ),
    ],
    ids=[
        "uri san",
        "ip san",
        "email san",
        "directory name san",
        "other name san",
        "registered id san",
        "extra dns name",
        "duplicate dns name",
        "ou",
        "country",
        "serial number",
        "second cn",
        "multi-valued rdn",
        "basic constraints",
        "key usage",
        "extended key usage",
        "name constraints",
        "challenge password",
        "unstructured name",
    ],
)
def test_a_request_for_more_than_the_pkis_description_is_refused_naming_what_is_extra(pem: str, message: str) -> None:
    with pytest.raises(CsrError) as error:
        check_request(pem, EXPECTED, WHERE)
    refusal = str(error.value)
    assert refusal.startswith(f"{WHERE}: ") and message in refusal, refusal
    assert "\n" not in refusal and "hunter2" not in refusal  # one line; never an attribute's value


def test_every_difference_is_named_on_one_line() -> None:
    pem = request(
        subject=name(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Mesh\nLine")),
        also_named=(x509.UniformResourceIdentifier(SPIFFE),),
        extensions=(x509.BasicConstraints(ca=True, path_length=None),),
    )
    with pytest.raises(CsrError) as error:
        check_request(pem, EXPECTED, WHERE)
    assert str(error.value) == (
        f"{WHERE}: requested extensions beyond subjectAltName: basicConstraints; "
        "subject also holds organizationalUnitName ['Mesh\\nLine']; "
        f"subjectAltName URI [{SPIFFE!r}], not []"
    )


def test_the_expected_uris_are_asked_for_exactly() -> None:
    expected = ExpectedRequest(**{**EXPECTED.__dict__, "uris": (SPIFFE,)})
    check_request(request(also_named=(x509.UniformResourceIdentifier(SPIFFE),)), expected, WHERE)
    with pytest.raises(CsrError, match=r"subjectAltName URI \[\], not \['spiffe://"):
        check_request(request(), expected, WHERE)
