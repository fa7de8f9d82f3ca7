"""The mesh's root, in either layout: MeshCA (one stack) and MeshPKI (the split layout's PKI stack) call
this module for everything they do about the root, so both keep the same promises.

Before the component registers: what it applied on its last run (`LastRun`, its own record in the
state), the refusals that protect the root (`refuse_unsafe_root_changes`), and the root generations
this run makes with the rotation phase it applies (`plan_generations`). After: the root's resources
(`make_root`), the VM workloads it signs (`make_workloads`), and the root's outputs (`publish_root`).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import pulumi

from istio_ca import expiry
from istio_ca.certificate import Root, pem_bundle
from istio_ca.cluster_ca import HostCluster
from istio_ca.cluster_trust import ClusterTrust, recorded_roots
from istio_ca.component_args import existing_root_args, root_ca_args, root_settings_output, workload_certs_args
from istio_ca.existing_root import ExistingRoot, recorded_sha256
from istio_ca.expiry import refuse_an_expired_root, warn_of_due_certificates
from istio_ca.root_ca import RootCA
from istio_ca.rotation import (
    RootRotationState,
    next_rotation_state,
    refuse_a_changed_rotation,
    refuse_to_drop_an_adopted_root,
    warn_of_changed_root_settings,
)
from istio_ca.rotation_gate import phase_to_apply, remind_to_apply_rendered_clusters
from istio_ca.settings import RootFromCluster, StackSettings
from istio_ca.stack_state import component_record, descendants, qualified_type, read_last_outputs, read_last_resources
from istio_ca.workload_certs import WorkloadCerts

MeshRoot = RootCA | ExistingRoot
"""The root's resource: made here, or adopted."""
ROOT_NAME = "root"
"""The root's resource name beneath the component, in both layouts."""


@dataclass(frozen=True)
class Memory:
    """What the component applied on its last run: the only facts about the past it relies on besides the clusters."""

    root_generations: Mapping[str, Any] | None = None
    root_settings: Mapping[str, Any] | None = None
    adopted_root: Mapping[str, str] | None = None
    root_not_after: str | None = None
    clusters: Mapping[str, Any] = field(default_factory=dict)
    workloads: Mapping[str, Any] = field(default_factory=dict)

    @staticmethod
    def of_component(outputs: Mapping[str, Any]) -> "Memory":
        """From the outputs the component registered (its declared output names)."""
        return Memory(
            root_generations=outputs.get("root_generations"),
            root_settings=outputs.get("root_settings"),
            adopted_root=outputs.get("adopted_root"),
            root_not_after=outputs.get("root_not_after"),
            clusters=outputs.get("clusters") or {},
            workloads=outputs.get("workloads") or {},
        )


@dataclass(frozen=True)
class LastRun:
    """The component's resources as its last run recorded them, by URN, and what it applied then."""

    resources: Mapping[str, Any] = field(default_factory=dict)
    memory: Memory = field(default_factory=Memory)

    @property
    def applied(self) -> RootRotationState:
        return RootRotationState.from_output(self.memory.root_generations)

    def recorded_roots(self) -> dict[int, str]:
        """Each trusted generation's root certificate (PEM), as the state recorded it."""
        return recorded_roots(self.resources, ROOT_NAME, self.applied.trusted)


def last_run(
    type_token: str, name: str, opts: pulumi.ResourceOptions | None, earlier_outputs: Mapping[str, str] | None = None
) -> LastRun:
    """The component's own record in the state (its registered outputs and the resources beneath it).

    `earlier_outputs`: where a stack made before the component existed kept the same facts (output ->
    stack output name); read, once, when the component has no record yet. Its resources are then the
    whole stack's.
    """
    resources = read_last_resources()
    record = component_record(resources, qualified_type(type_token, opts.parent if opts else None), name)
    if record is not None:
        urn, outputs = record
        return LastRun(descendants(resources, urn), Memory.of_component(outputs))
    if earlier_outputs:
        outputs = read_last_outputs()
        if earlier_outputs.get("root_generations") in outputs:
            return LastRun(resources, Memory.of_component({k: outputs.get(v) for k, v in earlier_outputs.items()}))
    return LastRun()


def refuse_unsafe_root_changes(last: LastRun, settings: StackSettings) -> None:
    """An adopted root dropped while it is trusted, or root settings changed half-way through a rotation."""
    rotation = settings.root_rotation
    if settings.existing_root is None:
        refuse_to_drop_an_adopted_root(last.applied)
    refuse_a_changed_rotation(
        last.applied,
        rotation.same_key if rotation else None,
        last.memory.root_settings,
        root_settings_output(settings.root),
    )


def plan_generations(
    last: LastRun,
    settings: StackSettings,
    held: Mapping[str, ClusterTrust],
    unreported: Mapping[str, str] | None = None,
    catch_up: Mapping[str, str] | None = None,
) -> RootRotationState:
    """The root generations after this run. During a rotation the phase applied waits for every cluster
    to hold the one before (`held`, what each cluster's `cacerts` holds; `unreported`: per cluster whose
    holding cannot be told, why; `catch_up`: what brings a cluster up when another stack writes its
    `cacerts`). An ended root is never re-issued implicitly."""
    applied, rotation = last.applied, settings.root_rotation
    phase = phase_to_apply(applied, rotation, last.recorded_roots(), held, unreported, catch_up)
    remind_to_apply_rendered_clusters(phase, [c.name for c in settings.clusters if c.render_directory is not None])
    same_key = rotation.same_key if rotation else False
    if settings.existing_root is not None:
        return replace(next_rotation_state(applied, phase, same_key=same_key), adopted=True)
    refuse_an_expired_root(last.memory.root_not_after, rotating=rotation is not None)
    generations = next_rotation_state(applied, phase, same_key=same_key)
    warn_of_changed_root_settings(last.memory.root_settings, root_settings_output(settings.root), rotation is not None)
    return generations


def make_root(
    parent: pulumi.ComponentResource,
    settings: StackSettings,
    generations: RootRotationState,
    last: LastRun,
    host: Mapping[str, HostCluster],
    aliases: Sequence[pulumi.Alias] = (),
    adopted_aliases: Sequence[pulumi.Alias] = (),
) -> MeshRoot:
    """The root generations, made here (RootCA) or adopted (ExistingRoot), as the component's `root`.
    `aliases`: where the root stood before, either kind; `adopted_aliases`: where a root made here stood
    while the mesh still ran on the adopted one (the root keeps its name once existingRoot is dropped)."""
    existing = settings.existing_root
    if existing is None:
        opts = pulumi.ResourceOptions(parent=parent, aliases=[*aliases, *adopted_aliases])
        return RootCA(ROOT_NAME, root_ca_args(settings.root, generations), opts=opts)
    from_cluster = existing.cluster.name if isinstance(existing, RootFromCluster) else None
    # The root adopted from that cluster before: istiod regenerating `istio-ca-secret` must not silently
    # re-root the mesh.
    adopted_sha256 = recorded_sha256(from_cluster, last.memory.adopted_root) if from_cluster else None
    args = existing_root_args(
        existing,
        settings.longest_signed_days,
        adopted_sha256,
        generations,
        settings.root,
        host.get(from_cluster) if from_cluster else None,
    )
    return ExistingRoot(ROOT_NAME, args, opts=pulumi.ResourceOptions(parent=parent, aliases=list(aliases)))


def make_workloads(settings: StackSettings, root: MeshRoot) -> dict[str, WorkloadCerts]:
    """Each VM namespace's workload certificates, signed by the root (beneath it)."""
    return {
        workload.namespace: WorkloadCerts(
            workload.namespace, workload_certs_args(workload, root), opts=pulumi.ResourceOptions(parent=root)
        )
        for workload in settings.workloads
    }


def warn_of_renewals_due(last: LastRun, settings: StackSettings) -> None:
    """Each intermediate and workload certificate the last run issued that is inside its renewal window now."""
    warn_of_due_certificates(
        last.memory.clusters,
        {cluster.name: cluster.renew_before_hours for cluster in settings.clusters},
        "the intermediate CA of {}",
    )
    warn_of_due_certificates(
        last.memory.workloads,
        {workload.namespace: workload.renew_before_hours for workload in settings.workloads},
        "the workload certificate of {}",
    )


def warn_when_the_root_ends_first(root: Root, settings: StackSettings, renewal_opens: Mapping[str, Any]) -> None:
    """Warn for each intermediate (`renewal_opens`: when each signed one's window opens, by cluster) that,
    re-issued as soon as its window opens, would outlive the root."""
    for cluster in settings.clusters:
        if cluster.name in renewal_opens:
            expiry.warn_when_the_root_ends_first(
                root.not_after,
                f"the intermediate CA of {cluster.name}",
                renewal_opens[cluster.name],
                cluster.intermediate.validity_days,
            )


class RootOutputs(Protocol):
    """The root's outputs, declared alike by both components."""

    root_cert_pem: pulumi.Output[str]
    root_not_after: pulumi.Output[str]
    trusted_roots_pem: pulumi.Output[str]
    root_generations: pulumi.Output[dict[str, Any]]
    root_settings: pulumi.Output[dict[str, Any]]


def publish_root(component: RootOutputs, root: Root, generations: RootRotationState, settings: StackSettings) -> None:
    """Set the component's root outputs: what the next run reads back, and what the clusters trust."""
    component.root_cert_pem = pulumi.Output.from_input(root.signer.cert_pem)
    component.root_not_after = root.not_after
    component.trusted_roots_pem = root.trusted_root_pems.apply(pem_bundle)
    component.root_generations = pulumi.Output.from_input(generations.to_output())
    component.root_settings = pulumi.Output.from_input(root_settings_output(settings.root))
