"""istio-ca: one root CA, and per cluster an intermediate CA in a `cacerts` Secret."""

from functools import partial

import pulumi

from components.cluster_ca import ClusterCA
from components.config import parse_settings, read_secret_keys, read_stack_config
from components.existing_root import ExistingRoot
from components.file_export import cluster_layout, export_when_applied, workload_layout
from components.root_ca import RootCA
from components.workload_certs import WorkloadCerts

settings = parse_settings(read_stack_config(), read_secret_keys())

if settings.existing_root is not None:
    root: RootCA | ExistingRoot = ExistingRoot("root", settings.existing_root.args(settings.longest_intermediate_days))
else:
    root = RootCA("root", settings.root_args())
clusters = {
    cluster.name: ClusterCA(
        cluster.name,
        cluster.args(root.cert_pem, root.private_key_pem),
        opts=pulumi.ResourceOptions(parent=root),
    )
    for cluster in settings.clusters
}
workloads = {
    workload.namespace: WorkloadCerts(
        workload.namespace,
        workload.args(root.cert_pem, root.private_key_pem),
        opts=pulumi.ResourceOptions(parent=root),
    )
    for workload in settings.workloads
}
if settings.export_directory is not None:
    export_when_applied(
        settings.export_directory,
        root.cert_pem,
        [ca.cacerts.apply(partial(cluster_layout, name)) for name, ca in clusters.items()]
        + [certs.files.apply(partial(workload_layout, namespace)) for namespace, certs in workloads.items()],
    )

pulumi.export("rootCertPem", root.cert_pem)
pulumi.export("rootNotAfter", root.not_after)
pulumi.export(
    "clusters",
    {
        name: {"certPem": ca.cert_pem, "certChainPem": ca.cert_chain_pem, "notAfter": ca.not_after}
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
