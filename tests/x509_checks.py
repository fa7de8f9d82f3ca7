"""Checks an issued certificate against its profile in components/profiles.py, as X.509."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from cryptography.x509.oid import NameOID

from istio_ca import cacerts
from istio_ca.certificate_checks import certificate_differences
from istio_ca.certificate_checks import expected_extensions as expected_extensions  # tests import it from here
from istio_ca.config_schema import HOURS_PER_DAY
from istio_ca.profiles import CertificateProfile
from istio_ca.settings import CertificateSettings

CACERTS_KEYS = frozenset(cacerts.FILES)
"""The files of a `cacerts` Secret, as the library writes them."""
PEM_CERTIFICATE = re.compile(r"-----BEGIN CERTIFICATE-----\n.+?\n-----END CERTIFICATE-----\n", re.DOTALL)


def signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether `issuer`'s key signed `cert` under `issuer`'s name."""
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def load_certificates(pem: str) -> list[x509.Certificate]:
    """Every certificate in a PEM bundle, in order; nothing else may be in it."""
    blocks = PEM_CERTIFICATE.findall(pem)
    assert "".join(blocks) == pem, "the bundle holds something besides concatenated certificates"
    return [x509.load_pem_x509_certificate(block.encode()) for block in blocks]


def check_certificate(
    cert: x509.Certificate,
    *,
    profile: CertificateProfile,
    settings: CertificateSettings,
    subject: dict[x509.ObjectIdentifier, str],
    issuer: x509.Certificate,
    dns_names: tuple[str, ...] = (),
    uris: tuple[str, ...] = (),
) -> None:
    """Assert every extension, the subject, the key and the validity the profile and settings call for: the
    PKI's own check of what it signed (certificate_checks.py), then the names' order and the key's kind.

    A pathlen other than the profile's fails here, but the one pulumi-tls drops (a profile's 0 issued with
    none) is told apart only by check_path_length: see the README.
    """
    differences = certificate_differences(
        cert,
        issuer=issuer,
        profile=profile,
        subject=subject,
        dns_names=dns_names,
        uris=uris,
        validity_hours=settings.validity_days * HOURS_PER_DAY,
    )
    assert not differences, differences
    if profile.subject_alt_names:  # in the order they were asked for, too
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert tuple(san.get_values_for_type(x509.DNSName)) == dns_names
        assert tuple(san.get_values_for_type(x509.UniformResourceIdentifier)) == uris
    check_key(cert, settings)


def check_path_length(cert: x509.Certificate, profile: CertificateProfile) -> None:
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == profile.max_path_length


def check_key(cert: x509.Certificate, settings: CertificateSettings) -> None:
    key = cert.public_key()
    if settings.key.algorithm == "RSA":
        assert isinstance(key, rsa.RSAPublicKey)
        assert key.key_size == settings.key.size
        assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    else:
        assert isinstance(key, ec.EllipticCurvePublicKey)
        assert key.curve.key_size == settings.key.size


def check_key_matches(cert: x509.Certificate, private_key_pem: str) -> None:
    """The private key is the one whose public half the certificate carries."""
    key = load_pem_private_key(private_key_pem.encode(), password=None)
    assert key.public_key() == cert.public_key()


def subject_of(settings: CertificateSettings, locality: str | None = None) -> dict[x509.ObjectIdentifier, str]:
    subject = {NameOID.ORGANIZATION_NAME: settings.organization, NameOID.COMMON_NAME: settings.common_name}
    if locality is not None:
        subject[NameOID.LOCALITY_NAME] = locality
    return subject


def openssl_verifies(directory: Path, leaf: str, intermediate: str, bundle: str) -> bool:
    """openssl's path validation of a workload certificate, through its intermediate, to a trust bundle."""
    (directory / "leaf.pem").write_text(leaf)
    (directory / "intermediate.pem").write_text(intermediate)
    (directory / "bundle.pem").write_text(bundle)
    result = subprocess.run(
        ["openssl", "verify", "-CAfile", "bundle.pem", "-untrusted", "intermediate.pem", "leaf.pem"],
        cwd=directory,
        capture_output=True,
        text=True,
    )
    return result.returncode == 0


@dataclass(frozen=True)
class CacertsChain:
    """A `cacerts` Secret's files, parsed and checked to form one chain."""

    roots: list[x509.Certificate]
    """`root-cert.pem`, in order."""
    issuer: x509.Certificate
    """The root `cert-chain.pem` ends with: the one that signed the intermediate."""
    intermediate: x509.Certificate


def check_cacerts_chain(files: Mapping[str, str]) -> CacertsChain:
    """The four files form one chain: `ca-cert.pem` is signed by the root `cert-chain.pem` ends with, which
    `root-cert.pem` trusts, and `cert-chain.pem` is the intermediate then that root."""
    assert set(files) == CACERTS_KEYS, sorted(files)
    roots = load_certificates(files["root-cert.pem"])
    (intermediate,) = load_certificates(files["ca-cert.pem"])
    chain = load_certificates(files["cert-chain.pem"])
    assert len(chain) == 2 and chain[0] == intermediate, "cert-chain.pem is not the intermediate then its root"
    issuer = chain[1]
    assert issuer in roots, "the intermediate's root is not in root-cert.pem"
    intermediate.verify_directly_issued_by(issuer)
    return CacertsChain(roots=roots, issuer=issuer, intermediate=intermediate)
