"""What every certificate here is made of: its arguments, its key, its validity, its issuer."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NotRequired, Protocol, TypedDict

import pulumi
import pulumi_tls as tls

from istio_ca.config_schema import HOURS_PER_DAY, default_renew_before_hours
from istio_ca.profiles import CertificateProfile


class CertificateArgs(TypedDict):
    """The inputs every certificate takes. Defaults live in the stack config."""

    organization: pulumi.Input[str]
    """Subject O (Makefile ROOTCA_ORG / INTERMEDIATE_ORG)."""
    common_name: pulumi.Input[str]
    """Subject CN (Makefile ROOTCA_CN / INTERMEDIATE_CN)."""
    validity_days: pulumi.Input[int]
    """Days the certificate is valid (Makefile ROOTCA_DAYS / INTERMEDIATE_DAYS)."""
    key_algorithm: pulumi.Input[str]
    """`RSA` or `ECDSA`."""
    rsa_bits: NotRequired[pulumi.Input[int]]
    """RSA key size (Makefile ROOTCA_KEYSZ / INTERMEDIATE_KEYSZ); only with `RSA`."""
    ecdsa_curve: NotRequired[pulumi.Input[str]]
    """`P256` or `P384`; only with `ECDSA`."""


class IssuedCertificateArgs(CertificateArgs):
    """The inputs of a certificate an issuer signs, which renews itself."""

    renew_before_hours: NotRequired[pulumi.Input[int]]
    """Re-issue the certificate on the first `pulumi up` this many hours before it ends (pulumi-tls
    `early_renewal_hours`). Default: the last third of its lifetime, as cert-manager renews."""
    key_generation: NotRequired[int]
    """Raise it to replace the key too, not only the certificate (after a suspected leak). Default: 1."""


def private_key(
    name: str,
    args: CertificateArgs,
    parent: pulumi.Resource,
    generation: int = 1,
    ignore_changes: list[str] | None = None,
    protect: bool = False,
    aliases: list[pulumi.Input[pulumi.Alias]] | None = None,
) -> tls.PrivateKey:
    """A key held only in Pulumi state, where every PEM output is a secret; a new `generation` replaces it."""
    return tls.PrivateKey(
        name,
        algorithm=args["key_algorithm"],
        rsa_bits=args.get("rsa_bits"),
        ecdsa_curve=args.get("ecdsa_curve"),
        opts=pulumi.ResourceOptions(
            parent=parent,
            # A changed generation replaces the key. The engine does not replace on a trigger it had no
            # value for before, so keys made before this option existed stay.
            replacement_trigger=generation,
            ignore_changes=ignore_changes,
            protect=protect,
            aliases=aliases,
            additional_secret_outputs=["private_key_pem", "private_key_openssh", "private_key_pem_pkcs8"],
        ),
    )


def renew_before_hours(args: IssuedCertificateArgs) -> pulumi.Output[int]:
    """The certificate's renewal window in hours: as given, else the last third of its lifetime."""
    if "renew_before_hours" in args:
        return pulumi.Output.from_input(args["renew_before_hours"])
    return pulumi.Output.from_input(args["validity_days"]).apply(default_renew_before_hours)


def subject(args: CertificateArgs, locality: pulumi.Input[str] | None = None) -> dict[str, Any]:
    """The subject every certificate carries (O, CN), and L where the Makefile sets one."""
    fields: dict[str, Any] = {"organization": args["organization"], "common_name": args["common_name"]}
    if locality is not None:
        fields["locality"] = locality
    return fields


def validity_hours(days: pulumi.Input[int]) -> pulumi.Output[int]:
    return pulumi.Output.from_input(days).apply(lambda d: d * HOURS_PER_DAY)


@dataclass(frozen=True)
class Issuer:
    """The CA that signs: its certificate and key, PEM."""

    cert_pem: pulumi.Input[str]
    private_key_pem: pulumi.Input[str]


class Root(Protocol):
    """A root of the mesh, generated (RootCA) or adopted (ExistingRoot).

    What signs is kept apart from what is trusted: in the steady state one root does both and the
    trust bundle (`root-cert.pem`) holds only it; during a rotation two roots are trusted while one signs.
    """

    @property
    def signer(self) -> Issuer:
        """The certificate and key that sign the intermediates."""
        ...

    @property
    def trusted_root_pems(self) -> pulumi.Output[list[str]]:
        """The roots workloads trust, in order: what `root-cert.pem` holds."""
        ...

    @property
    def not_after(self) -> pulumi.Output[str]:
        """The signing root's NotAfter, RFC 3339."""
        ...


@dataclass(frozen=True)
class SignedCertificate:
    key: tls.PrivateKey
    cert: tls.LocallySignedCert


def signed_certificate(
    name: str,
    *,
    args: IssuedCertificateArgs,
    profile: CertificateProfile,
    locality: pulumi.Input[str],
    issuer: Issuer,
    parent: pulumi.Resource,
    dns_names: pulumi.Input[Sequence[pulumi.Input[str]]] | None = None,
    uris: pulumi.Input[Sequence[pulumi.Input[str]]] | None = None,
    aliases_of: Callable[[str], list[pulumi.Input[pulumi.Alias]] | None] = lambda part: None,
) -> SignedCertificate:
    """A new key, its CSR, and the certificate the issuer signs with the profile's extensions.
    `aliases_of(part)`: the names `key`, `csr` and `cert` had before the owner was renamed."""
    key, csr = key_and_request(
        name,
        args=args,
        profile=profile,
        locality=locality,
        parent=parent,
        generation=args.get("key_generation", 1),
        dns_names=dns_names,
        uris=uris,
        aliases_of=aliases_of,
    )
    cert = signed_request(
        name, csr.cert_request_pem, args=args, profile=profile, issuer=issuer, parent=parent, aliases=aliases_of("cert")
    )
    return SignedCertificate(key=key, cert=cert)


def key_and_request(
    name: str,
    *,
    args: CertificateArgs,
    profile: CertificateProfile,
    locality: pulumi.Input[str],
    parent: pulumi.Resource,
    generation: int = 1,
    dns_names: pulumi.Input[Sequence[pulumi.Input[str]]] | None = None,
    uris: pulumi.Input[Sequence[pulumi.Input[str]]] | None = None,
    aliases_of: Callable[[str], list[pulumi.Input[pulumi.Alias]] | None] = lambda part: None,
) -> tuple[tls.PrivateKey, tls.CertRequest]:
    """A new key (`<name>-key`) and its CSR (`<name>-csr`), with the subject and SANs of the profile; a new
    `generation` replaces the key."""
    key = private_key(f"{name}-key", args, parent=parent, generation=generation, aliases=aliases_of("key"))
    csr = tls.CertRequest(
        f"{name}-csr",
        private_key_pem=key.private_key_pem,
        subject=tls.CertRequestSubjectArgs(**subject(args, locality=locality)),
        **subject_alt_names(profile, dns_names=dns_names, uris=uris),
        opts=pulumi.ResourceOptions(parent=parent, aliases=aliases_of("csr")),
    )
    return key, csr


def signed_request(
    name: str,
    cert_request_pem: pulumi.Input[str],
    *,
    args: IssuedCertificateArgs,
    profile: CertificateProfile,
    issuer: Issuer,
    parent: pulumi.Resource,
    aliases: list[pulumi.Input[pulumi.Alias]] | None = None,
) -> tls.LocallySignedCert:
    """The certificate (`<name>-cert`) the issuer signs for a CSR, with the profile's extensions; it renews
    itself in the last `renew_before_hours`."""
    return tls.LocallySignedCert(
        f"{name}-cert",
        cert_request_pem=cert_request_pem,
        ca_cert_pem=issuer.cert_pem,
        ca_private_key_pem=issuer.private_key_pem,
        validity_period_hours=validity_hours(args["validity_days"]),
        early_renewal_hours=renew_before_hours(args),
        **extensions(profile, self_signed=False),
        opts=pulumi.ResourceOptions(parent=parent, aliases=aliases),
    )


class ProfileError(ValueError):
    """A profile asks for something pulumi-tls cannot issue."""


def extensions(profile: CertificateProfile, *, self_signed: bool) -> dict[str, Any]:
    """The pulumi-tls arguments that give a certificate the profile's extensions: the one mapping
    from a profile to the provider, for every certificate."""
    arguments: dict[str, Any] = {
        "allowed_uses": profile.allowed_uses,
        "is_ca_certificate": profile.is_ca,
        # pulumi-tls ignores 0 (it never sets Go's MaxPathLenZero): see the README.
        "max_path_length": profile.max_path_length,
        "set_subject_key_id": profile.subject_key_identifier,
    }
    if self_signed:
        arguments["set_authority_key_id"] = profile.authority_key_identifier
    elif not profile.authority_key_identifier:
        raise ProfileError(
            "a LocallySignedCert always carries an authorityKeyIdentifier (Go copies the issuer's "
            "subjectKeyIdentifier) and pulumi-tls has no switch to leave it out"
        )
    return arguments


def subject_alt_names(
    profile: CertificateProfile,
    *,
    dns_names: pulumi.Input[Sequence[pulumi.Input[str]]] | None,
    uris: pulumi.Input[Sequence[pulumi.Input[str]]] | None,
) -> dict[str, Any]:
    """The subjectAltName arguments of a CSR: there only when the profile carries the extension."""
    if profile.subject_alt_names:
        return {"dns_names": dns_names, "uris": uris}
    if dns_names is not None or uris is not None:
        raise ProfileError("the profile carries no subjectAltName, but DNS names or URIs were given")
    return {}


def trust_bundle(root_pems: pulumi.Input[Sequence[pulumi.Input[str]]]) -> pulumi.Output[str]:
    """`root-cert.pem`: the trusted roots, in order."""
    return pulumi.Output.from_input(root_pems).apply(lambda roots: pem_bundle([str(pem) for pem in roots]))


def pem_bundle(pems: Sequence[str]) -> str:
    """Concatenate PEM blocks, one newline between them, as openssl's `cat` would."""
    return "".join(pem if pem.endswith("\n") else pem + "\n" for pem in pems)
