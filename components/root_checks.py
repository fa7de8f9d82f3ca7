"""Whether a certificate and key can serve as the mesh's root: the checks an adopted root must pass.

Shared by the config (a root given as PEMs is checked before anything is registered) and the
ExistingRoot component (a root read from a cluster is checked on every run).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pulumi
from cryptography import x509

from istio_ca.pem import (
    PemError,
    certificate_pem,
    issued_by,
    sha256_fingerprint,
    single_certificate,
    single_private_key,
)


class RootError(pulumi.RunError):
    """The adopted root is unusable; Pulumi prints the message without a stack trace."""


@dataclass(frozen=True)
class CheckedRoot:
    """A root that proved itself: its certificate re-encoded from DER, its NotAfter and fingerprint."""

    cert_pem: str
    not_after: str
    """RFC 3339, whole seconds."""
    sha256: str
    """SHA-256 fingerprint of the DER, colon-separated hex."""


def check_root(
    cert_pem: str,
    key_pem: str,
    longest_signed_days: int = 0,
    *,
    cert_source: str = "the existing root certificate",
    key_source: str = "the existing root key",
) -> CheckedRoot:
    """The root, if it is a self-signed CA with no path length that forbids intermediates, whose key
    matches, and that lasts `longest_signed_days` more days.

    The sources name where each PEM came from (a config key, a Secret's file); the messages never echo the PEMs.
    """
    try:
        cert = single_certificate(cert_pem)
    except PemError as error:
        raise RootError(f"{cert_source} {error}") from None
    name = cert.subject.rfc4514_string() or "(empty subject)"
    try:
        basic = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        basic = None
    if basic is None or not basic.ca:
        raise RootError(f"{cert_source}: {name} is not a CA (basicConstraints CA:TRUE)")
    if cert.issuer != cert.subject or not _signs_itself(cert):
        raise RootError(
            f"{cert_source}: {name} is not a root: it is issued by {cert.issuer.rfc4514_string()}, not self-signed. "
            "Adopt the root at the top of its chain (the Makefile's root-cert.pem and root-key.pem, not a "
            "cluster's ca-cert.pem)"
        )
    if basic.path_length == 0:
        raise RootError(
            f"{cert_source}: {name} carries pathlen:0, so no intermediate CA below it would pass path validation"
        )
    try:
        key = single_private_key(key_pem)
    except PemError as error:
        raise RootError(f"{key_source} {error}") from None
    if key.public_key() != cert.public_key():
        raise RootError(f"{key_source} does not match the certificate {name}")
    days_left = (cert.not_valid_after_utc - datetime.now(UTC)) / timedelta(days=1)
    if days_left < longest_signed_days:
        raise RootError(
            f"{cert_source}: {name} ends on {cert.not_valid_after_utc:%Y-%m-%d}, "
            f"{max(days_left, 0):.0f} days from now: an intermediate of {longest_signed_days} days would outlive it; "
            "shorten the intermediates' days or renew the root"
        )
    return CheckedRoot(
        cert_pem=certificate_pem(cert),
        not_after=cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        sha256=sha256_fingerprint(cert),
    )


def _signs_itself(cert: x509.Certificate) -> bool:
    return issued_by(cert, cert)
