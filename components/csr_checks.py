"""A cluster's certificate signing request, checked before the PKI signs it: it must prove its key and ask
for exactly the intermediate that cluster would get in a single stack."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from istio_ca.settings import KeySettings

CURVES = {256: ec.SECP256R1, 384: ec.SECP384R1}


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


def check_request(csr_pem: str, expected: ExpectedRequest, where: str) -> None:
    """Refuse, naming `where` (the cluster stack and its output), a CSR that is not what `expected` says."""
    try:
        csr = x509.load_pem_x509_csr(csr_pem.encode())
    except ValueError:
        raise CsrError(f"{where} is not a PEM certificate signing request") from None
    if not csr.is_signature_valid:
        raise CsrError(f"{where}: the request's signature does not verify with its own key")
    wanted = {
        NameOID.ORGANIZATION_NAME: expected.organization,
        NameOID.COMMON_NAME: expected.common_name,
        NameOID.LOCALITY_NAME: expected.locality,
    }
    found = {oid: [a.value for a in csr.subject.get_attributes_for_oid(oid)] for oid in wanted}
    for oid, value in wanted.items():
        if found[oid] != [value]:
            raise CsrError(f"{where}: subject {oid._name} is {found[oid]}, not [{value!r}]")
    try:
        names = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = sorted(names.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        dns = []
    if dns != sorted(expected.dns_names):
        raise CsrError(f"{where}: subjectAltName DNS {dns}, not {sorted(expected.dns_names)}")
    key = csr.public_key()
    if expected.key.algorithm == "RSA":
        ok = isinstance(key, rsa.RSAPublicKey) and key.key_size == expected.key.size
    else:
        ok = isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, CURVES[expected.key.size])
    if not ok:
        raise CsrError(f"{where}: the key is {_describe(key)}, not {expected.key.algorithm} {expected.key.size}")


def _describe(key: object) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"ECDSA {key.curve.key_size}"
    return type(key).__name__
