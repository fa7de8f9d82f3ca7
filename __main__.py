"""istio-ca: one root CA, and per cluster an intermediate CA in a `cacerts` Secret.

Config -> settings (components/config.py) -> component arguments (wiring.py) -> components -> outputs.
"""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pulumi

from istio_ca.cacerts import stack_owner
from istio_ca.cancellation import end_quietly_when_cancelled
from istio_ca.certificate import Root, pem_bundle
from istio_ca.cluster_ca import ClusterCA
from istio_ca.cluster_renames import renamed_from
from istio_ca.cluster_trust import (
    fingerprint,
    fingerprints,
    read_live_cacerts,
    recorded_roots,
    refuse_a_missing_namespace,
    refuse_to_re_root,
    refuse_two_entries_for_one_cluster,
    trust_by_cluster,
)
from istio_ca.config import parse_settings, refuse_a_lowered_key_generation
from istio_ca.existing_root import ExistingRoot, recorded_sha256
from istio_ca.expiry import refuse_an_expired_root, warn_of_due_certificates, warn_when_the_root_ends_first
from istio_ca.file_export import component_layout, export_when_applied, protect_directory
from istio_ca.root_ca import RootCA
from istio_ca.rotation import (
    RootGenerations,
    next_generations,
    refuse_a_changed_rotation,
    refuse_to_drop_an_adopted_root,
    warn_of_changed_root_settings,
)
from istio_ca.rotation_gate import gate, held_phase_output, remind_to_apply_rendered_clusters
from istio_ca.settings import RootFromCluster, RootFromConfig
from istio_ca.stack_config import read_last_outputs, read_last_resources, read_secret_paths, read_stack_config
from istio_ca.workload_certs import WorkloadCerts
from wiring import cluster_ca_args, existing_root_args, root_ca_args, root_settings_output, workload_certs_args

end_quietly_when_cancelled()
settings = parse_settings(read_stack_config(), read_secret_paths())

last_outputs = read_last_outputs()

root: Root
applied = RootGenerations.from_output(last_outputs.get("rootGenerations"))
rotation = settings.root_rotation
wanted_phase, same_key = (rotation.phase, rotation.same_key) if rotation else (None, False)
if settings.existing_root is None:
    refuse_to_drop_an_adopted_root(applied)
refuse_a_changed_rotation(
    applied,
    rotation.same_key if rotation else None,
    last_outputs.get("rootSettings"),
    root_settings_output(settings.root),
)
refuse_a_lowered_key_generation(last_outputs.get("clusters"), settings.clusters)
# What each cluster's cacerts holds now, and what the state recorded, before any resource: the checks
# below must stop a run before anything changes, with or without a preview.
resources = read_last_resources()
owner = stack_owner()
live_cacerts = read_live_cacerts(settings.clusters, owner)
recorded = recorded_roots(resources, "root", applied.trusted)
known_roots = list(recorded.values())
if isinstance(settings.existing_root, RootFromConfig):
    known_roots.append(settings.existing_root.cert_pem)
refuse_two_entries_for_one_cluster(settings.clusters, live_cacerts)
refuse_a_missing_namespace(settings.clusters, live_cacerts)
refuse_to_re_root(
    settings.clusters,
    live_cacerts,
    None if isinstance(settings.existing_root, RootFromCluster) and not known_roots else known_roots,
    owner,
)
held_before = trust_by_cluster(live_cacerts, resources)
if applied.rotating:
    # Each phase waits for every cluster to hold the one before, as its cacerts shows (never this run's values).
    phase_gate = gate(
        applied,
        wanted_phase,
        {generation: fingerprint(pem) for generation, pem in recorded.items()},
        held_before,
        retire_after=timedelta(hours=rotation.retire_after_hours if rotation else 0),
        now=datetime.now(UTC),
    )
    for line in phase_gate.waiting:
        pulumi.log.warn(line)
    wanted_phase = phase_gate.phase
remind_to_apply_rendered_clusters(wanted_phase, [c.name for c in settings.clusters if c.render_directory is not None])
adopted_from_cluster = settings.existing_root if isinstance(settings.existing_root, RootFromCluster) else None
if settings.existing_root is None:
    refuse_an_expired_root(last_outputs.get("rootNotAfter"), rotating=rotation is not None)
    generations = next_generations(applied, wanted_phase, same_key=same_key)
    warn_of_changed_root_settings(
        last_outputs.get("rootSettings"), root_settings_output(settings.root), rotation is not None
    )
    root = RootCA("root", root_ca_args(settings.root, generations))
else:
    generations = replace(next_generations(applied, wanted_phase, same_key=same_key), adopted=True)
    adopted_sha256 = None
    if adopted_from_cluster is not None:
        # The root adopted from this cluster before: istiod regenerating `istio-ca-secret` must not
        # silently re-root the mesh.
        adopted_sha256 = recorded_sha256(adopted_from_cluster.cluster.name, last_outputs.get("adoptedRoot"))
    root = ExistingRoot(
        "root",
        existing_root_args(
            settings.existing_root, settings.longest_signed_days, adopted_sha256, generations, settings.root
        ),
    )

if not pulumi.runtime.is_dry_run():
    for cluster in settings.clusters:
        if cluster.render_directory is not None:
            protect_directory(Path(cluster.render_directory))
renamed = renamed_from(settings.clusters, resources)
clusters = {
    cluster.name: ClusterCA(
        cluster.name,
        cluster_ca_args(cluster, root, renamed.get(cluster.name)),
        opts=pulumi.ResourceOptions(parent=root),
    )
    for cluster in settings.clusters
}
workloads = {
    workload.namespace: WorkloadCerts(
        workload.namespace, workload_certs_args(workload, root), opts=pulumi.ResourceOptions(parent=root)
    )
    for workload in settings.workloads
}
warn_of_due_certificates(
    last_outputs.get("clusters"),
    {cluster.name: cluster.renew_before_hours for cluster in settings.clusters},
    "the intermediate CA of {}",
)
warn_of_due_certificates(
    last_outputs.get("workloads"),
    {workload.namespace: workload.renew_before_hours for workload in settings.workloads},
    "the workload certificate of {}",
)
for cluster in settings.clusters:
    warn_when_the_root_ends_first(
        root.not_after,
        f"the intermediate CA of {cluster.name}",
        clusters[cluster.name].renewal_opens,
        cluster.intermediate.validity_days,
    )
if settings.export_directory is not None:
    export_when_applied(
        settings.export_directory,
        root.trusted_root_pems,
        [ca.cacerts.apply(partial(component_layout, name)) for name, ca in clusters.items()]
        + [certs.files.apply(partial(component_layout, namespace)) for namespace, certs in workloads.items()],
        applied=[ca.cacerts_uid for ca in clusters.values()],
    )

pulumi.export("rootCertPem", root.signer.cert_pem)
pulumi.export("rootNotAfter", root.not_after)
pulumi.export("trustedRootsPem", root.trusted_root_pems.apply(pem_bundle))
pulumi.export("rootGenerations", generations.to_output())
pulumi.export("rootSettings", root_settings_output(settings.root))
if isinstance(root, ExistingRoot) and adopted_from_cluster is not None:
    pulumi.export("adoptedRoot", {"fromCluster": adopted_from_cluster.cluster.name, "sha256": root.sha256})
root_fingerprints = root.trusted_root_pems.apply(fingerprints)
cluster_settings = {cluster.name: cluster for cluster in settings.clusters}

pulumi.export(
    "clusters",
    {
        name: {
            "certPem": ca.cert_pem,
            "certChainPem": ca.cert_chain_pem,
            "notAfter": ca.not_after,
            "renewalWindowOpens": ca.renewal_opens,
            "keyGeneration": cluster_settings[name].key_generation,
            # What its cacerts holds once written: a cluster that failed keeps its last recorded phase.
            "rootPhase": held_phase_output(ca.applied_roots, held_before.get(name), generations, root_fingerprints),
        }
        for name, ca in clusters.items()
    },
)
if workloads:
    pulumi.export(
        "workloads",
        {
            namespace: {
                "certPem": certs.cert_pem,
                "certChainPem": certs.cert_chain_pem,
                "caCertPem": certs.ca_cert_pem,
                "notAfter": certs.not_after,
                "renewalWindowOpens": certs.renewal_opens,
            }
            for namespace, certs in workloads.items()
        },
    )
    # Kept apart so the certificates above stay readable: a secret anywhere hides the whole output.
    pulumi.export(
        "workloadKeys",
        pulumi.Output.secret(
            {
                namespace: {"keyPem": certs.private_key_pem, "caKeyPem": certs.ca_private_key_pem}
                for namespace, certs in workloads.items()
            }
        ),
    )
