"""An existing root CA, adopted instead of generated (Makefile.k8s.mk `fetch-root-ca`).

A mesh that runs istiod's self-signed CA keeps trust when the root it already has signs the new
per-cluster intermediates. The root comes from the stack config, or from a cluster: its
`istio-ca-secret` (istiod's self-signed CA), else its `cacerts` (a plugged-in CA), as
fetch-root-ca looks, read through a Kubernetes provider for that cluster.
"""

import base64
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import NotRequired, TypedDict

import pulumi
import pulumi_kubernetes as k8s
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from kubernetes import client as kube_client
from kubernetes import config as kube_config
from kubernetes.client.exceptions import ApiException

ROOT_SECRET_NAMES = ("istio-ca-secret", "cacerts")
"""Where a cluster keeps its root, in the order fetch-root-ca looks."""
ROOT_CERT_FILE = "ca-cert.pem"
ROOT_KEY_FILE = "ca-key.pem"
"""The keys that hold the root in both `istio-ca-secret` and `cacerts`, as fetch-root-ca reads them."""


class RootError(pulumi.RunError):
    """The adopted root is unusable; Pulumi prints the message without a stack trace."""


class ExistingRootArgs(TypedDict):
    """Either the PEMs themselves, or where in a cluster to read them."""

    cert_pem: NotRequired[pulumi.Input[str]]
    """The root certificate, PEM."""
    private_key_pem: NotRequired[pulumi.Input[str]]
    """The root key, PEM (pass a secret)."""
    kubeconfig: NotRequired[pulumi.Input[str]]
    """Read the root from this cluster instead: path to (or contents of) its kubeconfig."""
    context: NotRequired[pulumi.Input[str]]
    """Kubeconfig context of that cluster; default: its current context."""
    namespace: NotRequired[pulumi.Input[str]]
    """The Istio namespace holding the Secret."""
    secret_names: NotRequired[pulumi.Input[Sequence[pulumi.Input[str]]]]
    """The Secrets to look in, in order; the first that exists holds the root.

    Default: `istio-ca-secret`, then `cacerts`, as fetch-root-ca looks. Leave out `cacerts` when
    this stack also writes that cluster's `cacerts`: the next run would adopt its own intermediate.
    """
    longest_issued_days: NotRequired[pulumi.Input[int]]
    """The longest validity it will sign; refused if the root ends sooner (no intermediate outlives it)."""


class ExistingRoot(pulumi.ComponentResource):
    """A root CA that already exists: checked to be a CA whose key matches, then used to sign."""

    cert_pem: pulumi.Output[str]
    """The root certificate, PEM."""
    private_key_pem: pulumi.Output[str]
    """The root key, PEM; always a Pulumi secret."""
    not_after: pulumi.Output[str]
    """The certificate's NotAfter, RFC 3339."""

    def __init__(self, name: str, args: ExistingRootArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("istio-ca:index:ExistingRoot", name, None, opts)
        if "kubeconfig" in args:
            cert_pem, key_pem = self._read_from_cluster(name, args)
        else:
            cert_pem, key_pem = (
                pulumi.Output.from_input(args["cert_pem"]),
                pulumi.Output.from_input(args["private_key_pem"]),
            )
        checked = pulumi.Output.all(cert_pem, key_pem, args.get("longest_issued_days", 0)).apply(
            lambda values: check_root(values[0], values[1], days_needed=values[2])
        )
        # The certificate is public; only its pairing with the key made the result secret.
        self.cert_pem = pulumi.Output.unsecret(checked.apply(lambda root: root[0]))
        self.not_after = pulumi.Output.unsecret(checked.apply(lambda root: root[1]))
        self.private_key_pem = pulumi.Output.secret(key_pem)
        self.register_outputs(
            {"cert_pem": self.cert_pem, "private_key_pem": self.private_key_pem, "not_after": self.not_after}
        )

    def _read_from_cluster(self, name: str, args: ExistingRootArgs) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
        provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=args["kubeconfig"],
            context=args.get("context"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        secret_name = pulumi.Output.all(
            args["kubeconfig"], args.get("context"), args["namespace"], args.get("secret_names", ROOT_SECRET_NAMES)
        ).apply(lambda where: find_root_secret(where[0], where[1], where[2], where[3]))
        secret_id = pulumi.Output.concat(args["namespace"], "/", secret_name)
        secret = k8s.core.v1.Secret.get(
            f"{name}-secret", secret_id, opts=pulumi.ResourceOptions(parent=self, provider=provider)
        )
        data = pulumi.Output.all(secret_id, secret.data)
        return (
            data.apply(lambda found: secret_file(found[0], found[1], ROOT_CERT_FILE)),
            data.apply(lambda found: secret_file(found[0], found[1], ROOT_KEY_FILE)),
        )


def find_root_secret(kubeconfig: str, context: str | None, namespace: str, names: Sequence[str]) -> str:
    """The first of `names` that exists: the provider's read fails on a missing object, so look first."""
    if os.path.isfile(kubeconfig):
        api = kube_config.new_client_from_config(config_file=kubeconfig, context=context)  # type: ignore[no-untyped-call]
    else:
        config = yaml.safe_load(kubeconfig)
        api = kube_config.new_client_from_config_dict(config, context=context)  # type: ignore[no-untyped-call]
    with api:
        core = kube_client.CoreV1Api(api)
        for name in names:
            try:
                core.read_namespaced_secret(name, namespace)
            except ApiException as error:
                if error.status == 404:
                    continue
                raise RootError(f"cannot read Secret {namespace}/{name}: {error.status} {error.reason}") from None
            return name
    raise RootError(f"namespace {namespace} has no Secret {' or '.join(names)}: no root to adopt there")


def secret_file(secret_id: str, data: Mapping[str, str] | None, file: str) -> str:
    if not data or file not in data:
        raise RootError(f"Secret {secret_id} has no {file}: it does not hold a root CA")
    return base64.b64decode(data[file]).decode()


def check_root(cert_pem: str, key_pem: str, days_needed: int = 0) -> tuple[str, str]:
    """The root PEM, if it is a CA whose key matches and that lasts `days_needed` more days; its NotAfter.

    The messages never echo the key.
    """
    try:
        cert = x509.load_pem_x509_certificate(cert_pem.encode())
    except ValueError as error:
        raise RootError(f"the existing root certificate is not a PEM certificate: {error}") from None
    try:
        basic = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        basic = None
    if basic is None or not basic.ca:
        raise RootError(f"the existing root {cert.subject.rfc4514_string()} is not a CA (basicConstraints CA:TRUE)")
    try:
        key = load_pem_private_key(key_pem.encode(), password=None)
    except (ValueError, TypeError):
        raise RootError("the existing root key is not an unencrypted PEM private key") from None
    if key.public_key() != cert.public_key():
        raise RootError(f"the existing root key does not match the certificate {cert.subject.rfc4514_string()}")
    days_left = (cert.not_valid_after_utc - datetime.now(UTC)) / timedelta(days=1)
    if days_left < days_needed:
        raise RootError(
            f"the existing root {cert.subject.rfc4514_string()} ends on {cert.not_valid_after_utc:%Y-%m-%d}, "
            f"{max(days_left, 0):.0f} days from now: an intermediate or workload certificate of {days_needed} days "
            "would outlive it; shorten their days or renew the root"
        )
    # Config values lose their final newline; a PEM file ends with one.
    return cert_pem.strip() + "\n", cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
