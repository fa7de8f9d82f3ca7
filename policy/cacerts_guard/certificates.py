"""The checks on CA certificates and on the keys that make or sign them: on one pulumi-tls certificate or
`cacerts` Secret (whatever of it is known), and, across a stack, on the resources a CA is planned from.

Each check returns its findings as messages that name fields and resources, never a value.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator, Mapping
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from cacerts_guard import keys
from cacerts_guard.resources import (
    CERT_REQUEST,
    CERTIFICATES,
    LOCALLY_SIGNED_CERT,
    PRIVATE_KEY,
    SELF_SIGNED_CERT,
    Resource,
    Stack,
    is_ca_certificate,
    is_cacerts,
    is_issuer_of_a_ca,
    known_text,
    secret_files,
)
from istio_ca.certificate_checks import AGREEMENT_ONLY_ATTRIBUTES, KEY_USAGE_ATTRIBUTES
from istio_ca.pem import certificates_in

KEY_CERT_SIGN = "cert_signing"
"""pulumi-tls's name for keyUsage keyCertSign."""
KEY_USAGES = {*KEY_USAGE_ATTRIBUTES, *AGREEMENT_ONLY_ATTRIBUTES}
"""pulumi-tls `allowedUses` names of key usages; every other name is an extended key usage."""
HOURS_PER_DAY = 24

Findings = list[str]
StackFindings = list[tuple[str, str]]
"""(URN, message) per finding."""


def ca_keys(resource: Resource) -> Iterator[tuple[str, PublicKeyTypes]]:
    """The keys a resource makes a CA with or signs one with, where known, by the field that holds each:
    a CA certificate's own key and its issuer's, and `cacerts`' `ca-key.pem`."""
    fields: list[tuple[str, Any]] = []
    if is_ca_certificate(resource):
        if resource.type == SELF_SIGNED_CERT:
            fields.append(("privateKeyPem", resource.get("privateKeyPem")))
        else:
            fields += [
                ("certRequestPem", resource.get("certRequestPem")),
                ("caPrivateKeyPem", resource.get("caPrivateKeyPem")),
            ]
    elif is_cacerts(resource):
        fields.append(("ca-key.pem", secret_files(resource).files.get("ca-key.pem")))
    for where, value in fields:
        text = known_text(value)
        if text is not None:
            for key in keys.public_keys(text):
                yield where, key


def rsa_too_small(resource: Resource, settings: Mapping[str, Any]) -> Findings:
    minimum = int(settings["minRsaBits"])
    return [
        f"{where} is an RSA key of {bits} bits, under {minimum}"
        for where, key in ca_keys(resource)
        if (bits := keys.rsa_bits(key)) is not None and bits < minimum
    ]


def unsupported_algorithm(resource: Resource, settings: Mapping[str, Any]) -> Findings:
    return [
        f"{where} is an {found} key, which istiod cannot sign with"
        for where, key in ca_keys(resource)
        if (found := keys.unsupported_algorithm(key)) is not None
    ]


def planned_ca_keys(stack: Stack) -> dict[str, Resource]:
    """The pulumi-tls PrivateKeys whose keys reach a `cacerts` or make or sign a CA certificate, by URN."""
    found: dict[str, Resource] = {}
    for resource in stack.resources:
        props: list[str] = []
        if is_ca_certificate(resource):
            props = ["privateKeyPem"] if resource.type == SELF_SIGNED_CERT else ["caPrivateKeyPem", "certRequestPem"]
        elif is_cacerts(resource):
            props = ["data", "stringData"]
        for prop in props:
            for source in stack.sources(resource, prop):
                if source.type == CERT_REQUEST:
                    found |= {key.urn: key for key in stack.sources(source, "privateKeyPem") if key.type == PRIVATE_KEY}
                elif source.type == PRIVATE_KEY:
                    found[source.urn] = source
    return found


def planned_rsa_too_small(stack: Stack, settings: Mapping[str, Any]) -> StackFindings:
    minimum = int(settings["minRsaBits"])
    return [
        (urn, f"PrivateKey {key.name} is RSA of {bits} bits, under {minimum}, and makes or signs a CA")
        for urn, key in planned_ca_keys(stack).items()
        if (bits := keys.planned_rsa_bits(key)) is not None and bits < minimum
    ]


def planned_unsupported_algorithm(stack: Stack, settings: Mapping[str, Any]) -> StackFindings:
    return [
        (urn, f"PrivateKey {key.name} is {found}, which istiod cannot sign with, and makes or signs a CA")
        for urn, key in planned_ca_keys(stack).items()
        if (found := keys.planned_unsupported_algorithm(key)) is not None
    ]


def allowed_uses(resource: Resource) -> list[str] | None:
    uses = resource.get("allowedUses")
    if not isinstance(uses, list) or not all(isinstance(use, str) for use in uses):
        return None
    return uses


def extended_key_usage(resource: Resource, settings: Mapping[str, Any]) -> Findings:
    uses = allowed_uses(resource) if is_ca_certificate(resource) else None
    extended = [use for use in uses or [] if use not in KEY_USAGES]
    return [f"a CA certificate with extended key usages {', '.join(extended)}"] if extended else []


def missing_key_cert_sign(resource: Resource, settings: Mapping[str, Any]) -> Findings:
    uses = allowed_uses(resource) if is_ca_certificate(resource) else None
    if uses is None or KEY_CERT_SIGN in uses:
        return []
    return [f"a CA certificate whose allowedUses lack {KEY_CERT_SIGN} (keyCertSign)"]


def issuer_not_ca(resource: Resource, settings: Mapping[str, Any]) -> Findings:
    """A certificate signed under an issuer certificate that is not a CA (known once the issuer exists)."""
    if resource.type != LOCALLY_SIGNED_CERT:
        return []
    text = known_text(resource.get("caCertPem"))
    issuers = certificates_in(text) if text is not None else []
    if issuers and not is_ca(issuers[0]):
        return [f"caCertPem is not a CA certificate ({issuers[0].subject.rfc4514_string()})"]
    return []


def planned_issuer_not_ca(stack: Stack, settings: Mapping[str, Any]) -> StackFindings:
    return [
        (resource.urn, f"{resource.name} is signed under {issuer.name}, whose isCaCertificate is not true")
        for resource in stack.resources
        if resource.type == LOCALLY_SIGNED_CERT
        for issuer in stack.sources(resource, "caCertPem")
        if issuer.type in CERTIFICATES and issuer.get("isCaCertificate") in (False, None)
    ]


def validity_too_long(resource: Resource, settings: Mapping[str, Any]) -> Findings:
    hours = resource.get("validityPeriodHours")
    if not is_ca_certificate(resource) or not isinstance(hours, int | float):
        return []
    kind, key = (
        ("root", "maxRootDays") if resource.type == SELF_SIGNED_CERT else ("intermediate", "maxIntermediateDays")
    )
    maximum = int(settings[key])
    if hours > maximum * HOURS_PER_DAY:
        return [f"a {kind} CA valid for {hours / HOURS_PER_DAY:g} days, over the {maximum} days of {key}"]
    return []


def outlives_issuer(resource: Resource, settings: Mapping[str, Any]) -> Findings:
    """An intermediate that would end after its issuer, issued now (known once the issuer exists)."""
    hours = resource.get("validityPeriodHours")
    text = known_text(resource.get("caCertPem"))
    if not is_issuer_of_a_ca(resource) or not isinstance(hours, int | float) or text is None:
        return []
    issuers = certificates_in(text)
    if not issuers:
        return []
    ends = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=hours)
    issuer_ends = issuers[0].not_valid_after_utc
    if ends > issuer_ends:
        return [f"an intermediate valid until {ends:%Y-%m-%d}, after its issuer ends ({issuer_ends:%Y-%m-%d})"]
    return []


def planned_outlives_issuer(stack: Stack, settings: Mapping[str, Any]) -> StackFindings:
    """Issued in the same run (or later) than its issuer, an intermediate with as many hours outlives it."""
    found: StackFindings = []
    for resource in stack.resources:
        hours = resource.get("validityPeriodHours")
        if not is_issuer_of_a_ca(resource) or not isinstance(hours, int | float):
            continue
        for issuer in stack.sources(resource, "caCertPem"):
            issuer_hours = issuer.get("validityPeriodHours")
            if issuer.type in CERTIFICATES and isinstance(issuer_hours, int | float) and hours >= issuer_hours:
                found.append(
                    (
                        resource.urn,
                        f"{resource.name} is valid {hours:g} hours, its issuer {issuer.name} {issuer_hours:g}",
                    )
                )
    return found


def is_ca(cert: x509.Certificate) -> bool:
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except (x509.ExtensionNotFound, ValueError):
        return False
    return constraints.ca
