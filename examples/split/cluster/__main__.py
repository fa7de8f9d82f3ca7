"""A cluster stack, named after its cluster: that cluster's intermediate key lives here and nowhere else.
Config `kubeconfig` (a path; without one, the manifests are rendered), `istioNamespace` (default
istio-system), `pkiStack` (default prod), `keyGeneration` (default 1; raise it for a new key),
`exportDirectory` (this cluster's files on disk)."""

import pulumi

from istio_ca import MeshMember, MeshMemberArgs
from istio_ca.cancellation import end_quietly_when_cancelled

end_quietly_when_cancelled()  # a run the engine cancels ends with one line, not a traceback
config = pulumi.Config()
cluster = pulumi.get_stack()
entry = {"name": cluster, "keyGeneration": config.get_int("keyGeneration") or 1}
kubeconfig = config.get("kubeconfig")
if kubeconfig:  # without one, the cluster's manifests are rendered to rendered/<cluster>/
    entry["kubeconfig"] = kubeconfig
mesh = {
    "clusters": [entry],
    "istioNamespace": config.get("istioNamespace") or "istio-system",
    "intermediate": {"keyAlgorithm": "ECDSA"},
}
if config.get("exportDirectory"):  # this cluster's files, as the Makefile lays them out
    mesh["exportDirectory"] = config.get("exportDirectory")
member = MeshMember(
    cluster,
    MeshMemberArgs(
        mesh=mesh,
        pki_stack=f"{pulumi.get_organization()}/mesh-pki/{config.get('pkiStack') or 'prod'}",
    ),
)
pulumi.export("istioCaMember", member.exchange)  # what the PKI stack reads: the CSR
pulumi.export("cacertsUid", member.cacerts_uid)
