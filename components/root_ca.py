"""The mesh's root CA: a self-signed certificate and its key."""

import pulumi
import pulumi_tls as tls

from components.certificate import CertificateArgs, Issuer, extensions, private_key, subject, validity_hours
from components.outputs import register_declared_outputs
from components.profiles import ROOT_CA


class RootCAArgs(CertificateArgs):
    """Inputs of a RootCA: only those every CA certificate takes."""


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
        key = private_key(f"{name}-key", args, parent=self)
        cert = tls.SelfSignedCert(
            f"{name}-cert",
            private_key_pem=key.private_key_pem,
            subject=tls.SelfSignedCertSubjectArgs(**subject(args)),
            validity_period_hours=validity_hours(args["validity_days"]),
            **extensions(ROOT_CA, self_signed=True),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.cert_pem = cert.cert_pem
        self.private_key_pem = pulumi.Output.secret(key.private_key_pem)
        self.not_after = cert.validity_end_time
        register_declared_outputs(self)

    @property
    def signer(self) -> Issuer:
        return Issuer(cert_pem=self.cert_pem, private_key_pem=self.private_key_pem)

    @property
    def trusted_root_pems(self) -> pulumi.Output[list[str]]:
        return self.cert_pem.apply(lambda pem: [pem])
