"""A whole mesh's CA in one component: the root (made here or adopted, in generations), each cluster's
intermediate and `cacerts`, the workload certificates, and every rule that keeps a re-run safe.

Before any resource, MeshCA reads what it applied last time from its own record in the state (its
registered outputs, through the engine's `readStackResourceOutputs`) and what each cluster's `cacerts`
holds now. From those it refuses what would break the mesh (a skipped phase, a re-rooted cluster, an
adopted root dropped) and holds a rotation at the phase the slowest cluster has applied. It needs no
stack outputs of any name, so a host stack composes it as it is.
"""

from collections.abc import Mapping
from functools import partial
from typing import Any, NotRequired, TypedDict

import pulumi

from istio_ca import mesh_root
from istio_ca.cacerts import stack_owner
from istio_ca.certificate import Root
from istio_ca.cluster_ca import ClusterCA, HostCluster
from istio_ca.cluster_renames import renamed_from
from istio_ca.cluster_trust import (
    ClusterTrust,
    fingerprints,
    read_live_cacerts,
    refuse_a_missing_namespace,
    refuse_to_re_root,
    refuse_two_entries_for_one_cluster,
    trust_by_cluster,
)
from istio_ca.component_args import cluster_ca_args
from istio_ca.config import parse_settings, refuse_a_lowered_key_generation
from istio_ca.config_schema import MeshConfig
from istio_ca.existing_root import ExistingRoot
from istio_ca.file_export import component_layout, export_when_applied, protect_render_directories
from istio_ca.outputs import register_declared_outputs
from istio_ca.plain_values import as_input, plain_mesh
from istio_ca.rotation import RootRotationState
from istio_ca.rotation_gate import held_phase_output
from istio_ca.settings import RootFromCluster, RootFromConfig, StackSettings
from istio_ca.validation import ConfigError
from istio_ca.workload_certs import workload_outputs

MESH_CA_TYPE = "istio-ca:index:MeshCA"


class MeshCAArgs(TypedDict):
    """What the mesh is, and how the host stack reaches its clusters."""

    mesh: MeshConfig
    """The mesh, in the keys of the README's config table (what the program reads as `istio-ca:` config):
    `clusters` (required), `root`, `intermediate`, `workloads`, `existingRoot`, `rootRotation`, ..."""
    host_clusters: NotRequired[Mapping[str, HostCluster]]
    """Clusters written through a Kubernetes provider of the host stack's, by cluster name; their
    entries in `mesh` need no kubeconfig."""


PROGRAM_OUTPUTS = {
    "root_generations": "rootGenerations",
    "root_settings": "rootSettings",
    "adopted_root": "adoptedRoot",
    "root_not_after": "rootNotAfter",
    "clusters": "clusters",
    "workloads": "workloads",
}
"""MeshCA's outputs -> the stack outputs the program exported them as, before MeshCA existed (istio-ca 0.2
and older): a stack it made has no MeshCA record, and its first run reads these once."""


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
        host: dict[str, HostCluster] = as_input(args.get("host_clusters") or {}, "host_clusters")
        settings = parse_settings(plain_mesh(args["mesh"]), frozenset(host))
        strangers = sorted(set(host) - {cluster.name for cluster in settings.clusters})
        if strangers:
            raise ConfigError(f"host_clusters: {strangers} are not among the clusters of the mesh")
        last = mesh_root.last_run(MESH_CA_TYPE, name, opts, PROGRAM_OUTPUTS)
        mesh_root.refuse_unsafe_root_changes(last, settings)
        refuse_a_lowered_key_generation(last.memory.clusters, settings.clusters)
        held_before = _check_the_clusters(settings, last, host)
        generations = mesh_root.plan_generations(last, settings, held_before)

        super().__init__(MESH_CA_TYPE, name, None, opts)
        # The root keeps the name and the parent's place it had in the program's stacks, before this component.
        before = pulumi.Alias(parent=pulumi.ROOT_STACK_RESOURCE)
        adopted_before = pulumi.Alias(parent=pulumi.ROOT_STACK_RESOURCE, type_="istio-ca:index:ExistingRoot")
        root = mesh_root.make_root(self, settings, generations, last, host, [before], [adopted_before])
        cluster_cas = _cluster_cas(settings, root, last, host)
        workload_certs = mesh_root.make_workloads(settings, root)
        mesh_root.warn_of_renewals_due(last, settings)
        mesh_root.warn_when_the_root_ends_first(root, settings, {n: ca.renewal_opens for n, ca in cluster_cas.items()})
        if settings.export_directory is not None:
            export_when_applied(
                settings.export_directory,
                root.trusted_root_pems,
                [ca.cacerts.apply(partial(component_layout, name)) for name, ca in cluster_cas.items()]
                + [certs.files.apply(partial(component_layout, ns)) for ns, certs in workload_certs.items()],
                applied=[ca.cacerts_uid for ca in cluster_cas.values()],
            )

        mesh_root.publish_root(self, root, generations, settings)
        adopted_from_cluster = isinstance(settings.existing_root, RootFromCluster)
        self.adopted_root = pulumi.Output.from_input(None)
        if isinstance(root, ExistingRoot) and isinstance(settings.existing_root, RootFromCluster):
            self.adopted_root = pulumi.Output.all(fromCluster=settings.existing_root.cluster.name, sha256=root.sha256)
        self.clusters = _cluster_outputs(settings, cluster_cas, held_before, generations, root)
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
        self.adopts_from_cluster = adopted_from_cluster
        """Whether the root is adopted from a cluster (then `adopted_root` is set)."""
        register_declared_outputs(self)


def _cluster_cas(
    settings: StackSettings, root: mesh_root.MeshRoot, last: mesh_root.LastRun, host: Mapping[str, HostCluster]
) -> dict[str, ClusterCA]:
    """Each cluster's intermediate and `cacerts`, beneath the root; a renamed entry keeps its resources."""
    protect_render_directories(settings.clusters)
    renamed = renamed_from(settings.clusters, last.resources)
    return {
        cluster.name: ClusterCA(
            cluster.name,
            cluster_ca_args(cluster, root, renamed.get(cluster.name), host.get(cluster.name)),
            opts=pulumi.ResourceOptions(parent=root),
        )
        for cluster in settings.clusters
    }


def _check_the_clusters(
    settings: StackSettings, last: mesh_root.LastRun, host: Mapping[str, HostCluster]
) -> dict[str, ClusterTrust]:
    """What each cluster's `cacerts` holds now (live where it answers, else as recorded), once every check
    that reads the clusters has passed: before any resource, so they stop a run with or without a preview."""
    owner = stack_owner()
    live_cacerts = read_live_cacerts(settings.clusters, owner)
    # A host cluster known by its provider alone is read as recorded, like a cluster that is down.
    live_cacerts.update({c.name: None for c in settings.clusters if c.name in host and c.kubeconfig is None})
    known_roots = list(last.recorded_roots().values())
    if isinstance(settings.existing_root, RootFromConfig):
        known_roots.append(settings.existing_root.cert_pem)
    refuse_two_entries_for_one_cluster(settings.clusters, live_cacerts)
    refuse_a_missing_namespace(settings.clusters, live_cacerts)
    from_cluster = isinstance(settings.existing_root, RootFromCluster)
    refuse_to_re_root(settings.clusters, live_cacerts, None if from_cluster and not known_roots else known_roots, owner)
    return trust_by_cluster(live_cacerts, last.resources)


def _cluster_outputs(
    settings: StackSettings,
    cluster_cas: Mapping[str, ClusterCA],
    held_before: Mapping[str, ClusterTrust],
    generations: RootRotationState,
    root: Root,
) -> pulumi.Output[dict[str, Any]]:
    """Per cluster: its certificates and dates, its key generation, and the rotation phase its cacerts holds."""
    root_fingerprints = root.trusted_root_pems.apply(fingerprints)
    key_generations = {cluster.name: cluster.key_generation for cluster in settings.clusters}
    return pulumi.Output.from_input(
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
