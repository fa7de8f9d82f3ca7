"""The benchmark's plain wiring: what the Pulumi SDK and engine cost for the resources istio-ca registers per
cluster (a component, a key, its CSR, the signed certificate, a Kubernetes provider, the Secret),
wired as plainly as they can be, with none of istio-ca's checks. Config: `clusters` (a count).
"""

import base64

import pulumi
import pulumi_kubernetes as k8s
import pulumi_tls as tls

KEY = {"algorithm": "ECDSA", "ecdsa_curve": "P256"}
USES = ["cert_signing", "crl_signing", "digital_signature", "key_encipherment"]

root_key = tls.PrivateKey("root-key", **KEY)
root = tls.SelfSignedCert(
    "root-cert",
    private_key_pem=root_key.private_key_pem,
    subject=tls.SelfSignedCertSubjectArgs(organization="Istio", common_name="Root CA"),
    validity_period_hours=87600,
    is_ca_certificate=True,
    allowed_uses=USES,
)
for index in range(pulumi.Config().require_int("clusters")):
    name = f"c{index:02d}"
    component = pulumi.ComponentResource("floor:index:Cluster", name)
    child = pulumi.ResourceOptions(parent=component)
    key = tls.PrivateKey(f"{name}-key", **KEY, opts=child)
    csr = tls.CertRequest(
        f"{name}-csr",
        private_key_pem=key.private_key_pem,
        subject=tls.CertRequestSubjectArgs(organization="Istio", common_name="Intermediate CA", locality=name),
        opts=child,
    )
    cert = tls.LocallySignedCert(
        f"{name}-cert",
        cert_request_pem=csr.cert_request_pem,
        ca_private_key_pem=root_key.private_key_pem,
        ca_cert_pem=root.cert_pem,
        validity_period_hours=17520,
        is_ca_certificate=True,
        allowed_uses=USES,
        opts=child,
    )
    provider = k8s.Provider(
        f"{name}-k8s", render_yaml_to_directory=f"rendered/{name}", enable_secret_mutable=True, opts=child
    )
    files = pulumi.Output.all(cert.cert_pem, key.private_key_pem, root.cert_pem).apply(
        lambda pems: {
            file: base64.b64encode(pem.encode()).decode()
            for file, pem in zip(("ca-cert.pem", "ca-key.pem", "root-cert.pem"), pems, strict=True)
        }
    )
    k8s.core.v1.Secret(
        f"{name}-cacerts",
        metadata=k8s.meta.v1.ObjectMetaArgs(name="cacerts", namespace="istio-system"),
        data=files,  # a secret: the key in it is one
        opts=pulumi.ResourceOptions(parent=component, provider=provider),
    )
    component.register_outputs({"certPem": cert.cert_pem})
