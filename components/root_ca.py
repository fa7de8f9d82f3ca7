"""The mesh's root CA: a self-signed certificate and its key."""

from typing import NotRequired, TypedDict

import pulumi
import pulumi_tls as tls

from components.keys import ca_private_key, validity_hours
from components.profiles import ROOT_CA


class RootCAArgs(TypedDict):
    """Inputs of a RootCA. Defaults live in the stack config, not here."""

    organization: pulumi.Input[str]
    """Subject O (Makefile ROOTCA_ORG)."""
    common_name: pulumi.Input[str]
    """Subject CN (Makefile ROOTCA_CN)."""
    validity_days: pulumi.Input[int]
    """Days the certificate is valid (Makefile ROOTCA_DAYS)."""
    key_algorithm: pulumi.Input[str]
    """`RSA` or `ECDSA`."""
    rsa_bits: NotRequired[pulumi.Input[int]]
    """RSA key size (Makefile ROOTCA_KEYSZ); only with `RSA`."""
    ecdsa_curve: NotRequired[pulumi.Input[str]]
    """`P256` or `P384`; only with `ECDSA`."""


class RootCA(pulumi.ComponentResource):
    """A self-signed root CA with the extensions of Istio's Makefile.selfsigned.mk."""

    cert_pem: pulumi.Output[str]
    """The root certificate, PEM."""
    private_key_pem: pulumi.Output[str]
    """The root key, PEM; always a Pulumi secret."""
    not_after: pulumi.Output[str]
    """The certificate's NotAfter, RFC 3339."""

    def __init__(self, name: str, args: RootCAArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("istio-ca:index:RootCA", name, None, opts)
        key = ca_private_key(
            f"{name}-key",
            algorithm=args["key_algorithm"],
            rsa_bits=args.get("rsa_bits"),
            ecdsa_curve=args.get("ecdsa_curve"),
            parent=self,
        )
        cert = tls.SelfSignedCert(
            f"{name}-cert",
            private_key_pem=key.private_key_pem,
            subject=tls.SelfSignedCertSubjectArgs(
                organization=args["organization"],
                common_name=args["common_name"],
            ),
            validity_period_hours=validity_hours(args["validity_days"]),
            allowed_uses=list(ROOT_CA.key_usages),
            is_ca_certificate=ROOT_CA.is_ca,
            max_path_length=ROOT_CA.max_path_length,
            set_subject_key_id=ROOT_CA.subject_key_identifier,
            set_authority_key_id=ROOT_CA.authority_key_identifier,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.cert_pem = cert.cert_pem
        self.private_key_pem = pulumi.Output.secret(key.private_key_pem)
        self.not_after = cert.validity_end_time
        self.register_outputs(
            {"cert_pem": self.cert_pem, "private_key_pem": self.private_key_pem, "not_after": self.not_after}
        )
