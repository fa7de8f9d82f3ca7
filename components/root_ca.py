"""The mesh's root CA: self-signed certificates and their keys, in generations.

Generation 1 is the root a stack starts with. A root rotation (components/rotation.py) adds the next
generation beside it, switches signing to it, then retires the old one. A root is never re-issued
by a changed setting: its settings apply to the next generation only.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NotRequired, TypedDict

import pulumi
import pulumi_tls as tls

from istio_ca.certificate import CertificateArgs, Issuer, extensions, private_key, subject, validity_hours
from istio_ca.outputs import register_declared_outputs
from istio_ca.profiles import ROOT_CA

# Inputs a root keeps from its creation on: changing them must never replace a root implicitly.
FIXED_KEY_INPUTS = ["algorithm", "rsaBits", "ecdsaCurve"]
FIXED_CERT_INPUTS = [
    "privateKeyPem",
    "subject",
    "validityPeriodHours",
    "allowedUses",
    "isCaCertificate",
    "maxPathLength",
    "setSubjectKeyId",
    "setAuthorityKeyId",
]


class TrustedRootArgs(TypedDict):
    """One root generation that every trust bundle holds."""

    number: int
    """1 for the first root, then one more per rotation."""
    key_from: int
    """The generation whose key it signs with: its own number, or an older one's (a same-key renewal)."""


class RootCAArgs(CertificateArgs):
    """Inputs of a RootCA: every CA certificate's, and which generations exist."""

    generations: NotRequired[Sequence[TrustedRootArgs]]
    """The generations every trust bundle holds, oldest first. Default: generation 1 alone."""
    signing_generation: NotRequired[int]
    """The generation that signs the intermediates; one of `generations`. Default: the first."""


class RootCA(pulumi.ComponentResource):
    """Self-signed root CAs with the extensions of Istio's Makefile.selfsigned.mk, one per generation."""

    cert_pem: pulumi.Output[str]
    """The signing root's certificate, PEM."""
    private_key_pem: pulumi.Output[str]
    """The signing root's key, PEM; always a Pulumi secret."""
    not_after: pulumi.Output[str]
    """The signing root's NotAfter, RFC 3339."""
    trusted_root_pems: pulumi.Output[list[str]]
    """Every generation's certificate, oldest first: what `root-cert.pem` holds."""

    def __init__(self, name: str, args: RootCAArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        # A stack that rotated away from an adopted root (ExistingRoot) goes on with this component.
        aliases = [pulumi.Alias(type_="istio-ca:index:ExistingRoot")]
        super().__init__(
            "istio-ca:index:RootCA",
            name,
            None,
            pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(aliases=aliases)),
        )
        generations = args.get("generations", [TrustedRootArgs(number=1, key_from=1)])
        signing = args.get("signing_generation", generations[0]["number"])
        roots = root_generations(self, name, args, generations, signing)
        signer = roots[signing]
        self.cert_pem = signer.cert_pem
        self.private_key_pem = signer.private_key_pem
        self.not_after = signer.not_after
        self.trusted_root_pems = pulumi.Output.all(*(roots[g["number"]].cert_pem for g in generations))
        register_declared_outputs(self)

    @property
    def signer(self) -> Issuer:
        return Issuer(cert_pem=self.cert_pem, private_key_pem=self.private_key_pem)


@dataclass(frozen=True)
class IssuedRoot:
    """One generation's root certificate, its key and its NotAfter."""

    cert_pem: pulumi.Output[str]
    private_key_pem: pulumi.Output[str]
    not_after: pulumi.Output[str]


def root_generations(
    parent: pulumi.Resource,
    name: str,
    args: CertificateArgs,
    generations: Sequence[TrustedRootArgs],
    signing: int,
    adopted: IssuedRoot | None = None,
) -> dict[int, IssuedRoot]:
    """Each generation's root, by number: generation 1 is `adopted` when given, every other one is
    made here, as `parent`'s children, with `args`' settings.

    The signing generation's key and certificate are protected: `pulumi destroy` (or a careless state
    edit) must never delete the only key that every retained `cacerts` chains to. A generation that
    does not sign is not: a rotation retires it, an abort removes it.
    """
    signing_key = next((g["key_from"] for g in generations if g["number"] == signing), signing)
    keys = {1: adopted.private_key_pem} if adopted is not None else {}
    for generation in generations:
        # A same-key renewal signs with an older generation's key: it stays while any trusted root uses it,
        # under that generation's name, even once that generation's own certificate is retired.
        owner = generation["key_from"]
        if owner not in keys:
            key = private_key(
                generation_name(name, owner, "key"),
                args,
                parent=parent,
                ignore_changes=FIXED_KEY_INPUTS,
                protect=owner == signing_key,
            )
            keys[owner] = pulumi.Output.secret(key.private_key_pem)
    roots = {1: adopted} if adopted is not None else {}
    for generation in generations:
        number = generation["number"]
        if number in roots:
            continue
        key_pem = keys[generation["key_from"]]
        cert = tls.SelfSignedCert(
            generation_name(name, number, "cert"),
            private_key_pem=key_pem,
            subject=tls.SelfSignedCertSubjectArgs(**subject(args)),
            validity_period_hours=validity_hours(args["validity_days"]),
            **extensions(ROOT_CA, self_signed=True),
            opts=pulumi.ResourceOptions(parent=parent, ignore_changes=FIXED_CERT_INPUTS, protect=number == signing),
        )
        roots[number] = IssuedRoot(cert_pem=cert.cert_pem, private_key_pem=key_pem, not_after=cert.validity_end_time)
    return roots


def generation_name(name: str, generation: int, part: str) -> str:
    """`root-key`, `root-cert` for generation 1 (the names every stack started with), `root-g2-key` after."""
    return f"{name}-{part}" if generation == 1 else f"{name}-g{generation}-{part}"
