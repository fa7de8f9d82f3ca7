"""What every CA certificate here is made of: its arguments, its key, its validity."""

from typing import NotRequired, TypedDict

import pulumi
import pulumi_tls as tls

HOURS_PER_DAY = 24


class CertificateArgs(TypedDict):
    """The inputs RootCAArgs and ClusterCAArgs share. Defaults live in the stack config."""

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


def ca_private_key(name: str, args: CertificateArgs, parent: pulumi.Resource) -> tls.PrivateKey:
    """A CA key held only in Pulumi state, where every PEM output is a secret."""
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
