"""Which CA keys istiod can sign with: RSA of at least a minimum size, or ECDSA on P-256 or P-384
(istio_ca.config_schema's sizes, the ones istiod signs with). Judged on a key or certificate PEM (its
public key), or on a pulumi-tls PrivateKey's inputs before the key exists.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from cacerts_guard.resources import UNKNOWN, Resource
from istio_ca.config_schema import ECDSA_KEY_SIZES

ISTIOD_CURVES = {f"P{size}" for size in ECDSA_KEY_SIZES}
"""pulumi-tls `ecdsaCurve` names of the curves istiod signs with."""
TLS_DEFAULT_RSA_BITS = 2048
TLS_DEFAULT_CURVE = "P224"
"""What a pulumi-tls PrivateKey without `rsaBits` or `ecdsaCurve` gets."""


def rsa_bits(key: PublicKeyTypes) -> int | None:
    return key.key_size if isinstance(key, rsa.RSAPublicKey) else None


def unsupported_algorithm(key: PublicKeyTypes) -> str | None:
    """How `key` is not one istiod signs with (RSA, or ECDSA on P-256/P-384); None when it is."""
    if isinstance(key, rsa.RSAPublicKey):
        return None
    if isinstance(key, ec.EllipticCurvePublicKey):
        curve = f"P{key.curve.key_size}"
        return None if curve in ISTIOD_CURVES else f"ECDSA on {curve}"
    return type(key).__name__.removeprefix("_").replace("PublicKey", "") or "an unknown algorithm"


def public_keys(text: str) -> Iterator[PublicKeyTypes]:
    """The public key of the private key, certificate or certificate request in PEM `text`, if it parses."""
    data = text.encode()
    if b"PRIVATE KEY-----" in data:
        try:
            yield load_pem_private_key(data, password=None).public_key()
        except (ValueError, TypeError):
            return
    elif b"-----BEGIN CERTIFICATE REQUEST-----" in data:
        try:
            yield x509.load_pem_x509_csr(data).public_key()
        except ValueError:
            return
    elif b"-----BEGIN CERTIFICATE-----" in data:
        try:
            yield x509.load_pem_x509_certificate(data).public_key()
        except ValueError:
            return


def planned_key(resource: Resource) -> tuple[str, int | None, str | None] | None:
    """A PrivateKey's (algorithm, RSA bits, curve) from its inputs, None while the algorithm is unknown."""
    algorithm = resource.get("algorithm")
    if not isinstance(algorithm, str):
        return None
    bits: Any = resource.get("rsaBits")
    curve: Any = resource.get("ecdsaCurve")
    if algorithm == "RSA":
        return algorithm, (TLS_DEFAULT_RSA_BITS if bits is None else bits if bits is not UNKNOWN else None), None
    if algorithm == "ECDSA":
        return algorithm, None, (TLS_DEFAULT_CURVE if curve is None else curve if isinstance(curve, str) else None)
    return algorithm, None, None


def planned_rsa_bits(resource: Resource) -> int | None:
    planned = planned_key(resource)
    if planned is None or planned[0] != "RSA" or not isinstance(planned[1], int | float):
        return None
    return int(planned[1])


def planned_unsupported_algorithm(resource: Resource) -> str | None:
    planned = planned_key(resource)
    if planned is None:
        return None
    algorithm, _, curve = planned
    if algorithm == "RSA":
        return None
    if algorithm == "ECDSA":
        return None if curve is None or curve in ISTIOD_CURVES else f"ECDSA on {curve}"
    return algorithm
