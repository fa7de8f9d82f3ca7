import pulumi
import pulumi_kubernetes as k8s

from istio_ca import HostCluster, KeyAlgorithm, MeshCA, MeshCAArgs

# The stack that creates the cluster has its kubeconfig; here it comes from this stack's config.
kubeconfig = pulumi.Config().require_secret("kubeconfig")
east = k8s.Provider("east", kubeconfig=kubeconfig, enable_secret_mutable=True)

mesh = MeshCA(
    "mesh",
    MeshCAArgs(
        # The keys of the README's config table, without the `istio-ca:` prefix.
        mesh={
            "clusters": [{"name": "east"}],
            "root": {"keyAlgorithm": KeyAlgorithm.ECDSA},
            "intermediate": {"keyAlgorithm": KeyAlgorithm.ECDSA},
        },
        host_clusters={"east": HostCluster(provider=east, kubeconfig=kubeconfig)},
    ),
)

pulumi.export("rootCertPem", mesh.root_cert_pem)
pulumi.export("eastPhase", mesh.clusters.apply(lambda clusters: clusters["east"]["rootPhase"]))
