"""CA private keys and subjects, shared by the root and the cluster CAs."""

from __future__ import annotations

import pulumi
import pulumi_tls as tls

HOURS_PER_DAY = 24


def ca_private_key(
    name: str,
    algorithm: pulumi.Input[str],
    rsa_bits: pulumi.Input[int] | None,
    ecdsa_curve: pulumi.Input[str] | None,
    parent: pulumi.Resource,
) -> tls.PrivateKey:
    """A CA key held only in Pulumi state, where every PEM output is a secret."""
    return tls.PrivateKey(
        name,
        algorithm=algorithm,
        rsa_bits=rsa_bits,
        ecdsa_curve=ecdsa_curve,
        opts=pulumi.ResourceOptions(
            parent=parent,
            additional_secret_outputs=["private_key_pem", "private_key_openssh", "private_key_pem_pkcs8"],
        ),
    )


def validity_hours(days: pulumi.Input[int]) -> pulumi.Output[int]:
    return pulumi.Output.from_input(days).apply(lambda d: d * HOURS_PER_DAY)
