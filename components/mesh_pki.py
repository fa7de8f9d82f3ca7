"""The PKI half of a split layout: the root, and each cluster's intermediate signed from the CSR its own
cluster stack (MeshMember) recorded. The root key stays in this stack; no key of a cluster's comes here.

Each run reads every cluster stack's MeshMember record (its CSR), checks the request is exactly the
intermediate that cluster would get in a single stack, signs it, and records only certificates.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, TypedDict

import pulumi

from istio_ca import mesh_root
from istio_ca.certificate import Root, pem_bundle, signed_request
from istio_ca.certificate_checks import check_issued
from istio_ca.component_args import certificate_args
from istio_ca.config import parse_settings
from istio_ca.config_schema import MeshConfig
from istio_ca.expiry import renewal_opens
from istio_ca.file_export import component_layout, export_when_applied
from istio_ca.member_reports import expected_request, issued_certificates, read_member_reports, validity
from istio_ca.outputs import register_declared_outputs
from istio_ca.plain_values import plain, plain_mesh
from istio_ca.profiles import INTERMEDIATE_CA
from istio_ca.settings import ClusterSettings, StackSettings
from istio_ca.validation import ConfigError
from istio_ca.workload_certs import workload_outputs

MESH_PKI_TYPE = "istio-ca:index:MeshPKI"
MESH_MEMBER_TYPE = "istio-ca:index:MeshMember"
PKI_EXCHANGE = "istioCaPki"
"""The stack output the PKI stack exports its MeshPKI's `exchange` as (the certificates)."""
PKI_ONLY = ("root", "rootRotation", "workloads", "existingRoot")
"""Keys of the mesh that belong to the PKI stack: a cluster stack refuses them."""


@dataclass(frozen=True)
class _Signed:
    """A certificate this PKI signed, checked as issued before anything exports it."""

    cert_pem: pulumi.Output[str]
    not_after: pulumi.Output[str]


class MeshPKIArgs(TypedDict):
    """The mesh as the PKI sees it, and where each cluster's stack is."""

    mesh: MeshConfig
    """The mesh in MeshCA's keys: `root` or `existingRoot` (`certPem` and `keyPem`), `rootRotation`,
    `intermediate`, `istioNamespace`, `workloads`, and `clusters` by name (with their own `istioNamespace`
    or `intermediate` where they differ); no kubeconfig: this stack reaches no cluster."""
    cluster_stacks: Mapping[str, str]
    """Each cluster's stack, `organization/project/stack`, whose MeshMember of the cluster's name made its
    key, and which exports that MeshMember's `exchange` as `istioCaMember`."""


class MeshPKI(pulumi.ComponentResource):
    """The root of a split layout and the intermediates it signs for the cluster stacks."""

    root_cert_pem: pulumi.Output[str]
    """The signing root's certificate, PEM."""
    root_not_after: pulumi.Output[str]
    """The signing root's NotAfter, RFC 3339: an ended root is never re-issued implicitly."""
    trusted_roots_pem: pulumi.Output[str]
    """Every trusted root, oldest first: each cluster's `root-cert.pem`."""
    clusters: pulumi.Output[dict[str, Any]]
    """Per signed cluster: `certPem`, `certChainPem` (the intermediate, then the root), `notAfter`, and
    `issued`, each certificate issued to it that has not ended (NotBefore -> NotAfter): a cluster stack's
    report of its `cacerts` counts only for one of them."""
    root_generations: pulumi.Output[dict[str, Any]]
    """The root generations and the rotation phase applied (what the next run reads)."""
    root_settings: pulumi.Output[dict[str, Any]]
    """The `root` settings the current generations were asked for."""
    workloads: pulumi.Output[dict[str, Any]]
    """Per VM namespace: `certPem`, `certChainPem`, `caCertPem`, `notAfter`, `renewalWindowOpens`. Their keys
    are made here, where they are signed, and leave only through `exportDirectory`: no cluster stack holds one."""
    exchange: pulumi.Output[dict[str, Any]]
    """What the cluster stacks read: export it as the stack output `istioCaPki`. Certificates only, and
    `rootPhase`, the rotation phase applied (None outside a rotation), for the driver (istio_ca.fleet)."""

    def __init__(self, name: str, args: MeshPKIArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        # Every request and report is read and checked before the component registers: a refusal changes nothing.
        stacks: dict[str, str] = plain(args["cluster_stacks"], "cluster_stacks")
        settings = _pki_settings(plain_mesh(args["mesh"]), stacks)
        last = mesh_root.last_run(MESH_PKI_TYPE, name, opts)
        mesh_root.refuse_unsafe_root_changes(last, settings)
        issued = issued_certificates(sorted(stacks), last.memory.clusters, last.resources, MESH_PKI_TYPE)
        reports = read_member_reports(
            settings.clusters,
            stacks,
            rotating=last.applied.rotating,
            roots=last.recorded_roots(),
            issued=issued,
        )
        catch_up = {cluster: f"run stack {stack}, then this one" for cluster, stack in stacks.items()}
        generations = mesh_root.plan_generations(last, settings, reports.held, reports.unreported, catch_up)

        super().__init__(MESH_PKI_TYPE, name, None, opts)
        # A root made here after a rotation retired the adopted one keeps the adopted root's name and place.
        root = mesh_root.make_root(self, settings, generations, last, {}, adopted_aliases=[_ADOPTED_ROOT])
        signed = {
            cluster.name: self._sign(cluster, reports.requests[cluster.name], stacks[cluster.name], root)
            for cluster in settings.clusters
            if cluster.name in reports.requests
        }
        workload_certs = mesh_root.make_workloads(settings, root)
        mesh_root.warn_of_renewals_due(last, settings)
        hours = {cluster.name: cluster.renew_before_hours for cluster in settings.clusters}
        opens = {name: renewal_opens(cert.not_after, hours[name]) for name, cert in signed.items()}
        mesh_root.warn_when_the_root_ends_first(root, settings, opens)
        if settings.export_directory is not None:
            # The VMs' files and the trust bundle; each cluster stack exports its own cluster's files.
            export_when_applied(
                settings.export_directory,
                root.trusted_root_pems,
                [certs.files.apply(partial(component_layout, ns)) for ns, certs in workload_certs.items()],
                applied=[],
            )
        mesh_root.publish_root(self, root, generations, settings)
        self.clusters = pulumi.Output.from_input(
            {
                cluster: {
                    "certPem": cert.cert_pem,
                    "certChainPem": pulumi.Output.all(cert.cert_pem, self.root_cert_pem).apply(pem_bundle),
                    "notAfter": cert.not_after,
                    "issued": cert.cert_pem.apply(partial(_issued_with, issued.get(cluster, {}))),
                }
                for cluster, cert in signed.items()
            }
        )
        self.workloads = workload_outputs(workload_certs)
        self.exchange = pulumi.Output.all(
            rootCertPem=self.root_cert_pem,
            trustedRootsPem=self.trusted_roots_pem,
            clusters=self.clusters,
            rootPhase=generations.phase,
        )
        register_declared_outputs(self)

    def _sign(self, cluster: ClusterSettings, request_pem: str, stack: str, root: Root) -> _Signed:
        """The cluster's intermediate, from its checked request; exported only once it is checked as issued."""
        cert_args = certificate_args(cluster.intermediate)
        cert = signed_request(
            cluster.name,
            request_pem,
            # mypy's strict check wants the optional `key_generation` in the ** item; keys are the member's.
            args={**cert_args, "renew_before_hours": cluster.renew_before_hours},  # type: ignore[typeddict-item]
            profile=INTERMEDIATE_CA,
            issuer=root.signer,
            parent=self,
        )
        hours = cluster.intermediate.validity_days * 24

        def checked(values: list[str]) -> str:
            cert_pem, issuer_pem = values
            check_issued(
                cert_pem,
                issuer_pem=issuer_pem,
                request_pem=request_pem,
                expected=expected_request(cluster),
                profile=INTERMEDIATE_CA,
                validity_hours=hours,
                where=f"{cluster.name}: the certificate signed for stack {stack}'s request",
            )
            return cert_pem

        cert_pem = pulumi.Output.all(cert.cert_pem, root.signer.cert_pem).apply(checked)
        return _Signed(cert_pem=cert_pem, not_after=cert.validity_end_time)


_ADOPTED_ROOT = pulumi.Alias(type_="istio-ca:index:ExistingRoot")


def _pki_settings(mesh: Mapping[str, Any], stacks: Mapping[str, str]) -> StackSettings:
    """The mesh as the PKI stack takes it: every cluster with its stack, none reached from here."""
    existing = mesh.get("existingRoot")
    if isinstance(existing, Mapping) and "fromCluster" in existing:
        raise ConfigError(
            "existingRoot.fromCluster: the PKI stack reaches no cluster; give the root as existingRoot.certPem "
            "and existingRoot.keyPem (a secret) instead"
        )
    settings = parse_settings(mesh, frozenset(stacks))
    names = [cluster.name for cluster in settings.clusters]
    if sorted(names) != sorted(stacks):
        raise ConfigError(f"cluster_stacks: {sorted(stacks)} must name each of the clusters {sorted(names)}")
    for cluster in settings.clusters:
        if cluster.kubeconfig is not None:
            raise ConfigError(f"clusters: {cluster.name!r} has a kubeconfig; the PKI stack reaches no cluster")
    return settings


def _issued_with(issued: Mapping[str, str], cert_pem: str) -> dict[str, str]:
    """The certificates issued to a cluster that have not ended, this run's included."""
    return {**issued, **validity(cert_pem)}
