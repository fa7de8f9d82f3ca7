"""One cluster's intermediate CA and its `cacerts` Secret."""

import base64
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NotRequired, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from istio_ca import cacerts
from istio_ca.certificate import (
    IssuedCertificateArgs,
    Issuer,
    pem_bundle,
    renew_before_hours,
    signed_certificate,
    trust_bundle,
)
from istio_ca.cluster_trust import applied_roots
from istio_ca.expiry import renewal_opens
from istio_ca.outputs import published_files, register_declared_outputs
from istio_ca.profiles import INTERMEDIATE_CA


class HostCluster(TypedDict):
    """A cluster the host stack reaches with a Kubernetes provider of its own."""

    provider: k8s.Provider
    """The host stack's provider for the cluster. It must set `enable_secret_mutable=True`, or every change
    of `cacerts` would delete and re-create it, and an istiod starting in between would find none."""
    kubeconfig: NotRequired[pulumi.Input[str]]
    """The cluster's kubeconfig (contents, or a path), for the takeover guard alone: it reads the existing
    `cacerts` before the first write. Unknown at preview (a cluster the stack is creating), the guard runs
    at `up`. Without it nothing reads the cluster first, and a `cacerts` this stack did not write is
    overwritten: give it whenever the cluster may already have one."""


class CacertsTargetArgs(TypedDict):
    """Where a cluster's `cacerts` goes, and what its takeover guard compares a `cacerts` found there with."""

    cluster_name: pulumi.Input[str]
    """The cluster's name; the certificate's subject L, as in the Makefile."""
    issuer_cert_pem: pulumi.Input[str]
    """The certificate of the root that signs the intermediate, PEM (ends `cert-chain.pem`)."""
    trusted_root_pems: pulumi.Input[Sequence[pulumi.Input[str]]]
    """The roots the cluster's workloads trust, in order (`root-cert.pem`); the issuer among them."""
    namespace: pulumi.Input[str]
    """The Istio namespace that holds `cacerts` (Makefile ISTIO_NAMESPACE)."""
    create_namespace: NotRequired[bool]
    """Create the namespace, retained on delete. Default: it must exist."""
    kubeconfig: NotRequired[pulumi.Input[str]]
    """Path to (or contents of) the cluster's kubeconfig: the provider's, unless `provider` is given;
    the takeover guard reads the existing `cacerts` through it in either case."""
    provider: NotRequired[k8s.Provider]
    """The host stack's provider for the cluster (a `kubernetes` provider in `opts.providers` is taken
    too); it must set `enable_secret_mutable=True`. Default: one made from `kubeconfig`."""
    context: NotRequired[pulumi.Input[str]]
    """Kubeconfig context; default: its current context."""
    render_directory: NotRequired[pulumi.Input[str]]
    """Write manifests here instead of applying them; used when there is no kubeconfig."""
    replace_foreign_cacerts: NotRequired[bool]
    """Write over a `cacerts` this stack did not write even when it holds another root. Default: refuse."""
    retain_cacerts: NotRequired[bool]
    """Leave `cacerts` in the cluster when this component is deleted. Default: true, since an istiod
    restarting without it mints a new self-signed root."""


class ClusterCAArgs(IssuedCertificateArgs, CacertsTargetArgs):
    """Inputs of a ClusterCA: a CA certificate's, who signs it, whom it trusts, and where `cacerts` goes."""

    issuer_private_key_pem: pulumi.Input[str]
    """The signing root's key, PEM (pass a secret)."""
    dns_names: pulumi.Input[Sequence[pulumi.Input[str]]]
    """subjectAltName DNS entries (Makefile INTERMEDIATE_SAN_DNS)."""
    previous_name: NotRequired[str]
    """The name this cluster's component had before a rename: its key, certificate, provider and
    `cacerts` move to the new name (aliases) instead of being made anew and the old ones deleted."""


class ClusterCA(pulumi.ComponentResource):
    """An intermediate CA signed by the root, installed as `cacerts` in one cluster."""

    cert_pem: pulumi.Output[str]
    """The intermediate certificate, PEM (`ca-cert.pem`)."""
    cert_chain_pem: pulumi.Output[str]
    """The intermediate then the root, PEM (`cert-chain.pem`)."""
    private_key_pem: pulumi.Output[str]
    """The intermediate key, PEM (`ca-key.pem`); always a Pulumi secret."""
    not_after: pulumi.Output[str]
    """The intermediate's NotAfter, RFC 3339."""
    renewal_opens: pulumi.Output[str]
    """From when the next `pulumi up` re-issues the intermediate (its renewal window), RFC 3339."""
    cacerts: pulumi.Output[dict[str, str]]
    """The `cacerts` Secret's files by name; always a Pulumi secret."""
    cacerts_uid: pulumi.Output[str]
    """The applied Secret's uid; resolves only once `cacerts` is written (or rendered)."""
    applied_roots: pulumi.Output[dict[str, Any]]
    """The written `cacerts` by SHA-256 fingerprints: `trusted`, the roots of `root-cert.pem`, and `issuer`,
    the root its intermediate was issued under (what a root rotation reads)."""

    def __init__(self, name: str, args: ClusterCAArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        previous = args.get("previous_name")
        if previous is not None:
            opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(aliases=[pulumi.Alias(name=previous)]))
        super().__init__("istio-ca:index:ClusterCA", name, None, opts)

        def was(part: str) -> list[pulumi.Input[pulumi.Alias]] | None:
            """The child's name before a rename of this cluster, if it was renamed."""
            return [pulumi.Alias(name=f"{previous}-{part}")] if previous is not None else None

        issued = signed_certificate(
            name,
            args=args,
            profile=INTERMEDIATE_CA,
            locality=args["cluster_name"],
            dns_names=args["dns_names"],
            issuer=Issuer(cert_pem=args["issuer_cert_pem"], private_key_pem=args["issuer_private_key_pem"]),
            parent=self,
            aliases_of=was,
        )
        key, cert = issued.key, issued.cert
        self.cert_pem = cert.cert_pem
        self.cert_chain_pem = pulumi.Output.all(cert.cert_pem, args["issuer_cert_pem"]).apply(pem_bundle)
        self.private_key_pem = pulumi.Output.secret(key.private_key_pem)
        self.not_after = cert.validity_end_time
        self.renewal_opens = renewal_opens(self.not_after, renew_before_hours(args))
        self.cacerts = published_files(
            {
                "ca-cert.pem": self.cert_pem,
                "ca-key.pem": self.private_key_pem,
                "root-cert.pem": trust_bundle(args["trusted_root_pems"]),
                "cert-chain.pem": self.cert_chain_pem,
            }
        )

        secret = cacerts_secret(self, name, args, opts, self.cacerts, was)
        self.cacerts_uid = secret.metadata.apply(lambda metadata: metadata.uid or "")
        # Fingerprints and dates only: public, though read from the secret data.
        self.applied_roots = pulumi.Output.unsecret(secret.data.apply(applied_roots))
        register_declared_outputs(self)


def cacerts_secret(
    component: pulumi.ComponentResource,
    name: str,
    args: CacertsTargetArgs,
    opts: pulumi.ResourceOptions | None,
    files: pulumi.Output[dict[str, str]],
    was: Callable[[str], list[pulumi.Input[pulumi.Alias]] | None],
) -> k8s.core.v1.Secret:
    """`cacerts` with `files`, written through the host's provider or one made for the cluster, once the
    takeover guard has read the cluster and the host's provider is known to update Secrets in place."""
    checks: list[pulumi.Output[Any]] = []
    provider = host_provider(args, opts)
    if provider is None:
        provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=args.get("kubeconfig"),
            context=args.get("context"),
            render_yaml_to_directory=args.get("render_directory"),
            # Without it a changed Secret is deleted and re-created, and an istiod
            # starting in between would find no `cacerts`.
            enable_secret_mutable=True,
            opts=pulumi.ResourceOptions(parent=component, aliases=was("k8s")),
        )
    else:
        checks.append(
            pulumi.Output.from_input(args["cluster_name"]).apply(
                lambda cluster: cacerts.refuse_an_immutable_secret_provider(provider, cluster)
            )
        )
    namespace_dependency: list[pulumi.Resource] = []
    if args.get("create_namespace", False):
        namespace_dependency.append(
            k8s.core.v1.Namespace(
                f"{name}-namespace",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=args["namespace"]),
                # `pulumi destroy` must never take an Istio namespace with it.
                opts=pulumi.ResourceOptions(
                    parent=component, provider=provider, retain_on_delete=True, aliases=was("namespace")
                ),
            )
        )
    owner = cacerts.stack_owner()
    data = files
    if "kubeconfig" in args:
        target = pulumi.Output.all(
            cluster=args["cluster_name"],
            kubeconfig=args["kubeconfig"],
            context=args.get("context"),
            namespace=args["namespace"],
        ).apply(lambda where: cacerts.Target(**where, owner=owner))
        approval = cacerts.guard(
            target,
            args["issuer_cert_pem"],
            pulumi.Output.from_input(args["trusted_root_pems"]).apply(lambda roots: [str(pem) for pem in roots]),
            args.get("replace_foreign_cacerts", False),
        )
        checks.append(approval)
    if checks:
        data = pulumi.Output.all(files, *checks).apply(lambda values: values[0])
    secret = k8s.core.v1.Secret(
        f"{name}-cacerts",
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=cacerts.SECRET_NAME,
            namespace=args["namespace"],
            # The apply takes over the fields of a `cacerts` the guard let through.
            annotations={"pulumi.com/patchForce": "true", cacerts.OWNER_ANNOTATION: owner},
        ),
        type=cacerts.SECRET_TYPE,
        # `data`, not `stringData`: server-side apply then owns each file, and conflicts show.
        data=data.apply(_base64_values),
        opts=pulumi.ResourceOptions(
            parent=component,
            provider=provider,
            depends_on=namespace_dependency,
            retain_on_delete=args.get("retain_cacerts", True),
            aliases=was("cacerts"),
        ),
    )
    return secret


def host_provider(args: CacertsTargetArgs, opts: pulumi.ResourceOptions | None) -> k8s.Provider | None:
    """The Kubernetes provider the host passed: the `provider` argument, else one in `opts`."""
    if "provider" in args:
        return args["provider"]
    if opts is None:
        return None
    given = opts.providers.values() if isinstance(opts.providers, Mapping) else (opts.providers or [])
    for provider in [opts.provider, *given]:
        if isinstance(provider, k8s.Provider):
            return provider
    return None


def _base64_values(files: dict[str, str]) -> dict[str, str]:
    return {name: base64.b64encode(content.encode()).decode() for name, content in files.items()}
