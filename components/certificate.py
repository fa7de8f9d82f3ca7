"""What every certificate here is made of: its arguments, its key, its validity, its issuer."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NotRequired, TypedDict

import pulumi
import pulumi_tls as tls

from components.profiles import CertificateProfile

HOURS_PER_DAY = 24


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


def private_key(name: str, args: CertificateArgs, parent: pulumi.Resource) -> tls.PrivateKey:
    """A key held only in Pulumi state, where every PEM output is a secret."""
    return tls.PrivateKey(
        name,
        algorithm=args["key_algorithm"],
        rsa_bits=args.get("rsa_bits"),
        ecdsa_curve=args.get("ecdsa_curve"),
        opts=pulumi.ResourceOptions(
            parent=parent,
            additional_secret_outputs=["private_key_pem", "private_key_openssh", "private_key_pem_pkcs8"],
        ),
    )


def validity_hours(days: pulumi.Input[int]) -> pulumi.Output[int]:
    return pulumi.Output.from_input(days).apply(lambda d: d * HOURS_PER_DAY)


@dataclass(frozen=True)
class Issuer:
    """The CA that signs: its certificate and key, PEM."""

    cert_pem: pulumi.Input[str]
    private_key_pem: pulumi.Input[str]


@dataclass(frozen=True)
class SignedCertificate:
    key: tls.PrivateKey
    cert: tls.LocallySignedCert


def signed_certificate(
    name: str,
    *,
    args: CertificateArgs,
    profile: CertificateProfile,
    subject: tls.CertRequestSubjectArgs,
    issuer: Issuer,
    parent: pulumi.Resource,
    dns_names: pulumi.Input[Sequence[pulumi.Input[str]]] | None = None,
    uris: pulumi.Input[Sequence[pulumi.Input[str]]] | None = None,
) -> SignedCertificate:
    """A new key, its CSR, and the certificate the issuer signs with the profile's extensions."""
    key = private_key(f"{name}-key", args, parent=parent)
    csr = tls.CertRequest(
        f"{name}-csr",
        private_key_pem=key.private_key_pem,
        subject=subject,
        dns_names=dns_names,
        uris=uris,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    cert = tls.LocallySignedCert(
        f"{name}-cert",
        cert_request_pem=csr.cert_request_pem,
        ca_cert_pem=issuer.cert_pem,
        ca_private_key_pem=issuer.private_key_pem,
        validity_period_hours=validity_hours(args["validity_days"]),
        allowed_uses=profile.allowed_uses,
        is_ca_certificate=profile.is_ca,
        max_path_length=profile.max_path_length,
        set_subject_key_id=profile.subject_key_identifier,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return SignedCertificate(key=key, cert=cert)


def pem_bundle(pems: Sequence[str]) -> str:
    """Concatenate PEM blocks, one newline between them, as openssl's `cat` would."""
    return "".join(pem if pem.endswith("\n") else pem + "\n" for pem in pems)
