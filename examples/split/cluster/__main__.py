"""A cluster stack, named after its cluster: that cluster's intermediate key lives here and nowhere else.
Config `kubeconfig` (a path), `istioNamespace` (default istio-system), `pkiStack` (default prod), and
`keyGeneration` (default 1; raise it for a new key)."""

import pulumi

from istio_ca import MeshMember, MeshMemberArgs

config = pulumi.Config()
cluster = pulumi.get_stack()
member = MeshMember(
    cluster,
    MeshMemberArgs(
        mesh={
            "clusters": [
                {
                    "name": cluster,
                    "kubeconfig": config.require("kubeconfig"),
                    "keyGeneration": config.get_int("keyGeneration") or 1,
                }
            ],
            "istioNamespace": config.get("istioNamespace") or "istio-system",
            "intermediate": {"keyAlgorithm": "ECDSA"},
        },
        pki_stack=f"{pulumi.get_organization()}/mesh-pki/{config.get('pkiStack') or 'prod'}",
    ),
)
pulumi.export("istioCaMember", member.exchange)  # what the PKI stack reads: the CSR
pulumi.export("cacertsUid", member.cacerts_uid)
