"""A cluster's certificate signing request, checked before the PKI signs it: it must prove its key and ask
for exactly the intermediate that cluster would get in a single stack, and nothing besides.

pulumi-tls's LocallySignedCert copies the request's whole subject and its DNS, IP and URI names into the
certificate it signs, so anything the request holds beyond what the PKI describes is refused here. What
the cluster stack's `tls.CertRequest` makes (Go's x509.CreateCertificateRequest) holds a subject of O, CN
and L, and one requested extension, the subjectAltName of its DNS names: that passes.

The subject and subjectAltName checks are shared with the check of the issued certificate
(certificate_checks.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtensionOID, NameOID

from istio_ca.settings import KeySettings

CURVES = {256: ec.SECP256R1, 384: ec.SECP384R1}
EXTENSION_REQUEST = x509.ObjectIdentifier("1.2.840.113549.1.9.14")
"""PKCS #9 extensionRequest: the one CSR attribute Go writes, holding the requested extensions."""
# What a general name of each other kind is called in a refusal.
OTHER_GENERAL_NAMES: dict[type[x509.GeneralName], str] = {
    x509.IPAddress: "IP address",
    x509.RFC822Name: "email",
    x509.DirectoryName: "directory name",
    x509.RegisteredID: "registered ID",
    x509.OtherName: "other name",
}


class CsrError(pulumi.RunError):
    """A CSR the PKI refuses to sign; Pulumi prints the message without a stack trace."""


@dataclass(frozen=True)
class ExpectedRequest:
    """What the cluster's intermediate must be, from the PKI's own description of the mesh."""

    organization: str
    common_name: str
    locality: str
    dns_names: Sequence[str]
    key: KeySettings
    uris: Sequence[str] = ()
    """The subjectAltName URIs; an intermediate has none."""

    @property
    def subject(self) -> dict[x509.ObjectIdentifier, str]:
        """The subject, attribute by attribute: exactly one O, one CN and one L."""
        return {
            NameOID.ORGANIZATION_NAME: self.organization,
            NameOID.COMMON_NAME: self.common_name,
            NameOID.LOCALITY_NAME: self.locality,
        }


def check_request(csr_pem: str, expected: ExpectedRequest, where: str) -> None:
    """Refuse, naming `where` (the cluster stack and its output), a CSR that is not what `expected` says:
    one line, every difference found, `; ` between them."""
    try:
        csr = x509.load_pem_x509_csr(csr_pem.encode())
    except ValueError:
        raise CsrError(f"{where} is not a PEM certificate signing request") from None
    if not csr.is_signature_valid:
        raise CsrError(f"{where}: the request's signature does not verify with its own key")
    try:
        attributes = [attribute.oid for attribute in csr.attributes]
    except ValueError as error:
        raise CsrError(f"{where}: the request's attributes do not parse: {_one_line(error)}") from None
    try:
        extensions = list(csr.extensions)
    except ValueError as error:  # x509.DuplicateExtension among them
        raise CsrError(f"{where}: the request's extensions do not parse: {_one_line(error)}") from None
    problems = [
        f"attribute {oid_name(oid)} beyond the extension request" for oid in attributes if oid != EXTENSION_REQUEST
    ]
    if attributes.count(EXTENSION_REQUEST) > 1:
        problems.append(f"{attributes.count(EXTENSION_REQUEST)} extension requests, not one")
    extra = [oid_name(e.oid) for e in extensions if e.oid != ExtensionOID.SUBJECT_ALTERNATIVE_NAME]
    if extra:
        problems.append(f"requested extensions beyond subjectAltName: {', '.join(extra)}")
    problems += subject_differences(csr.subject, expected.subject)
    names = next((e.value for e in extensions if isinstance(e.value, x509.SubjectAlternativeName)), None)
    problems += alt_name_differences(names, dns_names=expected.dns_names, uris=expected.uris)
    wrong_key = key_difference(csr.public_key(), expected.key)
    if wrong_key is not None:
        problems.append(wrong_key)
    if problems:
        raise CsrError(f"{where}: {'; '.join(problems)}")


def subject_differences(subject: x509.Name, wanted: Mapping[x509.ObjectIdentifier, str]) -> list[str]:
    """How `subject` differs from exactly one attribute of each type in `wanted`, with its value, and
    nothing else: no other attribute type, no repeated one, no multi-valued RDN."""
    problems = [f"subject has a multi-valued RDN {rdn.rfc4514_string()!r}" for rdn in subject.rdns if len(rdn) > 1]
    for oid, value in wanted.items():
        found = [a.value for a in subject.get_attributes_for_oid(oid)]
        if found != [value]:
            problems.append(f"subject {oid_name(oid)} is {found}, not [{value!r}]")
    others: dict[x509.ObjectIdentifier, list[str | bytes]] = {}
    for attribute in subject:
        if attribute.oid not in wanted:
            others.setdefault(attribute.oid, []).append(attribute.value)
    problems += [f"subject also holds {oid_name(oid)} {values}" for oid, values in others.items()]
    return problems


def alt_name_differences(
    names: x509.SubjectAlternativeName | None, *, dns_names: Sequence[str], uris: Sequence[str]
) -> list[str]:
    """How a subjectAltName (None: there is none) differs from exactly `dns_names` and `uris`, each once, in
    any order, and no name of any other kind."""
    general = list(names or [])
    problems = []
    dns = sorted(n.value for n in general if isinstance(n, x509.DNSName))
    if dns != sorted(dns_names):
        problems.append(f"subjectAltName DNS {dns}, not {sorted(dns_names)}")
    found_uris = sorted(n.value for n in general if isinstance(n, x509.UniformResourceIdentifier))
    if found_uris != sorted(uris):
        problems.append(f"subjectAltName URI {found_uris}, not {sorted(uris)}")
    problems += [
        f"subjectAltName also holds {OTHER_GENERAL_NAMES.get(type(n), type(n).__name__)} {_general_name(n)}"
        for n in general
        if not isinstance(n, x509.DNSName | x509.UniformResourceIdentifier)
    ]
    return problems


def key_difference(key: object, wanted: KeySettings) -> str | None:
    """Why a public key is not of the algorithm and size `wanted` says, or None."""
    if wanted.algorithm == "RSA":
        ok = isinstance(key, rsa.RSAPublicKey) and key.key_size == wanted.size
    else:
        ok = isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, CURVES[wanted.size])
    return None if ok else f"the key is {_describe(key)}, not {wanted.algorithm} {wanted.size}"


def oid_name(oid: x509.ObjectIdentifier) -> str:
    """An OID as its name (`organizationalUnitName`), or dotted when cryptography has none for it."""
    name = oid._name
    return oid.dotted_string if name == "Unknown OID" else name


def _general_name(name: x509.GeneralName) -> str:
    if isinstance(name, x509.DirectoryName):
        return repr(name.value.rfc4514_string())
    if isinstance(name, x509.RegisteredID):
        return oid_name(name.value)
    if isinstance(name, x509.OtherName):
        return oid_name(name.type_id)
    return repr(str(name.value))


def _describe(key: object) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"ECDSA {key.curve.key_size}"
    return type(key).__name__


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())
