"""The checks on a `cacerts` Secret, whoever writes it, and on the provider that writes it: on the values known
(at preview the files of new certificates are not; at `up` every value is, before the write)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cryptography import x509

from cacerts_guard.certificates import Findings, is_ca
from cacerts_guard.keys import public_keys
from cacerts_guard.resources import UNKNOWN, Resource, is_cacerts, is_true, secret_files
from istio_ca.cacerts import FILES, SECRET_TYPE
from istio_ca.pem import certificates_in, issued_by

ISTIO_GENERATED = "istio-generated"
"""The key istiod's self-signed CA marks its own `cacerts` with."""
MAX_CHAIN = 8
"""How many certificates of cert-chain.pem a path from ca-cert.pem to a root may pass through."""


def missing_file(resource: Resource, settings: Mapping[str, Any]) -> Findings:
    names = secret_files(resource).names if is_cacerts(resource) else None
    missing = [name for name in FILES if names is not None and name not in names]
    return [f"cacerts lacks {', '.join(missing)}"] if missing else []


def istio_generated(resource: Resource, settings: Mapping[str, Any]) -> Findings:
    names = secret_files(resource).names if is_cacerts(resource) else None
    return [f"cacerts holds {ISTIO_GENERATED}"] if names is not None and ISTIO_GENERATED in names else []


def not_opaque(resource: Resource, settings: Mapping[str, Any]) -> Findings:
    kind = resource.get("type")
    if not is_cacerts(resource) or kind is None or kind is UNKNOWN or kind == SECRET_TYPE:
        return []
    return [f"cacerts has type {kind!r}, not {SECRET_TYPE!r}"]


def _certificates(resource: Resource, name: str) -> list[x509.Certificate] | None:
    """The certificates of one of cacerts' files, None while unknown or absent."""
    if not is_cacerts(resource):
        return None
    text = secret_files(resource).files.get(name)
    return None if text is None else certificates_in(text)


def broken_chain(resource: Resource, settings: Mapping[str, Any]) -> Findings:
    cert, roots = _certificates(resource, "ca-cert.pem"), _certificates(resource, "root-cert.pem")
    if cert is None or roots is None:
        return []
    if not cert:
        return ["ca-cert.pem holds no certificate"]
    between = _certificates(resource, "cert-chain.pem") or []
    current, seen = cert[0], 0
    while seen <= MAX_CHAIN:
        if any(issued_by(current, root) for root in roots):
            return []
        issuers = [candidate for candidate in between if candidate != current and issued_by(current, candidate)]
        if not issuers:
            break
        current, seen = issuers[0], seen + 1
    return [f"ca-cert.pem ({cert[0].subject.rfc4514_string()}) does not chain to a root of root-cert.pem"]


def key_mismatch(resource: Resource, settings: Mapping[str, Any]) -> Findings:
    cert = _certificates(resource, "ca-cert.pem")
    text = secret_files(resource).files.get("ca-key.pem") if is_cacerts(resource) else None
    if not cert or text is None:
        return []
    found = list(public_keys(text))
    if not found:
        return ["ca-key.pem holds no private key that parses"]
    return [] if found[0] == cert[0].public_key() else ["ca-key.pem is not the key of ca-cert.pem"]


def root_not_ca(resource: Resource, settings: Mapping[str, Any]) -> Findings:
    roots = _certificates(resource, "root-cert.pem")
    if roots is None:
        return []
    if not roots:
        return ["root-cert.pem holds no certificate"]
    return [f"root-cert.pem holds {root.subject.rfc4514_string()}, not a CA" for root in roots if not is_ca(root)]


def provider_not_mutable(resource: Resource, settings: Mapping[str, Any]) -> Findings:
    provider = resource.provider
    if not is_cacerts(resource) or provider is None:
        return []
    mutable = provider.get("enableSecretMutable")
    if mutable is UNKNOWN or is_true(mutable):
        return []
    return [f"the Kubernetes provider {provider.name!r} does not set enableSecretMutable"]
