"""An existing root CA, adopted instead of generated (Makefile.k8s.mk `fetch-root-ca`).

A mesh that runs istiod's self-signed CA keeps trust when the root it already has signs the new
per-cluster intermediates. The root comes from the stack config, or from a cluster: its
`istio-ca-secret` (istiod's self-signed CA), else its `cacerts` (a plugged-in CA), as
fetch-root-ca looks, read through a Kubernetes provider for that cluster.
"""

# No `from __future__ import annotations`: Pulumi's component analyzer reads the annotations as types.
import base64
from collections.abc import Mapping, Sequence
from typing import NotRequired, TypedDict

import pulumi
import pulumi_kubernetes as k8s
from kubernetes import client as kube_client
from kubernetes.client.exceptions import ApiException

from istio_ca.certificate import CertificateArgs, Issuer
from istio_ca.kube_api import REQUEST_TIMEOUT_SECONDS, Unreachable, api_client
from istio_ca.outputs import register_declared_outputs
from istio_ca.root_ca import IssuedRoot, TrustedRootArgs, root_generations
from istio_ca.root_checks import CheckedRoot, RootError, check_root

ROOT_SECRET_NAMES = ("istio-ca-secret", "cacerts")
"""Where a cluster keeps its root, in the order fetch-root-ca looks."""
ROOT_CERT_FILE = "ca-cert.pem"
ROOT_KEY_FILE = "ca-key.pem"
"""The keys that hold the root in both `istio-ca-secret` and `cacerts`, as fetch-root-ca reads them."""


class ExistingRootArgs(TypedDict):
    """Either the PEMs themselves, or where in a cluster to read them."""

    cert_pem: NotRequired[pulumi.Input[str]]
    """The root certificate, PEM."""
    private_key_pem: NotRequired[pulumi.Input[str]]
    """The root key, PEM (pass a secret)."""
    kubeconfig: NotRequired[pulumi.Input[str]]
    """Read the root from this cluster instead: path to (or contents of) its kubeconfig."""
    provider: NotRequired[k8s.Provider]
    """Or read it through the host stack's provider for the cluster; `kubeconfig`, when given too, finds
    which of `secret_names` exists (without it, the first is read)."""
    context: NotRequired[pulumi.Input[str]]
    """Kubeconfig context of that cluster; default: its current context."""
    namespace: NotRequired[pulumi.Input[str]]
    """The Istio namespace holding the Secret."""
    secret_names: NotRequired[pulumi.Input[Sequence[pulumi.Input[str]]]]
    """The Secrets to look in, in order; the first that exists holds the root.

    Default: `istio-ca-secret`, then `cacerts`, as fetch-root-ca looks. Leave out `cacerts` when
    this stack also writes that cluster's `cacerts`: the next run would adopt its own intermediate.
    """
    longest_signed_days: NotRequired[pulumi.Input[int]]
    """The longest validity it will sign; refused if the root ends sooner (no intermediate outlives it)."""
    expected_sha256: NotRequired[pulumi.Input[str | None]]
    """Refuse any other root than the one with this SHA-256 fingerprint (e.g. the one adopted before)."""
    cert_source: NotRequired[pulumi.Input[str]]
    """How error messages name where `cert_pem` came from (e.g. a config key)."""
    key_source: NotRequired[pulumi.Input[str]]
    """How error messages name where `private_key_pem` came from."""
    generations: NotRequired[Sequence[TrustedRootArgs]]
    """To rotate away from the adopted root: the generations trusted, oldest first; generation 1 is the
    adopted root, later ones are made here with `new_roots`. Default: generation 1 alone."""
    signing_generation: NotRequired[int]
    """The generation that signs the intermediates. Default: 1, the adopted root."""
    new_roots: NotRequired[CertificateArgs]
    """The settings of the generations made here (subject, validity, key)."""


class ExistingRoot(pulumi.ComponentResource):
    """A root CA that already exists: checked to be a self-signed CA whose key matches, then used to sign."""

    cert_pem: pulumi.Output[str]
    """The root certificate, PEM, re-encoded from its DER: nothing else of the input survives."""
    private_key_pem: pulumi.Output[str]
    """The root key, PEM; always a Pulumi secret."""
    not_after: pulumi.Output[str]
    """The signing root's NotAfter, RFC 3339: the adopted root's, until a rotation switches away from it."""
    sha256: pulumi.Output[str]
    """The certificate's SHA-256 fingerprint (colon-separated hex)."""

    def __init__(self, name: str, args: ExistingRootArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("istio-ca:index:ExistingRoot", name, None, opts)
        if "kubeconfig" in args or "provider" in args:
            secret_id, cert_pem, key_pem = self._read_from_cluster(name, args)
            cert_source = secret_id.apply(lambda where: f"Secret {where} {ROOT_CERT_FILE}")
            key_source = secret_id.apply(lambda where: f"Secret {where} {ROOT_KEY_FILE}")
        else:
            cert_pem = pulumi.Output.from_input(args["cert_pem"])
            key_pem = pulumi.Output.from_input(args["private_key_pem"])
            cert_source = pulumi.Output.from_input(args.get("cert_source", "the existing root certificate"))
            key_source = pulumi.Output.from_input(args.get("key_source", "the existing root key"))
        checked = pulumi.Output.all(
            cert_pem=cert_pem,
            key_pem=key_pem,
            longest_signed_days=args.get("longest_signed_days", 0),
            cert_source=cert_source,
            key_source=key_source,
            expected_sha256=args.get("expected_sha256"),
        ).apply(lambda values: check_adopted(**values))
        # The certificate is public; only its pairing with the key made the result secret.
        self.cert_pem = pulumi.Output.unsecret(checked.apply(lambda root: root.cert_pem))
        adopted_not_after = pulumi.Output.unsecret(checked.apply(lambda root: root.not_after))
        self.sha256 = pulumi.Output.unsecret(checked.apply(lambda root: root.sha256))
        self.private_key_pem = pulumi.Output.secret(key_pem)
        generations = args.get("generations", [TrustedRootArgs(number=1, key_from=1)])
        signing = args.get("signing_generation", 1)
        adopted = IssuedRoot(cert_pem=self.cert_pem, private_key_pem=self.private_key_pem, not_after=adopted_not_after)
        if len(generations) > 1 or generations[0]["number"] != 1:
            if "new_roots" not in args:
                raise RootError("rotating away from an adopted root needs the new roots' settings (new_roots)")
            self._roots = root_generations(self, name, args["new_roots"], generations, signing, adopted)
        else:
            self._roots = {1: adopted}
        self._trusted = [g["number"] for g in generations]
        self._signing = signing
        self.not_after = self._roots[self._signing].not_after
        register_declared_outputs(self)

    @property
    def signer(self) -> Issuer:
        """The adopted root, until a rotation switches signing to a generation made here."""
        root = self._roots[self._signing]
        return Issuer(cert_pem=root.cert_pem, private_key_pem=root.private_key_pem)

    @property
    def trusted_root_pems(self) -> pulumi.Output[list[str]]:
        return pulumi.Output.all(*(self._roots[number].cert_pem for number in self._trusted))

    def _read_from_cluster(
        self, name: str, args: ExistingRootArgs
    ) -> tuple[pulumi.Output[str], pulumi.Output[str], pulumi.Output[str]]:
        names = args.get("secret_names", ROOT_SECRET_NAMES)
        if "provider" in args:
            provider = args["provider"]
        else:
            provider = k8s.Provider(
                f"{name}-k8s",
                kubeconfig=args["kubeconfig"],
                context=args.get("context"),
                opts=pulumi.ResourceOptions(parent=self),
            )
        if "kubeconfig" in args:
            secret_name = pulumi.Output.all(
                kubeconfig=args["kubeconfig"], context=args.get("context"), namespace=args["namespace"], names=names
            ).apply(lambda where: find_root_secret(**where))
        else:
            secret_name = pulumi.Output.from_input(names).apply(lambda found: str(found[0]))
        secret_id = pulumi.Output.concat(args["namespace"], "/", secret_name)
        secret = k8s.core.v1.Secret.get(
            f"{name}-secret", secret_id, opts=pulumi.ResourceOptions(parent=self, provider=provider)
        )
        found = pulumi.Output.all(secret_id=secret_id, data=secret.data)
        return (
            secret_id,
            found.apply(lambda secret: secret_file(**secret, file=ROOT_CERT_FILE)),
            found.apply(lambda secret: secret_file(**secret, file=ROOT_KEY_FILE)),
        )


def check_adopted(
    cert_pem: str,
    key_pem: str,
    longest_signed_days: int,
    cert_source: str,
    key_source: str,
    expected_sha256: str | None,
) -> CheckedRoot:
    """check_root, and the root must be the one expected (adopted before, or pinned)."""
    root = check_root(cert_pem, key_pem, longest_signed_days, cert_source=cert_source, key_source=key_source)
    if expected_sha256 is not None and root.sha256 != expected_sha256.upper():
        raise RootError(
            f"{cert_source} now holds another root (SHA-256 {root.sha256}) than the one this stack adopted "
            f"(SHA-256 {expected_sha256.upper()}). istiod makes a new self-signed root when its Secret is deleted; "
            "signing with it would split the mesh's trust, so nothing was changed. To adopt it on purpose, "
            f"pin it: existingRoot.sha256 = {root.sha256}"
        )
    return root


def recorded_sha256(cluster: str, adopted: Mapping[str, str] | None) -> str | None:
    """The fingerprint a stack output `{fromCluster, sha256}` recorded for a root read from `cluster`."""
    if not adopted or adopted.get("fromCluster") != cluster:
        return None
    return adopted.get("sha256")


def find_root_secret(kubeconfig: str, context: str | None, namespace: str, names: Sequence[str]) -> str:
    """The first of `names` that exists: the provider's read fails on a missing object, so look first."""
    try:
        with api_client(kubeconfig, context) as api:
            core = kube_client.CoreV1Api(api)
            for name in names:
                try:
                    core.read_namespaced_secret(name, namespace, _request_timeout=REQUEST_TIMEOUT_SECONDS)
                except ApiException as error:
                    if error.status == 404:
                        continue
                    raise RootError(f"cannot read Secret {namespace}/{name}: {error.status} {error.reason}") from None
                return name
    except Unreachable as error:
        raise RootError(f"cannot read the existing root: {error}") from None
    raise RootError(f"namespace {namespace} has no Secret {' or '.join(names)}: no root to adopt there")


def secret_file(secret_id: str, data: Mapping[str, str] | None, file: str) -> str:
    if not data or file not in data:
        raise RootError(f"Secret {secret_id} has no {file}: it does not hold a root CA")
    return base64.b64decode(data[file]).decode()
