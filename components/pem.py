"""Trust material given by a user, read strictly: one certificate, or one private key, and nothing else.

A PEM text that holds more than it should is refused, never trimmed: a key pasted after a root
certificate would otherwise travel with the certificate into every cluster. The messages name
what was found by its PEM label only; they never echo the input.
"""

from __future__ import annotations

import hashlib
import re

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding, load_pem_private_key

PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----", re.DOTALL)
PRIVATE_KEY_LABELS = ("PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY")
"""PKCS#8, PKCS#1 (what istiod writes) and SEC1."""


class PemError(ValueError):
    """The text is not exactly what it should be; the message never holds the text."""


def _blocks(text: str) -> list[str]:
    """The labels of the PEM blocks in `text`; anything else but white space between them is refused."""
    labels = [match.group(1) for match in PEM_BLOCK.finditer(text)]
    if PEM_BLOCK.sub("", text).strip():
        found = f" besides {_describe(labels)}" if labels else ""
        raise PemError(f"holds text that is not PEM{found}")
    return labels


def _describe(labels: list[str]) -> str:
    return ", ".join(labels) if labels else "nothing"


def single_certificate(text: str) -> x509.Certificate:
    """The one certificate `text` holds; refused if it holds anything else."""
    labels = _blocks(text)
    if labels != ["CERTIFICATE"]:
        raise PemError(f"must hold exactly one PEM CERTIFICATE; it holds {_describe(labels)}")
    try:
        return x509.load_pem_x509_certificate(text.encode())
    except ValueError:
        raise PemError("holds a CERTIFICATE block that does not parse as an X.509 certificate") from None


def certificate_pem(cert: x509.Certificate) -> str:
    """The certificate re-encoded from its DER: nothing of the input's text survives."""
    return cert.public_bytes(Encoding.PEM).decode()


def certificates_in(text: str) -> list[x509.Certificate]:
    """Every certificate a PEM text holds, [] for one that does not parse: for material read from a
    cluster or the state, which is judged, not refused (user input goes through single_certificate)."""
    try:
        return x509.load_pem_x509_certificates(text.encode())
    except ValueError:
        return []


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether `issuer` signed `cert` (its name and a verified signature): the one check every chain here uses."""
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):  # another issuer name, key type or signature
        return False
    return True


def sha256_fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER, as `openssl x509 -fingerprint -sha256` prints it."""
    digest = hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def single_private_key(text: str) -> PrivateKeyTypes:
    """The one unencrypted private key `text` holds (PKCS#1, PKCS#8 or SEC1); refused otherwise."""
    labels = _blocks(text)
    if len(labels) != 1 or labels[0] not in PRIVATE_KEY_LABELS:
        raise PemError(
            f"must hold exactly one unencrypted PEM private key ({', '.join(PRIVATE_KEY_LABELS)}); "
            f"it holds {_describe(labels)}"
        )
    try:
        return load_pem_private_key(text.encode(), password=None)
    except (ValueError, TypeError):
        raise PemError(f"holds a {labels[0]} block that does not parse as an unencrypted private key") from None
