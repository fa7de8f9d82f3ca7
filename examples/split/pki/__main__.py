"""The PKI stack: the root key lives here and nowhere else. Config `clusters`: each cluster's entry (its
name, and `istioNamespace` where it is not istio-system); each has a stack of that name in mesh-cluster.
Config `rootRotation`: a root rotation's phase, applied once every cluster stack has written the one before."""

import pulumi

from istio_ca import MeshPKI, MeshPKIArgs

config = pulumi.Config()
clusters = config.require_object("clusters")
mesh = {"clusters": clusters, "root": {"keyAlgorithm": "ECDSA"}, "intermediate": {"keyAlgorithm": "ECDSA"}}
rotation = config.get_object("rootRotation")  # e.g. {"phase": "trust-both"}: see the README, Root rotation
if rotation:
    mesh["rootRotation"] = rotation
pki = MeshPKI(
    "pki",
    MeshPKIArgs(
        mesh=mesh,
        cluster_stacks={c["name"]: f"{pulumi.get_organization()}/mesh-cluster/{c['name']}" for c in clusters},
    ),
)
pulumi.export("istioCaPki", pki.exchange)  # what the cluster stacks read: certificates only
pulumi.export("rootCertPem", pki.root_cert_pem)
