"""The PKI stack: the root key lives here and nowhere else. Config `clusters`: each cluster's entry (its
name, and `istioNamespace` where it is not istio-system); each has a stack of that name in mesh-cluster.
Config `rootRotation` (applied once every cluster stack has written the phase before), `workloads`,
`exportDirectory` and `existingRoot` (`certPem`, and `keyPem` set with --secret: a root to adopt), as in
the single stack."""

import pulumi

from istio_ca import MeshPKI, MeshPKIArgs
from istio_ca.cancellation import end_quietly_when_cancelled

end_quietly_when_cancelled()  # a run the engine cancels ends with one line, not a traceback
config = pulumi.Config()
clusters = config.require_object("clusters")
mesh = {"clusters": clusters, "intermediate": {"keyAlgorithm": "ECDSA"}}
# Optional, as in the single stack: a root rotation's phase, VM workloads (their keys live here), and a
# directory for the VMs' files and the trust bundle.
for key in ("rootRotation", "workloads", "existingRoot"):
    if config.get_object(key):
        mesh[key] = config.get_object(key)
if "existingRoot" in mesh and not pulumi.runtime.is_config_secret(f"{pulumi.get_project()}:existingRoot"):
    raise pulumi.RunError("existingRoot.keyPem must be a secret: set it with `pulumi config set --secret --path`")
if "existingRoot" not in mesh or "rootRotation" in mesh:  # an adopted root replaces the one made here
    mesh["root"] = {"keyAlgorithm": "ECDSA"}
if config.get("exportDirectory"):
    mesh["exportDirectory"] = config.get("exportDirectory")
pki = MeshPKI(
    "pki",
    MeshPKIArgs(
        mesh=mesh,
        cluster_stacks={c["name"]: f"{pulumi.get_organization()}/mesh-cluster/{c['name']}" for c in clusters},
    ),
)
pulumi.export("istioCaPki", pki.exchange)  # what the cluster stacks read: certificates only
pulumi.export("rootCertPem", pki.root_cert_pem)
