"""A VM's workload certificate: a namespace intermediate CA and a leaf it signs."""

from collections.abc import Mapping, Sequence
from typing import Any, NotRequired

import pulumi

from istio_ca.certificate import (
    IssuedCertificateArgs,
    Issuer,
    pem_bundle,
    renew_before_hours,
    signed_certificate,
    trust_bundle,
)
from istio_ca.expiry import renewal_opens
from istio_ca.outputs import published_files, register_declared_outputs
from istio_ca.profiles import INTERMEDIATE_CA, WORKLOAD


class WorkloadCertsArgs(IssuedCertificateArgs):
    """Inputs of WorkloadCerts: the namespace intermediate's, the root's, and the workload's identity.

    organization, common_name, validity_days and the key fields describe the namespace
    intermediate, as in the Makefile's `<namespace>/intermediate.conf`; the leaf shares
    its organization and key type.
    """

    namespace: pulumi.Input[str]
    """The VM's namespace: subject L of both certificates and the SPIFFE `ns`."""
    issuer_cert_pem: pulumi.Input[str]
    """The certificate of the root that signs the namespace intermediate, PEM."""
    issuer_private_key_pem: pulumi.Input[str]
    """The signing root's key, PEM (pass a secret)."""
    trusted_root_pems: pulumi.Input[Sequence[pulumi.Input[str]]]
    """The roots the workload trusts, in order (`root-cert.pem`); the issuer among them."""
    dns_names: pulumi.Input[Sequence[pulumi.Input[str]]]
    """The namespace intermediate's subjectAltName DNS entries (Makefile INTERMEDIATE_SAN_DNS)."""
    service_account: pulumi.Input[str]
    """The SPIFFE `sa` (Makefile SERVICE_ACCOUNT)."""
    trust_domain: pulumi.Input[str]
    """The SPIFFE trust domain."""
    workload_common_name: pulumi.Input[str]
    """The leaf's subject CN (Makefile WORKLOAD_CN)."""
    workload_validity_days: pulumi.Input[int]
    """Days the leaf is valid (Makefile WORKLOAD_DAYS)."""
    workload_renew_before_hours: NotRequired[pulumi.Input[int]]
    """Re-issue the leaf on the first `pulumi up` this many hours before it ends."""


class WorkloadCerts(pulumi.ComponentResource):
    """What the Makefile's `<namespace>-certs` target writes, for a VM joining the mesh."""

    ca_cert_pem: pulumi.Output[str]
    """The namespace intermediate certificate, PEM (`ca-cert.pem`)."""
    ca_private_key_pem: pulumi.Output[str]
    """The namespace intermediate key, PEM (`ca-key.pem`); always a Pulumi secret."""
    cert_pem: pulumi.Output[str]
    """The workload certificate, PEM (`workload-cert.pem`)."""
    private_key_pem: pulumi.Output[str]
    """The workload key, PEM (`key.pem`); always a Pulumi secret."""
    cert_chain_pem: pulumi.Output[str]
    """Workload, namespace intermediate, root, PEM (`workload-cert-chain.pem`)."""
    not_after: pulumi.Output[str]
    """The workload certificate's NotAfter, RFC 3339."""
    renewal_opens: pulumi.Output[str]
    """From when the next `pulumi up` re-issues the workload certificate, RFC 3339."""
    files: pulumi.Output[dict[str, str]]
    """The files `<namespace>-certs` writes, by name; always a Pulumi secret."""

    def __init__(self, name: str, args: WorkloadCertsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("istio-ca:index:WorkloadCerts", name, None, opts)
        intermediate = signed_certificate(
            f"{name}-ca",
            args=args,
            profile=INTERMEDIATE_CA,
            locality=args["namespace"],
            dns_names=args["dns_names"],
            issuer=Issuer(cert_pem=args["issuer_cert_pem"], private_key_pem=args["issuer_private_key_pem"]),
            parent=self,
        )
        leaf = signed_certificate(
            name,
            args=leaf_args(args),
            profile=WORKLOAD,
            locality=args["namespace"],
            uris=[spiffe_id(args)],
            issuer=Issuer(cert_pem=intermediate.cert.cert_pem, private_key_pem=intermediate.key.private_key_pem),
            parent=self,
        )
        self.ca_cert_pem = intermediate.cert.cert_pem
        self.ca_private_key_pem = pulumi.Output.secret(intermediate.key.private_key_pem)
        self.cert_pem = leaf.cert.cert_pem
        self.private_key_pem = pulumi.Output.secret(leaf.key.private_key_pem)
        self.cert_chain_pem = pulumi.Output.all(self.cert_pem, self.ca_cert_pem, args["issuer_cert_pem"]).apply(
            pem_bundle
        )
        self.not_after = leaf.cert.validity_end_time
        self.renewal_opens = renewal_opens(self.not_after, renew_before_hours(leaf_args(args)))
        self.files = published_files(
            {
                "key.pem": self.private_key_pem,
                "workload-cert.pem": self.cert_pem,
                "workload-cert-chain.pem": self.cert_chain_pem,
                "root-cert.pem": trust_bundle(args["trusted_root_pems"]),
                "ca-cert.pem": self.ca_cert_pem,
                "ca-key.pem": self.ca_private_key_pem,
            }
        )
        register_declared_outputs(self)


def leaf_args(args: WorkloadCertsArgs) -> IssuedCertificateArgs:
    """The leaf takes the intermediate's organization and key type, and its own CN and days."""
    leaf = IssuedCertificateArgs(
        organization=args["organization"],
        common_name=args["workload_common_name"],
        validity_days=args["workload_validity_days"],
        key_algorithm=args["key_algorithm"],
    )
    if "rsa_bits" in args:
        leaf["rsa_bits"] = args["rsa_bits"]
    if "ecdsa_curve" in args:
        leaf["ecdsa_curve"] = args["ecdsa_curve"]
    if "workload_renew_before_hours" in args:
        leaf["renew_before_hours"] = args["workload_renew_before_hours"]
    return leaf


def spiffe_id(args: WorkloadCertsArgs) -> pulumi.Output[str]:
    return pulumi.Output.concat(
        "spiffe://", args["trust_domain"], "/ns/", args["namespace"], "/sa/", args["service_account"]
    )


def workload_outputs(workloads: Mapping[str, WorkloadCerts]) -> pulumi.Output[dict[str, Any]]:
    """Each namespace's certificates and dates, as a plain output (the keys stay apart, secret)."""
    return pulumi.Output.from_input(
        {
            namespace: {
                "certPem": certs.cert_pem,
                "certChainPem": certs.cert_chain_pem,
                "caCertPem": certs.ca_cert_pem,
                "notAfter": certs.not_after,
                "renewalWindowOpens": certs.renewal_opens,
            }
            for namespace, certs in workloads.items()
        }
    )
