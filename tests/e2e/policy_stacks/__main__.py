"""A stack that writes a `cacerts` with pulumi-tls and a Kubernetes provider, as a team without istio-ca
would, and makes the mistakes of one group of the policy pack's rules (config `group`):

- keys: an RSA-1024 root key, an Ed25519 intermediate key;
- certificates: a 30-year root, an intermediate with an extendedKeyUsage and no keyCertSign that outlives
  it, and a CA signed under a certificate that is not a CA;
- cacerts: a typed Secret that lacks cert-chain.pem, holds istio-generated, a key that is not the
  certificate's, and a root-cert.pem whose certificate is no CA (so nothing chains to it);
- providers: a provider without enableSecretMutable;
- secrets: a private key (config `leakedKey`) in a ConfigMap and in a stack output.
Every other group's material is right. The `cacerts` comes last, so a blocked step leaves it unwritten.
"""

import pulumi
import pulumi_kubernetes as k8s
import pulumi_tls as tls

config = pulumi.Config()
group = config.require("group")
CA_USES = ["digital_signature", "key_encipherment", "cert_signing"]
DAY = 24


def key(name: str, **algorithm: object) -> tls.PrivateKey:
    return tls.PrivateKey(name, **(algorithm or {"algorithm": "ECDSA", "ecdsa_curve": "P256"}))


def self_signed(
    name: str, signer: tls.PrivateKey, *, is_ca: bool = True, hours: int = 365 * DAY, **opts: object
) -> tls.SelfSignedCert:
    return tls.SelfSignedCert(
        name,
        private_key_pem=signer.private_key_pem,
        is_ca_certificate=is_ca,
        allowed_uses=CA_USES if is_ca else ["digital_signature"],
        validity_period_hours=hours,
        subject=tls.SelfSignedCertSubjectArgs(common_name=name),
        opts=pulumi.ResourceOptions(**opts),  # type: ignore[arg-type]
    )


def intermediate(
    name: str,
    own: tls.PrivateKey,
    issuer: tls.SelfSignedCert,
    issuer_key: tls.PrivateKey,
    *,
    uses: list[str] = CA_USES,
    hours: int = 180 * DAY,
) -> tls.LocallySignedCert:
    request = tls.CertRequest(
        f"{name}-csr", private_key_pem=own.private_key_pem, subject=tls.CertRequestSubjectArgs(common_name=name)
    )
    return tls.LocallySignedCert(
        name,
        cert_request_pem=request.cert_request_pem,
        ca_cert_pem=issuer.cert_pem,
        ca_private_key_pem=issuer_key.private_key_pem,
        is_ca_certificate=True,
        allowed_uses=uses,
        validity_period_hours=hours,
    )


root_key = key("root-key", algorithm="RSA", rsa_bits=1024) if group == "keys" else key("root-key")
own_key = key("intermediate-key", algorithm="ED25519") if group == "keys" else key("intermediate-key")
root = self_signed("root", root_key, hours=30 * 365 * DAY if group == "certificates" else 365 * DAY)
ca = (
    intermediate(
        "intermediate", own_key, root, root_key, uses=["digital_signature", "server_auth"], hours=31 * 365 * DAY
    )
    if group == "certificates"
    else intermediate("intermediate", own_key, root, root_key)
)
files: dict[str, pulumi.Input[str]] = {
    "ca-cert.pem": ca.cert_pem,
    "ca-key.pem": own_key.private_key_pem,
    "root-cert.pem": root.cert_pem,
    "cert-chain.pem": pulumi.Output.concat(ca.cert_pem, root.cert_pem),
}
secret_type = "Opaque"
written_after: list[pulumi.Resource] = []
if group == "certificates":
    # Made after the root, so that `up` meets the root's mistake first.
    leaf_key = key("leaf-key")
    leaf = self_signed("leaf", leaf_key, is_ca=False, depends_on=[root])
    intermediate("under-a-leaf", key("under-a-leaf-key"), leaf, leaf_key)
if group == "cacerts":
    leaf = self_signed("leaf", key("leaf-key"), is_ca=False)
    files = {
        "ca-cert.pem": ca.cert_pem,
        "ca-key.pem": key("other-key").private_key_pem,
        "root-cert.pem": leaf.cert_pem,
        "istio-generated": "",
    }
    secret_type = "istio.io/plugged-ca"

provider = k8s.Provider(
    "cluster", kubeconfig=config.require("kubeconfig"), enable_secret_mutable=None if group == "providers" else True
)
if group == "secrets":
    leaked = config.require_secret("leakedKey")
    written_after.append(
        k8s.core.v1.ConfigMap(
            "leak",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="leak", namespace=config.require("namespace")),
            data={"client.pem": leaked},
            opts=pulumi.ResourceOptions(provider=provider),
        )
    )
    pulumi.export("clientKey", leaked)

k8s.core.v1.Secret(
    "cacerts",
    metadata=k8s.meta.v1.ObjectMetaArgs(name="cacerts", namespace=config.require("namespace")),
    type=secret_type,
    string_data=files,
    opts=pulumi.ResourceOptions(provider=provider, depends_on=written_after),
)
