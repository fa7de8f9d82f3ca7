"""The mesh's root CA: self-signed certificates and their keys, in generations.

Generation 1 is the root a stack starts with. A root rotation (components/rotation.py) adds the next
generation beside it, switches signing to it, then retires the old one. A root is never re-issued
by a changed setting: its settings apply to the next generation only.
"""

from collections.abc import Sequence
from typing import NotRequired, TypedDict

import pulumi
import pulumi_tls as tls

from components.certificate import CertificateArgs, Issuer, extensions, private_key, subject, validity_hours
from components.outputs import register_declared_outputs
from components.profiles import ROOT_CA

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


class RootGenerationArgs(TypedDict):
    """One root generation."""

    number: int
    """1 for the first root, then one more per rotation."""
    key_of: int
    """The generation whose key it uses: its own number, or an older one's (a same-key renewal)."""


class RootCAArgs(CertificateArgs):
    """Inputs of a RootCA: every CA certificate's, and which generations exist."""

    generations: NotRequired[Sequence[RootGenerationArgs]]
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
        super().__init__("istio-ca:index:RootCA", name, None, opts)
        generations = args.get("generations", [RootGenerationArgs(number=1, key_of=1)])
        signing = args.get("signing_generation", generations[0]["number"])
        keys = {g["key_of"]: self._key(name, g["key_of"], args) for g in generations if g["key_of"] == g["number"]}
        certs = {g["number"]: self._cert(name, g["number"], keys[g["key_of"]], args) for g in generations}
        signer = certs[signing]
        self.cert_pem = signer.cert_pem
        self.private_key_pem = pulumi.Output.secret(keys[_key_of(generations, signing)].private_key_pem)
        self.not_after = signer.validity_end_time
        self.trusted_root_pems = pulumi.Output.all(*(certs[g["number"]].cert_pem for g in generations))
        register_declared_outputs(self)

    def _key(self, name: str, generation: int, args: RootCAArgs) -> tls.PrivateKey:
        return private_key(generation_name(name, generation, "key"), args, parent=self, ignore_changes=FIXED_KEY_INPUTS)

    def _cert(self, name: str, generation: int, key: tls.PrivateKey, args: RootCAArgs) -> tls.SelfSignedCert:
        return tls.SelfSignedCert(
            generation_name(name, generation, "cert"),
            private_key_pem=key.private_key_pem,
            subject=tls.SelfSignedCertSubjectArgs(**subject(args)),
            validity_period_hours=validity_hours(args["validity_days"]),
            **extensions(ROOT_CA, self_signed=True),
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=FIXED_CERT_INPUTS),
        )

    @property
    def signer(self) -> Issuer:
        return Issuer(cert_pem=self.cert_pem, private_key_pem=self.private_key_pem)


def generation_name(name: str, generation: int, part: str) -> str:
    """`root-key`, `root-cert` for generation 1 (the names every stack started with), `root-g2-key` after."""
    return f"{name}-{part}" if generation == 1 else f"{name}-g{generation}-{part}"


def _key_of(generations: Sequence[RootGenerationArgs], number: int) -> int:
    return next(g["key_of"] for g in generations if g["number"] == number)
