"""The PKI signs a cluster's CSR only when it asks for exactly that cluster's intermediate."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

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
) -> str:
    signer = key or ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, "Intermediate CA"),
            x509.NameAttribute(NameOID.LOCALITY_NAME, locality),
        ]
    )
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False)
    return builder.sign(signer, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def test_the_request_the_cluster_stack_makes_is_signed() -> None:
    check_request(request(), EXPECTED, WHERE)


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
