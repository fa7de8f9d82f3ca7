"""The PKI half of a split layout: the root, and each cluster's intermediate signed from the CSR its own
cluster stack (MeshMember) recorded. The root key stays in this stack; no key of a cluster's comes here.

Each run reads every cluster stack's MeshMember record (its CSR), checks the request is exactly the
intermediate that cluster would get in a single stack, signs it, and records only certificates.
"""

from collections.abc import Mapping
from datetime import datetime
from functools import partial
from typing import Any, TypedDict

import pulumi

from istio_ca.certificate import pem_bundle, signed_request
from istio_ca.cluster_trust import ClusterTrust, recorded_roots
from istio_ca.component_args import certificate_args, root_ca_args, root_settings_output, workload_certs_args
from istio_ca.config import parse_settings
from istio_ca.csr_checks import ExpectedRequest, check_request
from istio_ca.expiry import refuse_an_expired_root
from istio_ca.file_export import component_layout, export_when_applied
from istio_ca.outputs import register_declared_outputs
from istio_ca.profiles import INTERMEDIATE_CA
from istio_ca.root_ca import RootCA
from istio_ca.rotation import (
    RootRotationState,
    next_rotation_state,
    refuse_a_changed_rotation,
    warn_of_changed_root_settings,
)
from istio_ca.rotation_gate import phase_to_apply
from istio_ca.settings import StackSettings
from istio_ca.stack_exchange import ExchangeError, read_exchanges, text_at
from istio_ca.stack_state import component_record, descendants, qualified_type, read_last_resources
from istio_ca.validation import ConfigError
from istio_ca.workload_certs import WorkloadCerts, workload_outputs

MESH_PKI_TYPE = "istio-ca:index:MeshPKI"
MESH_MEMBER_TYPE = "istio-ca:index:MeshMember"
MEMBER_EXCHANGE = "istioCaMember"
"""The stack output a cluster stack exports its MeshMember's `exchange` as (its CSR)."""
PKI_EXCHANGE = "istioCaPki"
"""The stack output the PKI stack exports its MeshPKI's `exchange` as (the certificates)."""
NOT_YET_SPLIT = ("existingRoot",)
"""Keys of a single stack's mesh that the split layout does not take yet."""


class MeshPKIArgs(TypedDict):
    """The mesh as the PKI sees it, and where each cluster's stack is."""

    mesh: Mapping[str, Any]
    """The mesh in MeshCA's keys: `root`, `intermediate`, `istioNamespace`, and `clusters` by name (with
    their own `istioNamespace` or `intermediate` where they differ); no kubeconfig: this stack reaches no
    cluster."""
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
    """Per signed cluster: `certPem`, `certChainPem` (the intermediate, then the root) and `notAfter`."""
    root_generations: pulumi.Output[dict[str, Any]]
    """The root generations and the rotation phase applied (what the next run reads)."""
    root_settings: pulumi.Output[dict[str, Any]]
    """The `root` settings the current generations were asked for."""
    workloads: pulumi.Output[dict[str, Any]]
    """Per VM namespace: `certPem`, `certChainPem`, `caCertPem`, `notAfter`, `renewalWindowOpens`. Their keys
    are made here, where they are signed, and leave only through `exportDirectory`: no cluster stack holds one."""
    exchange: pulumi.Output[dict[str, Any]]
    """What the cluster stacks read: export it as the stack output `istioCaPki`. Certificates only."""

    def __init__(self, name: str, args: MeshPKIArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        mesh, stacks = args["mesh"], dict(args["cluster_stacks"])
        for key in NOT_YET_SPLIT:
            if key in mesh:
                raise ConfigError(f"{key}: not in a split layout yet; use MeshCA (one stack) for it")
        settings = parse_settings(mesh, frozenset(stacks))
        names = [cluster.name for cluster in settings.clusters]
        if sorted(names) != sorted(stacks):
            raise ConfigError(f"cluster_stacks: {sorted(stacks)} must name each of the clusters {sorted(names)}")
        for cluster in settings.clusters:
            if cluster.kubeconfig is not None:
                raise ConfigError(f"clusters: {cluster.name!r} has a kubeconfig; the PKI stack reaches no cluster")
        # Every request is read and checked before the component registers: a refusal changes nothing.
        requests: dict[str, str] = {}
        held: dict[str, ClusterTrust] = {}
        records = read_exchanges([stacks[cluster.name] for cluster in settings.clusters], MEMBER_EXCHANGE)
        for cluster, record in zip(settings.clusters, records, strict=True):
            stack = stacks[cluster.name]
            where = f"stack {stack}, output {MEMBER_EXCHANGE}"
            if record is None:
                pulumi.log.warn(f"{cluster.name}: stack {stack} has not run yet: run it, then this stack again")
                continue
            if record.get("cluster") != cluster.name:
                raise ExchangeError(f"{where}: it is cluster {record.get('cluster')!r}'s, not {cluster.name!r}'s")
            csr = text_at(record, ("csrPem",), where)
            trust = record.get("trust") or {}
            if trust.get("trusted"):
                held[cluster.name] = ClusterTrust(
                    trusted=tuple(trust["trusted"]),
                    issuer=trust.get("issuer"),
                    issued_at=datetime.fromisoformat(trust["issuedAt"]) if trust.get("issuedAt") else None,
                    live=False,
                )
            check_request(
                csr,
                ExpectedRequest(
                    organization=cluster.intermediate.organization,
                    common_name=cluster.intermediate.common_name,
                    locality=cluster.name,
                    dns_names=cluster.dns_names,
                    key=cluster.intermediate.key,
                ),
                f"{where}.csrPem",
            )
            requests[cluster.name] = csr

        generations = _next_generations(name, opts, settings, held, stacks)

        super().__init__(MESH_PKI_TYPE, name, None, opts)
        root = RootCA("root", root_ca_args(settings.root, generations), opts=pulumi.ResourceOptions(parent=self))
        signed: dict[str, Any] = {}
        for cluster in settings.clusters:
            if cluster.name not in requests:
                continue
            cert_args = certificate_args(cluster.intermediate)
            cert = signed_request(
                cluster.name,
                requests[cluster.name],
                # mypy's strict check wants the optional `key_generation` in the ** item; keys are the member's.
                args={**cert_args, "renew_before_hours": cluster.renew_before_hours},  # type: ignore[typeddict-item]
                profile=INTERMEDIATE_CA,
                issuer=root.signer,
                parent=self,
            )
            signed[cluster.name] = {
                "certPem": cert.cert_pem,
                "certChainPem": pulumi.Output.all(cert.cert_pem, root.cert_pem).apply(pem_bundle),
                "notAfter": cert.validity_end_time,
            }
        self.root_cert_pem = root.cert_pem
        self.root_not_after = root.not_after
        self.trusted_roots_pem = root.trusted_root_pems.apply(pem_bundle)
        self.clusters = pulumi.Output.from_input(signed)
        workload_certs = {
            workload.namespace: WorkloadCerts(
                workload.namespace, workload_certs_args(workload, root), opts=pulumi.ResourceOptions(parent=root)
            )
            for workload in settings.workloads
        }
        if settings.export_directory is not None:
            # The VMs' files and the trust bundle; each cluster stack exports its own cluster's files.
            export_when_applied(
                settings.export_directory,
                root.trusted_root_pems,
                [certs.files.apply(partial(component_layout, ns)) for ns, certs in workload_certs.items()],
                applied=[],
            )
        self.workloads = workload_outputs(workload_certs)
        self.root_generations = pulumi.Output.from_input(generations.to_output())
        self.root_settings = pulumi.Output.from_input(root_settings_output(settings.root))
        self.exchange = pulumi.Output.all(
            rootCertPem=self.root_cert_pem, trustedRootsPem=self.trusted_roots_pem, clusters=self.clusters
        )
        register_declared_outputs(self)


def _next_generations(
    name: str,
    opts: pulumi.ResourceOptions | None,
    settings: StackSettings,
    held: Mapping[str, ClusterTrust],
    stacks: Mapping[str, str],
) -> RootRotationState:
    """The root generations after this run: a rotation's phase goes on only once every cluster stack has
    written the one before (the fingerprints it exports), by MeshCA's gate rules."""
    resources = read_last_resources()
    record = component_record(resources, qualified_type(MESH_PKI_TYPE, opts.parent if opts else None), name)
    urn, last = record if record is not None else ("", {})
    applied = RootRotationState.from_output(last.get("root_generations"))
    rotation = settings.root_rotation
    same_key = rotation.same_key if rotation else False
    wanted_settings = root_settings_output(settings.root)
    refuse_a_changed_rotation(applied, same_key if rotation else None, last.get("root_settings"), wanted_settings)
    recorded = recorded_roots(descendants(resources, urn), "root", applied.trusted)
    catch_up = {cluster: f"run stack {stack}, then this one" for cluster, stack in stacks.items()}
    wanted = phase_to_apply(applied, rotation, recorded, held, catch_up)
    refuse_an_expired_root(last.get("root_not_after"), rotating=rotation is not None)
    warn_of_changed_root_settings(last.get("root_settings"), wanted_settings, rotation is not None)
    return next_rotation_state(applied, wanted, same_key=same_key)
