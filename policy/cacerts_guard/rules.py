"""Every rule of the pack, as data: what it catches, the reason istiod or a proxy gives, its config.

A rule with `check` is a resource rule: the engine runs it on each resource's inputs, at preview on what is
known and at `up` just before that resource is written, so a mandatory finding blocks the write. A rule with
`planned` also has a stack-wide companion, `<name>-planned`, that judges at preview what a CA is made
from before it exists (a new key's algorithm, an issuer's inputs). A rule with only `stack_check` judges
the whole stack, at the end of a preview or `up`. Every rule is mandatory by default.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cacerts_guard import cacerts_secret, certificates, leaks
from cacerts_guard.certificates import Findings, StackFindings
from cacerts_guard.resources import Resource, Stack

ResourceCheck = Callable[[Resource, Mapping[str, Any]], Findings]
StackCheck = Callable[[Stack, Mapping[str, Any]], StackFindings]
PLANNED_SUFFIX = "-planned"


@dataclass(frozen=True)
class Option:
    """One config key of a rule: its JSON schema (with its default) and what it sets."""

    schema: Mapping[str, Any]
    description: str


@dataclass(frozen=True)
class Rule:
    name: str
    group: str
    catches: str
    reason: str
    """Why istiod or a proxy needs it so."""
    check: ResourceCheck | None = None
    planned: StackCheck | None = None
    stack_check: StackCheck | None = None
    options: Mapping[str, Option] = field(default_factory=dict)

    @property
    def description(self) -> str:
        return f"{self.catches}: {self.reason}"

    def settings(self, config: Mapping[str, Any] | None) -> dict[str, Any]:
        """The rule's config, each key not given taking its default."""
        return {**{key: option.schema["default"] for key, option in self.options.items()}, **(config or {})}

    def findings(self, resource: Resource, config: Mapping[str, Any] | None = None) -> Findings:
        assert self.check is not None, f"{self.name} is not a resource rule"
        return self.check(resource, self.settings(config))

    def stack_findings(self, stack: Stack, config: Mapping[str, Any] | None = None) -> StackFindings:
        check = self.stack_check or self.planned
        assert check is not None, f"{self.name} has no stack-wide check"
        return check(stack, self.settings(config))


MIN_RSA_BITS = Option(
    {"type": "integer", "minimum": 2048, "default": 2048}, "the smallest RSA key a CA may have, in bits"
)

RULES: tuple[Rule, ...] = (
    Rule(
        "ca-key-rsa-too-small",
        "keys",
        "an RSA key under minRsaBits (2048) that reaches a cacerts or makes or signs a CA certificate",
        "Go's crypto/x509, which istiod and the proxies verify with, refuses RSA keys under 1024 bits, and anything "
        "under 2048 bits can be factored: one broken CA key lets anyone mint workload identities for the mesh",
        check=certificates.rsa_too_small,
        planned=certificates.planned_rsa_too_small,
        options={"minRsaBits": MIN_RSA_BITS},
    ),
    Rule(
        "ca-key-unsupported-algorithm",
        "keys",
        "a CA key neither RSA nor ECDSA on P-256 or P-384 (Ed25519, P-224, P-521) that reaches a cacerts or "
        "makes or signs a CA certificate",
        "istiod signs workload certificates with its CA key as RSA or ECDSA P-256/P-384 only; with another key its "
        "plugged-in CA fails to load, or signs certificates proxies cannot verify",
        check=certificates.unsupported_algorithm,
        planned=certificates.planned_unsupported_algorithm,
    ),
    Rule(
        "ca-extended-key-usage",
        "certificates",
        "a CA certificate with an extendedKeyUsage",
        "istiod verifies its CA with Go's x509 defaults (serverAuth): a CA certificate whose EKU list lacks it "
        "fails, and an EKU on a CA constrains every certificate below it",
        check=certificates.extended_key_usage,
    ),
    Rule(
        "ca-missing-key-cert-sign",
        "certificates",
        "a CA certificate without keyUsage keyCertSign (pulumi-tls cert_signing)",
        "a CA whose keyUsage lacks keyCertSign may not sign certificates: proxies reject every workload "
        "certificate istiod signs with it",
        check=certificates.missing_key_cert_sign,
    ),
    Rule(
        "ca-issuer-not-ca",
        "certificates",
        "a certificate signed under an issuer certificate that is not a CA (isCaCertificate false)",
        "path validation in istiod and the proxies needs basicConstraints CA:TRUE on every issuer; a chain "
        "through a non-CA is rejected",
        check=certificates.issuer_not_ca,
        planned=certificates.planned_issuer_not_ca,
    ),
    Rule(
        "ca-validity-too-long",
        "certificates",
        "a root CA valid over maxRootDays (7300) or an intermediate over maxIntermediateDays (3650)",
        "a CA lives as long as its key must stay secret; a longer one is a longer exposure, and istiod only "
        "renews what it issues, never its plugged-in CA",
        check=certificates.validity_too_long,
        options={
            "maxRootDays": Option({"type": "integer", "minimum": 1, "default": 7300}, "the longest a root may last"),
            "maxIntermediateDays": Option(
                {"type": "integer", "minimum": 1, "default": 3650}, "the longest an intermediate may last"
            ),
        },
    ),
    Rule(
        "ca-outlives-root",
        "certificates",
        "an intermediate CA that would end after its issuer",
        "once its root ends, every certificate below fails verification in the proxies: the intermediate's "
        "extra life is a date at which the mesh's mTLS breaks, not one it can use",
        check=certificates.outlives_issuer,
        planned=certificates.planned_outlives_issuer,
    ),
    Rule(
        "cacerts-missing-file",
        "cacerts",
        "a cacerts without one of ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem",
        "istiod loads its plugged-in CA only when all four files are there; otherwise it starts a self-signed CA "
        "with a new root, and that cluster's workloads no longer trust the rest of the mesh",
        check=cacerts_secret.missing_file,
    ),
    Rule(
        "cacerts-istio-generated",
        "cacerts",
        "a cacerts holding istio-generated",
        "istiod takes a cacerts marked istio-generated for its own self-signed CA, which it may rotate or "
        "replace by itself",
        check=cacerts_secret.istio_generated,
    ),
    Rule(
        "cacerts-not-opaque",
        "cacerts",
        "a cacerts whose type is not Opaque",
        "a Secret's type cannot change: a typed cacerts (kubernetes.io/tls ...) can only be fixed by deleting "
        "it, and an istiod restarting meanwhile mints a self-signed root",
        check=cacerts_secret.not_opaque,
    ),
    Rule(
        "cacerts-broken-chain",
        "cacerts",
        "a cacerts whose ca-cert.pem does not chain (through cert-chain.pem) to a root in root-cert.pem",
        "istiod verifies its plugged-in CA against root-cert.pem before it signs; a broken chain stops it from "
        "loading the CA, and proxies given that root reject what it signs",
        check=cacerts_secret.broken_chain,
    ),
    Rule(
        "cacerts-key-mismatch",
        "cacerts",
        "a cacerts whose ca-key.pem is not the key of ca-cert.pem",
        "istiod refuses a CA certificate and key that do not match; it signs nothing with them",
        check=cacerts_secret.key_mismatch,
    ),
    Rule(
        "cacerts-root-not-ca",
        "cacerts",
        "a cacerts whose root-cert.pem holds a certificate that is not a CA",
        "root-cert.pem is every proxy's trust anchor; a non-CA there anchors no chain, and istiod's "
        "verification of its own CA against it fails",
        check=cacerts_secret.root_not_ca,
    ),
    Rule(
        "cacerts-provider-not-mutable",
        "providers",
        "a Kubernetes provider without enableSecretMutable that writes a cacerts",
        "such a provider deletes and re-creates a changed Secret; an istiod starting in between finds no cacerts "
        "and mints a self-signed root",
        check=cacerts_secret.provider_not_mutable,
    ),
    Rule(
        "private-key-in-input",
        "secrets",
        "a private key (PEM or base64, in any encoding) in an input outside the key-bearing fields",
        "a key in any other input lands in plain text wherever that input goes (a ConfigMap, an annotation, a "
        "log): a CA key there lets anyone mint identities the proxies trust",
        check=leaks.key_in_input,
        options={
            "keyBearingFields": Option(
                {"type": "array", "items": {"type": "string"}, "default": []},
                "more `<type>:<path>` inputs that may hold a key (a path step may be `*`)",
            )
        },
    ),
    Rule(
        "private-key-in-output",
        "secrets",
        "a private key (PEM or base64, in any encoding) in a stack output, secret or not",
        "stack outputs are read by anyone with access to the stack (`pulumi stack output --show-secrets`, "
        "other stacks' StackReferences); a CA key there leaves the state",
        stack_check=leaks.key_in_output,
        options={
            "allowedOutputs": Option(
                {"type": "array", "items": {"type": "string"}, "default": []},
                "outputs that may hold keys on purpose (istio-ca's workloadKeys)",
            )
        },
    ),
)


def policy_names() -> list[str]:
    """The names of the Pulumi policies the pack registers, companions included."""
    names = []
    for rule in RULES:
        names.append(rule.name)
        if rule.planned is not None:
            names.append(rule.name + PLANNED_SUFFIX)
    return names
