"""The resources the rules judge, as the engine shows them: type, name, inputs (or, in a stack's view,
outputs), the provider's inputs and which resources each property came from. Values the engine does not
know yet (at preview) are UNKNOWN; a rule judges only what is known.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from istio_ca.cacerts import SECRET_NAME

PRIVATE_KEY = "tls:index/privateKey:PrivateKey"
CERT_REQUEST = "tls:index/certRequest:CertRequest"
SELF_SIGNED_CERT = "tls:index/selfSignedCert:SelfSignedCert"
LOCALLY_SIGNED_CERT = "tls:index/locallySignedCert:LocallySignedCert"
CERTIFICATES = (SELF_SIGNED_CERT, LOCALLY_SIGNED_CERT)
SECRET = "kubernetes:core/v1:Secret"
KUBERNETES_PROVIDER = "pulumi:providers:kubernetes"
STACK = "pulumi:pulumi:Stack"


class Unknown:
    """A value the engine will only know once the resources it comes from exist (at preview)."""

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Final = Unknown()


@dataclass(frozen=True)
class Resource:
    """One resource as a rule sees it."""

    type: str
    name: str
    props: Mapping[str, Any]
    urn: str = ""
    provider: Resource | None = None
    """Its provider (for a kubernetes Secret: the one that writes it), with that provider's inputs."""
    property_dependencies: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """The URNs each property's value came from; in a stack's view only."""

    def get(self, *path: str) -> Any:
        """The value at `path` in the props: UNKNOWN when it or a map above it is unknown, None when absent."""
        value: Any = self.props
        for key in path:
            if value is UNKNOWN:
                return UNKNOWN
            if not isinstance(value, Mapping):
                return None
            value = value.get(key)
        return value

    def sources(self, prop: str) -> list[str]:
        return list(self.property_dependencies.get(prop, ()))


def is_cacerts(resource: Resource) -> bool:
    """A kubernetes Secret named `cacerts`, in any namespace: what istiod loads its plugged-in CA from."""
    return resource.type == SECRET and resource.get("metadata", "name") == SECRET_NAME


def is_ca_certificate(resource: Resource) -> bool:
    """A pulumi-tls certificate known to be a CA (isCaCertificate true)."""
    return resource.type in CERTIFICATES and resource.get("isCaCertificate") is True


def is_issuer_of_a_ca(resource: Resource) -> bool:
    return resource.type == LOCALLY_SIGNED_CERT and resource.get("isCaCertificate") is True


@dataclass(frozen=True)
class SecretFiles:
    """What a Secret holds, `data` (base64) and `stringData` merged, as far as known."""

    names: frozenset[str] | None
    """Every key, None while the maps themselves are unknown."""
    files: Mapping[str, str]
    """The known values, decoded; a value that is unknown or not base64 is left out."""


def secret_files(resource: Resource) -> SecretFiles:
    names: set[str] = set()
    files: dict[str, str] = {}
    all_known = True
    for prop in ("data", "stringData"):
        values = resource.get(prop)
        if values is UNKNOWN:
            all_known = False
            continue
        if not isinstance(values, Mapping):
            continue
        for name, value in values.items():
            names.add(name)
            text = _decoded(value) if prop == "data" else value
            if isinstance(text, str):
                files[name] = text
    return SecretFiles(frozenset(names) if all_known else None, files)


def _decoded(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None


def known_text(value: Any) -> str | None:
    """`value` when it is a known string, else None."""
    return value if isinstance(value, str) else None


def is_true(value: Any) -> bool:
    """A boolean input, as a program sets it or as the engine records a provider's (the string "true")."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


@dataclass(frozen=True)
class Stack:
    """Every resource of a stack, as a stack-wide rule sees them (outputs where known)."""

    resources: Sequence[Resource]

    def sources(self, resource: Resource, prop: str) -> list[Resource]:
        """The resources `resource`'s property `prop` came from."""
        by_urn = {r.urn: r for r in self.resources}
        return [by_urn[urn] for urn in resource.sources(prop) if urn in by_urn]
