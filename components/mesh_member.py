"""The cluster half of a split layout: one cluster's intermediate key and CSR, made and kept in that cluster's
own stack, and its `cacerts` once the PKI stack (MeshPKI) has signed the request.

The key never leaves this stack: the PKI reads the CSR from this component's record and records the
certificate in its own; this component reads that back and writes `cacerts` only when the certificate
is for its key.
"""

from collections.abc import Mapping
from typing import Any, NotRequired, TypedDict

import pulumi
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from istio_ca.cacerts import CacertsError, stack_owner
from istio_ca.certificate import key_and_request
from istio_ca.cluster_ca import HostCluster, cacerts_secret
from istio_ca.cluster_trust import applied_roots, fingerprints, read_live_cacerts
from istio_ca.component_args import cacerts_target_args, certificate_args
from istio_ca.config import parse_settings
from istio_ca.mesh_pki import MESH_MEMBER_TYPE, NOT_YET_SPLIT, PKI_EXCHANGE
from istio_ca.outputs import published_files, register_declared_outputs
from istio_ca.pem import certificate_pem, certificates_in
from istio_ca.profiles import INTERMEDIATE_CA
from istio_ca.settings import ClusterSettings
from istio_ca.stack_exchange import read_exchange, text_at
from istio_ca.validation import ConfigError


class MeshMemberArgs(TypedDict):
    """One cluster of a split layout, and where its PKI is."""

    mesh: Mapping[str, Any]
    """The cluster in MeshCA's keys: `clusters` with this one cluster (its kubeconfig, or none with
    `host_cluster`), and `intermediate` and `istioNamespace` as the PKI stack has them."""
    pki_stack: str
    """The PKI stack, `organization/project/stack`, which exports its MeshPKI's `exchange` as `istioCaPki`."""
    host_cluster: NotRequired[HostCluster]
    """The host stack's provider for the cluster (see MeshCA)."""


class MeshMember(pulumi.ComponentResource):
    """A cluster's key and CSR, and its `cacerts` once the PKI stack signed the CSR."""

    csr_pem: pulumi.Output[str]
    """The certificate signing request of the cluster's intermediate, PEM: what the PKI stack reads."""
    applied_roots: pulumi.Output[dict[str, Any]]
    """What the written `cacerts` holds, by SHA-256 fingerprints: `trusted` and `issuer` (empty before)."""
    cacerts_uid: pulumi.Output[str]
    """The applied Secret's uid; empty until the PKI stack has signed this cluster's request."""
    exchange: pulumi.Output[dict[str, Any]]
    """What the PKI stack reads: export it as the stack output `istioCaMember`. Public values only."""

    def __init__(self, name: str, args: MeshMemberArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        mesh, host = args["mesh"], args.get("host_cluster")
        for key in NOT_YET_SPLIT:
            if key in mesh:
                raise ConfigError(f"{key}: not in a split layout yet; use MeshCA (one stack) for it")
        settings = parse_settings(mesh, frozenset([name]) if host is not None else frozenset())
        if [cluster.name for cluster in settings.clusters] != [name]:
            raise ConfigError(f"clusters: a MeshMember holds one cluster, {name!r}")
        (cluster,) = settings.clusters
        if cluster.key_generation != 1:
            raise ConfigError("clusters[0].keyGeneration: not in a split layout yet; use MeshCA (one stack) for it")
        pki_stack = args["pki_stack"]
        where = f"stack {pki_stack}, output {PKI_EXCHANGE}"
        pki = read_exchange(pki_stack, PKI_EXCHANGE)
        signed: dict[str, str] | None = None
        if pki is None or name not in (pki.get("clusters") or {}):
            pulumi.log.warn(
                f"{name}: stack {pki_stack} has not signed this cluster's request yet: run it next, then this stack"
            )
        else:
            signed = {
                "cert": text_at(pki, ("clusters", name, "certPem"), where),
                "chain": text_at(pki, ("clusters", name, "certChainPem"), where),
                "roots": text_at(pki, ("trustedRootsPem",), where),
                "issuer": text_at(pki, ("rootCertPem",), where),
            }
            refuse_a_bundle_that_skips_a_phase(cluster, signed["roots"])

        super().__init__(MESH_MEMBER_TYPE, name, None, opts)
        key, csr = key_and_request(
            name,
            # mypy's strict check wants the optional `renew_before_hours` in the ** item; the PKI renews.
            args={**certificate_args(cluster.intermediate), "key_generation": cluster.key_generation},  # type: ignore[typeddict-item]
            profile=INTERMEDIATE_CA,
            locality=name,
            dns_names=list(cluster.dns_names),
            parent=self,
        )
        self.csr_pem = csr.cert_request_pem
        self.exchange = pulumi.Output.all(cluster=name, csrPem=self.csr_pem)
        self.applied_roots = pulumi.Output.from_input({"trusted": [], "issuer": None})
        self.cacerts_uid = pulumi.Output.from_input("")
        if signed is not None:
            cert = key.public_key_pem.apply(lambda own: _for_this_key(signed["cert"], own, name, where))
            files = published_files(
                {
                    "ca-cert.pem": cert,
                    "ca-key.pem": pulumi.Output.secret(key.private_key_pem),
                    "root-cert.pem": signed["roots"],
                    "cert-chain.pem": signed["chain"],
                }
            )
            roots = [certificate_pem(root) for root in certificates_in(signed["roots"])]
            target = cacerts_target_args(cluster, signed["issuer"], roots, host)
            secret = cacerts_secret(self, name, target, opts, files, lambda part: None)
            self.cacerts_uid = secret.metadata.apply(lambda metadata: metadata.uid or "")
            self.applied_roots = pulumi.Output.unsecret(secret.data.apply(applied_roots))
        register_declared_outputs(self)


def refuse_a_bundle_that_skips_a_phase(cluster: ClusterSettings, bundle: str) -> None:
    """A `cacerts` goes from one trust bundle to one that holds it or that it holds (a rotation's phase),
    never to another: istiod would drop every workload signed under the roots it no longer trusts."""
    if cluster.kubeconfig is None:
        return
    live = read_live_cacerts([cluster], stack_owner()).get(cluster.name)
    if live is None or not live.exists:
        return
    held = set(fingerprints([certificate_pem(c) for c in certificates_in(live.files.get("root-cert.pem", ""))]))
    given = set(fingerprints([certificate_pem(c) for c in certificates_in(bundle)]))
    if held and not (held <= given or given <= held):
        raise CacertsError(
            f"{cluster.name}: the PKI stack's trust bundle ({sorted(given)}) neither holds nor is held by the one "
            f"cacerts holds now ({sorted(held)}); writing it would cut workloads off: cacerts is not written"
        )


def _for_this_key(cert_pem: str, own_public_key_pem: str, cluster: str, where: str) -> str:
    """The signed certificate, if it certifies this cluster's key; refused otherwise (a request made before)."""
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    given = cert.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    if given.decode().strip() != own_public_key_pem.strip():
        raise CacertsError(
            f"{cluster}: the certificate {where} holds is for another key than this cluster's (its request "
            "before this one); cacerts is not written: run that stack, then this one"
        )
    return cert_pem
