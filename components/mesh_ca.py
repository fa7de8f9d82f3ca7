"""A whole mesh's CA in one component: the root (made here or adopted, in generations), each cluster's
intermediate and `cacerts`, the workload certificates, and every rule that keeps a re-run safe.

Before any resource, MeshCA reads what it applied last time from its own record in the state (its
registered outputs, through the engine's `readStackResourceOutputs`) and what each cluster's `cacerts`
holds now. From those it refuses what would break the mesh (a skipped phase, a re-rooted cluster, an
adopted root dropped) and holds a rotation at the phase the slowest cluster has applied. It needs no
stack outputs of any name, so a host stack composes it as it is.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, NotRequired, TypedDict

import pulumi

from istio_ca.cacerts import stack_owner
from istio_ca.certificate import Root, pem_bundle
from istio_ca.cluster_ca import ClusterCA, HostCluster
from istio_ca.cluster_renames import renamed_from
from istio_ca.cluster_trust import (
    fingerprints,
    read_live_cacerts,
    recorded_roots,
    refuse_a_missing_namespace,
    refuse_to_re_root,
    refuse_two_entries_for_one_cluster,
    trust_by_cluster,
)
from istio_ca.component_args import (
    cluster_ca_args,
    existing_root_args,
    root_ca_args,
    root_settings_output,
    workload_certs_args,
)
from istio_ca.config import parse_settings, refuse_a_lowered_key_generation
from istio_ca.existing_root import ExistingRoot, recorded_sha256
from istio_ca.expiry import refuse_an_expired_root, warn_of_due_certificates, warn_when_the_root_ends_first
from istio_ca.file_export import component_layout, export_when_applied, protect_directory
from istio_ca.outputs import register_declared_outputs
from istio_ca.root_ca import RootCA
from istio_ca.rotation import (
    RootRotationState,
    next_rotation_state,
    refuse_a_changed_rotation,
    refuse_to_drop_an_adopted_root,
    warn_of_changed_root_settings,
)
from istio_ca.rotation_gate import held_phase_output, phase_to_apply, remind_to_apply_rendered_clusters
from istio_ca.settings import RootFromCluster, RootFromConfig
from istio_ca.stack_state import component_record, descendants, qualified_type, read_last_outputs, read_last_resources
from istio_ca.validation import ConfigError
from istio_ca.workload_certs import WorkloadCerts, workload_outputs

MESH_CA_TYPE = "istio-ca:index:MeshCA"


class MeshCAArgs(TypedDict):
    """What the mesh is, and how the host stack reaches its clusters."""

    mesh: Mapping[str, Any]
    """The mesh, in the keys of the README's config table (what the program reads as `istio-ca:` config):
    `clusters` (required), `root`, `intermediate`, `workloads`, `existingRoot`, `rootRotation`, ..."""
    host_clusters: NotRequired[Mapping[str, HostCluster]]
    """Clusters written through a Kubernetes provider of the host stack's, by cluster name; their
    entries in `mesh` need no kubeconfig."""


@dataclass(frozen=True)
class Memory:
    """What the mesh applied on its last run: the only facts about the past it relies on besides the clusters."""

    root_generations: Mapping[str, Any] | None = None
    root_settings: Mapping[str, Any] | None = None
    adopted_root: Mapping[str, str] | None = None
    root_not_after: str | None = None
    clusters: Mapping[str, Any] = field(default_factory=dict)
    workloads: Mapping[str, Any] = field(default_factory=dict)

    @staticmethod
    def of_component(outputs: Mapping[str, Any]) -> "Memory":
        """From the outputs MeshCA registered (its declared output names)."""
        return Memory(
            root_generations=outputs.get("root_generations"),
            root_settings=outputs.get("root_settings"),
            adopted_root=outputs.get("adopted_root"),
            root_not_after=outputs.get("root_not_after"),
            clusters=outputs.get("clusters") or {},
            workloads=outputs.get("workloads") or {},
        )

    @staticmethod
    def of_program_outputs(outputs: Mapping[str, Any]) -> "Memory":
        """From the stack outputs of the program before MeshCA existed (istio-ca 0.2 and older), for its first run."""
        return Memory.of_component({field: outputs.get(name) for field, name in PROGRAM_OUTPUTS.items()})


PROGRAM_OUTPUTS = {
    "root_generations": "rootGenerations",
    "root_settings": "rootSettings",
    "adopted_root": "adoptedRoot",
    "root_not_after": "rootNotAfter",
    "clusters": "clusters",
    "workloads": "workloads",
}
"""MeshCA's outputs -> the stack outputs the program exported them as, before MeshCA existed."""


class MeshCA(pulumi.ComponentResource):
    """A multi-cluster mesh's shared root of trust: a root CA, per cluster an intermediate in `cacerts`,
    per VM namespace its workload certificates, and root rotations walked phase by phase."""

    root_cert_pem: pulumi.Output[str]
    """The signing root's certificate, PEM."""
    root_not_after: pulumi.Output[str]
    """The signing root's NotAfter, RFC 3339."""
    trusted_roots_pem: pulumi.Output[str]
    """Every trusted root, oldest first: what each cluster's `root-cert.pem` holds."""
    root_generations: pulumi.Output[dict[str, Any]]
    """The root generations (`trusted`, `signing`, `keyOf`, `adopted`) and the rotation `phase` applied."""
    root_settings: pulumi.Output[dict[str, Any]]
    """The `root` settings the current generations were asked for (a change applies to the next one)."""
    adopted_root: pulumi.Output[dict[str, str] | None]
    """The root adopted with `existingRoot.fromCluster`: that cluster and the root's SHA-256; else None."""
    clusters: pulumi.Output[dict[str, Any]]
    """Per cluster: `certPem`, `certChainPem`, `notAfter`, `renewalWindowOpens`, `keyGeneration`, and
    `rootPhase`, the rotation phase its `cacerts` holds."""
    workloads: pulumi.Output[dict[str, Any]]
    """Per VM namespace: `certPem`, `certChainPem`, `caCertPem`, `notAfter`, `renewalWindowOpens`."""
    workload_keys: pulumi.Output[dict[str, Any]]
    """Per VM namespace: `keyPem` and `caKeyPem`; always a Pulumi secret."""

    def __init__(self, name: str, args: MeshCAArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        # Every check comes before the component registers: a refused run leaves the state as it was.
        host = dict(args.get("host_clusters") or {})
        settings = parse_settings(args["mesh"], frozenset(host))
        strangers = sorted(set(host) - {cluster.name for cluster in settings.clusters})
        if strangers:
            raise ConfigError(f"host_clusters: {strangers} are not among the clusters of the mesh")
        resources, memory = _last_run(name, opts)

        applied = RootRotationState.from_output(memory.root_generations)
        rotation = settings.root_rotation
        same_key = rotation.same_key if rotation else False
        if settings.existing_root is None:
            refuse_to_drop_an_adopted_root(applied)
        refuse_a_changed_rotation(
            applied, rotation.same_key if rotation else None, memory.root_settings, root_settings_output(settings.root)
        )
        refuse_a_lowered_key_generation(memory.clusters, settings.clusters)
        # What each cluster's cacerts holds now, and what the state recorded, before any resource: the checks
        # below must stop a run before anything changes, with or without a preview.
        owner = stack_owner()
        live_cacerts = read_live_cacerts(settings.clusters, owner)
        # A host cluster known by its provider alone is read as recorded, like a cluster that is down.
        live_cacerts.update({c.name: None for c in settings.clusters if c.name in host and c.kubeconfig is None})
        recorded = recorded_roots(resources, "root", applied.trusted)
        known_roots = list(recorded.values())
        if isinstance(settings.existing_root, RootFromConfig):
            known_roots.append(settings.existing_root.cert_pem)
        refuse_two_entries_for_one_cluster(settings.clusters, live_cacerts)
        refuse_a_missing_namespace(settings.clusters, live_cacerts)
        adopted_from_cluster = settings.existing_root if isinstance(settings.existing_root, RootFromCluster) else None
        refuse_to_re_root(
            settings.clusters,
            live_cacerts,
            None if adopted_from_cluster is not None and not known_roots else known_roots,
            owner,
        )
        held_before = trust_by_cluster(live_cacerts, resources)
        # Each phase waits for every cluster to hold the one before, as its cacerts shows (never this run's).
        wanted_phase = phase_to_apply(applied, rotation, recorded, held_before)
        remind_to_apply_rendered_clusters(
            wanted_phase, [c.name for c in settings.clusters if c.render_directory is not None]
        )

        if settings.existing_root is None:
            refuse_an_expired_root(memory.root_not_after, rotating=rotation is not None)
            generations = next_rotation_state(applied, wanted_phase, same_key=same_key)
            warn_of_changed_root_settings(
                memory.root_settings, root_settings_output(settings.root), rotation is not None
            )
        else:
            generations = replace(next_rotation_state(applied, wanted_phase, same_key=same_key), adopted=True)

        super().__init__(MESH_CA_TYPE, name, None, opts)
        # The root keeps the name and the parent's place it had in the program's stacks, before this component.
        root_opts = pulumi.ResourceOptions(parent=self, aliases=[pulumi.Alias(parent=pulumi.ROOT_STACK_RESOURCE)])
        root: Root
        if settings.existing_root is None:
            root_opts = pulumi.ResourceOptions.merge(
                root_opts,
                pulumi.ResourceOptions(
                    aliases=[pulumi.Alias(parent=pulumi.ROOT_STACK_RESOURCE, type_="istio-ca:index:ExistingRoot")]
                ),
            )
            root = RootCA("root", root_ca_args(settings.root, generations), opts=root_opts)
        else:
            adopted_sha256 = None
            if adopted_from_cluster is not None:
                # The root adopted from this cluster before: istiod regenerating `istio-ca-secret` must not
                # silently re-root the mesh.
                adopted_sha256 = recorded_sha256(adopted_from_cluster.cluster.name, memory.adopted_root)
            root = ExistingRoot(
                "root",
                existing_root_args(
                    settings.existing_root,
                    settings.longest_signed_days,
                    adopted_sha256,
                    generations,
                    settings.root,
                    host.get(adopted_from_cluster.cluster.name) if adopted_from_cluster is not None else None,
                ),
                opts=root_opts,
            )

        if not pulumi.runtime.is_dry_run():
            for cluster in settings.clusters:
                if cluster.render_directory is not None:
                    protect_directory(Path(cluster.render_directory))
        renamed = renamed_from(settings.clusters, resources)
        cluster_cas = {
            cluster.name: ClusterCA(
                cluster.name,
                cluster_ca_args(cluster, root, renamed.get(cluster.name), host.get(cluster.name)),
                opts=pulumi.ResourceOptions(parent=root),
            )
            for cluster in settings.clusters
        }
        workload_certs = {
            workload.namespace: WorkloadCerts(
                workload.namespace, workload_certs_args(workload, root), opts=pulumi.ResourceOptions(parent=root)
            )
            for workload in settings.workloads
        }
        warn_of_due_certificates(
            memory.clusters,
            {cluster.name: cluster.renew_before_hours for cluster in settings.clusters},
            "the intermediate CA of {}",
        )
        warn_of_due_certificates(
            memory.workloads,
            {workload.namespace: workload.renew_before_hours for workload in settings.workloads},
            "the workload certificate of {}",
        )
        for cluster in settings.clusters:
            warn_when_the_root_ends_first(
                root.not_after,
                f"the intermediate CA of {cluster.name}",
                cluster_cas[cluster.name].renewal_opens,
                cluster.intermediate.validity_days,
            )
        if settings.export_directory is not None:
            export_when_applied(
                settings.export_directory,
                root.trusted_root_pems,
                [ca.cacerts.apply(partial(component_layout, name)) for name, ca in cluster_cas.items()]
                + [certs.files.apply(partial(component_layout, ns)) for ns, certs in workload_certs.items()],
                applied=[ca.cacerts_uid for ca in cluster_cas.values()],
            )

        self.root_cert_pem = pulumi.Output.from_input(root.signer.cert_pem)
        self.root_not_after = root.not_after
        self.trusted_roots_pem = root.trusted_root_pems.apply(pem_bundle)
        self.root_generations = pulumi.Output.from_input(generations.to_output())
        self.root_settings = pulumi.Output.from_input(root_settings_output(settings.root))
        self.adopted_root = pulumi.Output.from_input(None)
        if isinstance(root, ExistingRoot) and adopted_from_cluster is not None:
            self.adopted_root = pulumi.Output.all(fromCluster=adopted_from_cluster.cluster.name, sha256=root.sha256)
        root_fingerprints = root.trusted_root_pems.apply(fingerprints)
        key_generations = {cluster.name: cluster.key_generation for cluster in settings.clusters}
        self.clusters = pulumi.Output.from_input(
            {
                cluster: {
                    "certPem": ca.cert_pem,
                    "certChainPem": ca.cert_chain_pem,
                    "notAfter": ca.not_after,
                    "renewalWindowOpens": ca.renewal_opens,
                    "keyGeneration": key_generations[cluster],
                    # What its cacerts holds once written: a cluster that failed keeps its last recorded phase.
                    "rootPhase": held_phase_output(
                        ca.applied_roots, held_before.get(cluster), generations, root_fingerprints
                    ),
                }
                for cluster, ca in cluster_cas.items()
            }
        )
        self.workloads = workload_outputs(workload_certs)
        # Kept apart so the certificates above stay readable: a secret anywhere hides the whole output.
        self.workload_keys = pulumi.Output.secret(
            {
                namespace: {"keyPem": certs.private_key_pem, "caKeyPem": certs.ca_private_key_pem}
                for namespace, certs in workload_certs.items()
            }
        )
        self.cluster_cas = cluster_cas
        """Each cluster's ClusterCA, by name."""
        self.workload_certs = workload_certs
        """Each VM namespace's WorkloadCerts."""
        self.adopts_from_cluster = adopted_from_cluster is not None
        """Whether the root is adopted from a cluster (then `adopted_root` is set)."""
        register_declared_outputs(self)


def _last_run(name: str, opts: pulumi.ResourceOptions | None) -> tuple[dict[str, Any], Memory]:
    """This mesh's resources as last recorded, and what it applied then.

    Its own record is its component's entry in the state. A stack the program made before MeshCA has
    none: then its memory is the program's stack outputs, and its resources are the whole stack's.
    """
    resources = read_last_resources()
    record = component_record(resources, qualified_type(MESH_CA_TYPE, opts.parent if opts else None), name)
    if record is not None:
        urn, outputs = record
        return descendants(resources, urn), Memory.of_component(outputs)
    outputs = read_last_outputs()
    if "rootGenerations" in outputs:
        return resources, Memory.of_program_outputs(outputs)
    return {}, Memory()
