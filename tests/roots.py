"""Roots made at test time, as istiod's self-signed CA or another CA would have made them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

KEY_FORMATS = {
    "PKCS8": serialization.PrivateFormat.PKCS8,
    "PKCS1": serialization.PrivateFormat.TraditionalOpenSSL,  # `RSA PRIVATE KEY`, as istiod writes; SEC1 for EC
}


def make_root(
    *,
    days: int = 3650,
    ca: bool = True,
    organization: str = "cluster.local",
    path_length: int | None = None,
    key_format: str = "PKCS8",
    ecdsa: bool = False,
) -> tuple[str, str]:
    """(certificate PEM, key PEM) of a self-signed root like istiod's `istio-ca-secret`."""
    key = ec.generate_private_key(ec.SECP256R1()) if ecdsa else rsa.generate_private_key(65537, 2048)
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization)])
    cert = sign_certificate(name, key, name, key, days=days, ca=ca, path_length=path_length)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, KEY_FORMATS[key_format], serialization.NoEncryption()
    ).decode()
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem


def make_intermediate(root_cert_pem: str, root_key_pem: str, *, path_length: int | None = 0) -> tuple[str, str]:
    """(certificate PEM, key PEM) of a CA the root signs, like the Makefile's `<cluster>/ca-cert.pem`."""
    root = x509.load_pem_x509_certificate(root_cert_pem.encode())
    root_key = serialization.load_pem_private_key(root_key_pem.encode(), password=None)
    assert isinstance(root_key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
    key = rsa.generate_private_key(65537, 2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Intermediate CA")])
    cert = sign_certificate(name, key, root.subject, root_key, days=365, ca=True, path_length=path_length)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem


def sign_certificate(
    subject: x509.Name,
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    issuer_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    *,
    days: int,
    ca: bool,
    path_length: int | None,
    authority_key_id: bool = False,
) -> x509.Certificate:
    """A certificate `issuer_key` signs, with the Makefile's CA key usages when `ca`."""
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if authority_key_id:
        authority = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key())
        builder = builder.add_extension(authority, critical=False)
    return builder.sign(issuer_key, hashes.SHA256())
