"""istio-ca: one root CA, and per cluster an intermediate CA in a `cacerts` Secret."""

import pulumi

from components.cluster_ca import ClusterCA
from components.config import parse_settings, read_stack_config
from components.root_ca import RootCA

settings = parse_settings(read_stack_config())

root = RootCA("root", settings.root_args())
clusters = {
    cluster.name: ClusterCA(
        cluster.name,
        cluster.args(root.cert_pem, root.private_key_pem),
        opts=pulumi.ResourceOptions(parent=root),
    )
    for cluster in settings.clusters
}

pulumi.export("rootCertPem", root.cert_pem)
pulumi.export("rootNotAfter", root.not_after)
pulumi.export(
    "clusters",
    {
        name: {"certPem": ca.cert_pem, "certChainPem": ca.cert_chain_pem, "notAfter": ca.not_after}
        for name, ca in clusters.items()
    },
)
