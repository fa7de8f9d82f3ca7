"""An issued certificate, checked against its profile (profiles.py) and what was asked for: the PKI runs it on
each certificate it signed before exporting it, and the tests run it on every certificate they inspect.

It mirrors what pulumi-tls (terraform-provider-tls, Go's x509.CreateCertificate) issues for a profile:
basicConstraints and keyUsage critical, the usages and extended usages of `allowed_uses`, a
subjectKeyIdentifier of the SHA-1 of the key, an authorityKeyIdentifier of the issuer's
subjectKeyIdentifier, the request's subject and names, and NotAfter = NotBefore + validity_period_hours.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

import pulumi
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

from istio_ca.csr_checks import ExpectedRequest, alt_name_differences, key_difference, oid_name, subject_differences
from istio_ca.profiles import CertificateProfile

# pulumi-tls allowed_uses name -> cryptography KeyUsage attribute.
KEY_USAGE_ATTRIBUTES = {
    "digital_signature": "digital_signature",
    "content_commitment": "content_commitment",
    "key_encipherment": "key_encipherment",
    "data_encipherment": "data_encipherment",
    "key_agreement": "key_agreement",
    "cert_signing": "key_cert_sign",
    "crl_signing": "crl_sign",
}
# cryptography refuses to read these two unless key_agreement is set.
AGREEMENT_ONLY_ATTRIBUTES = {"encipher_only": "encipher_only", "decipher_only": "decipher_only"}
# pulumi-tls allowed_uses name -> extendedKeyUsage OID.
EXTENDED_KEY_USAGE_OIDS = {
    "server_auth": ExtendedKeyUsageOID.SERVER_AUTH,
    "client_auth": ExtendedKeyUsageOID.CLIENT_AUTH,
}
ONE_HOUR = datetime.timedelta(hours=1)
T = TypeVar("T")


class CertificateError(pulumi.RunError):
    """A certificate the PKI signed but will not export; Pulumi prints the message without a stack trace."""


def expected_extensions(profile: CertificateProfile) -> set[x509.ObjectIdentifier]:
    """The extensions a certificate of the profile carries, and no other."""
    oids = {ExtensionOID.BASIC_CONSTRAINTS, ExtensionOID.KEY_USAGE}
    if profile.subject_key_identifier:
        oids.add(ExtensionOID.SUBJECT_KEY_IDENTIFIER)
    if profile.authority_key_identifier:
        oids.add(ExtensionOID.AUTHORITY_KEY_IDENTIFIER)
    if profile.subject_alt_names:
        oids.add(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    if profile.extended_key_usages:
        oids.add(ExtensionOID.EXTENDED_KEY_USAGE)
    return oids


def check_issued(
    cert_pem: str,
    *,
    issuer_pem: str,
    request_pem: str,
    expected: ExpectedRequest,
    profile: CertificateProfile,
    validity_hours: int,
    where: str,
    allow_dropped_path_length: bool = True,
) -> None:
    """Refuse, naming `where`, a certificate signed for `request_pem` that is not exactly `expected` with the
    profile's extensions, signed by `issuer_pem`, for `validity_hours`, for the request's public key: one
    line, every difference, `; ` between them. `allow_dropped_path_length`: see certificate_differences."""
    cert = _load(x509.load_pem_x509_certificate, cert_pem, where, "the signed certificate")
    issuer = _load(x509.load_pem_x509_certificate, issuer_pem, where, "the issuer's certificate")
    request = _load(x509.load_pem_x509_csr, request_pem, where, "the certificate signing request")
    problems = certificate_differences(
        cert,
        issuer=issuer,
        profile=profile,
        subject=expected.subject,
        dns_names=expected.dns_names,
        uris=expected.uris,
        validity_hours=validity_hours,
        allow_dropped_path_length=allow_dropped_path_length,
    )
    if cert.public_key() != request.public_key():
        problems.append("its public key is not the request's")
    wrong_key = key_difference(cert.public_key(), expected.key)
    if wrong_key is not None:
        problems.append(wrong_key)
    if problems:
        raise CertificateError(f"{where}: the signed certificate differs: {'; '.join(problems)}")


def certificate_differences(
    cert: x509.Certificate,
    *,
    issuer: x509.Certificate,
    profile: CertificateProfile,
    subject: Mapping[x509.ObjectIdentifier, str],
    dns_names: Sequence[str] = (),
    uris: Sequence[str] = (),
    validity_hours: int,
    allow_dropped_path_length: bool = True,
) -> list[str]:
    """Every way `cert` differs from the profile, from exactly `subject` and (where the profile carries
    them) `dns_names` and `uris`, from a certificate `issuer` signed, and from lasting `validity_hours`.

    pulumi-tls never sets Go's MaxPathLenZero, so a profile's `max_path_length` of 0 is issued with no
    pathlen at all (README, "Known differences from the Makefile"): with `allow_dropped_path_length` that is
    accepted; any other pathlen than the profile's is not.
    """
    problems: list[str] = []
    try:
        extensions = {extension.oid: extension for extension in cert.extensions}
    except ValueError as error:  # x509.DuplicateExtension among them
        return [f"its extensions do not parse: {' '.join(str(error).split())}"]
    wanted = expected_extensions(profile)
    if extra := [oid_name(oid) for oid in extensions if oid not in wanted]:
        problems.append(f"extensions beyond the profile: {', '.join(extra)}")
    if missing := [oid_name(oid) for oid in sorted(wanted - set(extensions), key=oid_name)]:
        problems.append(f"extensions missing: {', '.join(missing)}")

    if (basic := extensions.get(ExtensionOID.BASIC_CONSTRAINTS)) is not None:
        problems += _basic_constraints(basic, profile, allow_dropped_path_length)
    if (usage := extensions.get(ExtensionOID.KEY_USAGE)) is not None:
        problems += _key_usage(usage, profile)
    if (eku := extensions.get(ExtensionOID.EXTENDED_KEY_USAGE)) is not None and profile.extended_key_usages:
        problems += _extended_key_usage(eku, profile)
    if (ski := extensions.get(ExtensionOID.SUBJECT_KEY_IDENTIFIER)) is not None and profile.subject_key_identifier:
        problems += _subject_key_identifier(ski, cert)
    if (aki := extensions.get(ExtensionOID.AUTHORITY_KEY_IDENTIFIER)) is not None and profile.authority_key_identifier:
        problems += _authority_key_identifier(aki, issuer)
    if profile.subject_alt_names:
        san = extensions.get(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
        if san is not None and san.critical:
            problems.append("subjectAltName is critical")
        names = san.value if san is not None and isinstance(san.value, x509.SubjectAlternativeName) else None
        problems += alt_name_differences(names, dns_names=dns_names, uris=uris)

    problems += subject_differences(cert.subject, subject)
    problems += _issuer(cert, issuer)
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    if lifetime != validity_hours * ONE_HOUR:
        problems.append(f"NotAfter - NotBefore is {_hours(lifetime)}, not {validity_hours} hours")
    return problems


def _basic_constraints(
    extension: x509.Extension[x509.ExtensionType], profile: CertificateProfile, allow_dropped_path_length: bool
) -> list[str]:
    problems = [] if extension.critical else ["basicConstraints is not critical"]
    value = extension.value
    assert isinstance(value, x509.BasicConstraints)
    if value.ca is not profile.is_ca:
        problems.append(f"basicConstraints CA is {value.ca}, not {profile.is_ca}")
    dropped = allow_dropped_path_length and profile.max_path_length == 0 and value.path_length is None
    if value.path_length != profile.max_path_length and not dropped:
        found, wanted = _path_length(value.path_length), _path_length(profile.max_path_length)
        problems.append(f"basicConstraints pathlen is {found}, not {wanted}")
    return problems


def _key_usage(extension: x509.Extension[x509.ExtensionType], profile: CertificateProfile) -> list[str]:
    problems = [] if extension.critical else ["keyUsage is not critical"]
    value = extension.value
    assert isinstance(value, x509.KeyUsage)
    attributes = dict(KEY_USAGE_ATTRIBUTES, **(AGREEMENT_ONLY_ATTRIBUTES if value.key_agreement else {}))
    found = [name for name, attribute in attributes.items() if getattr(value, attribute)]
    if lacking := [name for name in profile.key_usages if name not in found]:
        problems.append(f"keyUsage lacks {', '.join(lacking)}")
    if extra := [name for name in found if name not in profile.key_usages]:
        problems.append(f"keyUsage also allows {', '.join(extra)}")
    return problems


def _extended_key_usage(extension: x509.Extension[x509.ExtensionType], profile: CertificateProfile) -> list[str]:
    problems = ["extendedKeyUsage is critical"] if extension.critical else []
    value = extension.value
    assert isinstance(value, x509.ExtendedKeyUsage)
    found = [oid_name(oid) for oid in value]
    wanted = [oid_name(EXTENDED_KEY_USAGE_OIDS[name]) for name in profile.extended_key_usages]
    if sorted(found) != sorted(wanted):
        problems.append(f"extendedKeyUsage is {found}, not {wanted}")
    return problems


def _subject_key_identifier(extension: x509.Extension[x509.ExtensionType], cert: x509.Certificate) -> list[str]:
    problems = ["subjectKeyIdentifier is critical"] if extension.critical else []
    value = extension.value
    assert isinstance(value, x509.SubjectKeyIdentifier)
    if value.digest != x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest:
        problems.append("subjectKeyIdentifier is not the SHA-1 of its public key")
    return problems


def _authority_key_identifier(extension: x509.Extension[x509.ExtensionType], issuer: x509.Certificate) -> list[str]:
    problems = ["authorityKeyIdentifier is critical"] if extension.critical else []
    value = extension.value
    assert isinstance(value, x509.AuthorityKeyIdentifier)
    try:
        issuer_ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except (x509.ExtensionNotFound, ValueError):
        return [*problems, "the issuer has no subjectKeyIdentifier for its authorityKeyIdentifier to name"]
    if value.key_identifier != issuer_ski:
        problems.append("authorityKeyIdentifier is not the issuer's subjectKeyIdentifier")
    return problems


def _issuer(cert: x509.Certificate, issuer: x509.Certificate) -> list[str]:
    if cert.issuer != issuer.subject:
        return [f"issuer is {cert.issuer.rfc4514_string()!r}, not {issuer.subject.rfc4514_string()!r}"]
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return ["its signature does not verify with the issuer's key"]
    return []


def _path_length(length: int | None) -> str:
    return "absent" if length is None else str(length)


def _hours(lifetime: datetime.timedelta) -> str:
    if lifetime % ONE_HOUR:
        return str(lifetime)
    hours = lifetime // ONE_HOUR
    return f"{hours} hour{'' if hours == 1 else 's'}"


def _load(load: Callable[[bytes], T], pem: str, where: str, what: str) -> T:
    try:
        return load(pem.encode())
    except ValueError:
        raise CertificateError(f"{where}: {what} is not PEM") from None
