"""An existing root CA, adopted instead of generated (Makefile.k8s.mk `fetch-root-ca`).

A mesh that runs istiod's self-signed CA keeps trust when the root it already has signs the new
per-cluster intermediates. The root comes from the stack config, or from a cluster: its
`istio-ca-secret` (istiod's self-signed CA), else its `cacerts` (a plugged-in CA), as
fetch-root-ca looks, read through a Kubernetes provider for that cluster.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NotRequired, TypedDict

import pulumi
import pulumi_kubernetes as k8s
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from kubernetes import client as kube_client
from kubernetes.client.exceptions import ApiException

from components.kube_api import REQUEST_TIMEOUT_SECONDS, Unreachable, api_client
from components.pem import PemError, certificate_pem, sha256_fingerprint, single_certificate, single_private_key

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
    expected_sha256: NotRequired[pulumi.Input[str | None]]
    """Refuse any other root than the one with this SHA-256 fingerprint (e.g. the one adopted before)."""
    cert_source: NotRequired[pulumi.Input[str]]
    """How error messages name where `cert_pem` came from (e.g. a config key)."""
    key_source: NotRequired[pulumi.Input[str]]
    """How error messages name where `private_key_pem` came from."""


class ExistingRoot(pulumi.ComponentResource):
    """A root CA that already exists: checked to be a self-signed CA whose key matches, then used to sign."""

    cert_pem: pulumi.Output[str]
    """The root certificate, PEM, re-encoded from its DER: nothing else of the input survives."""
    private_key_pem: pulumi.Output[str]
    """The root key, PEM; always a Pulumi secret."""
    not_after: pulumi.Output[str]
    """The certificate's NotAfter, RFC 3339."""
    sha256: pulumi.Output[str]
    """The certificate's SHA-256 fingerprint (colon-separated hex)."""

    def __init__(self, name: str, args: ExistingRootArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("istio-ca:index:ExistingRoot", name, None, opts)
        if "kubeconfig" in args:
            secret_id, cert_pem, key_pem = self._read_from_cluster(name, args)
            cert_source = secret_id.apply(lambda where: f"Secret {where} {ROOT_CERT_FILE}")
            key_source = secret_id.apply(lambda where: f"Secret {where} {ROOT_KEY_FILE}")
        else:
            cert_pem = pulumi.Output.from_input(args["cert_pem"])
            key_pem = pulumi.Output.from_input(args["private_key_pem"])
            cert_source = pulumi.Output.from_input(args.get("cert_source", "the existing root certificate"))
            key_source = pulumi.Output.from_input(args.get("key_source", "the existing root key"))
        checked = pulumi.Output.all(
            cert_pem, key_pem, args.get("longest_issued_days", 0), cert_source, key_source, args.get("expected_sha256")
        ).apply(lambda values: check_adopted(*values))
        # The certificate is public; only its pairing with the key made the result secret.
        self.cert_pem = pulumi.Output.unsecret(checked.apply(lambda root: root.cert_pem))
        self.not_after = pulumi.Output.unsecret(checked.apply(lambda root: root.not_after))
        self.sha256 = pulumi.Output.unsecret(checked.apply(lambda root: root.sha256))
        self.private_key_pem = pulumi.Output.secret(key_pem)
        self.register_outputs(
            {
                "cert_pem": self.cert_pem,
                "private_key_pem": self.private_key_pem,
                "not_after": self.not_after,
                "sha256": self.sha256,
            }
        )

    def _read_from_cluster(
        self, name: str, args: ExistingRootArgs
    ) -> tuple[pulumi.Output[str], pulumi.Output[str], pulumi.Output[str]]:
        provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=args["kubeconfig"],
            context=args.get("context"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        secret_name = pulumi.Output.all(
            args["kubeconfig"], args.get("context"), args["namespace"], args.get("secret_names", ROOT_SECRET_NAMES)
        ).apply(lambda where: find_root_secret(*where))
        secret_id = pulumi.Output.concat(args["namespace"], "/", secret_name)
        secret = k8s.core.v1.Secret.get(
            f"{name}-secret", secret_id, opts=pulumi.ResourceOptions(parent=self, provider=provider)
        )
        data = pulumi.Output.all(secret_id, secret.data)
        return (
            secret_id,
            data.apply(lambda found: secret_file(found[0], found[1], ROOT_CERT_FILE)),
            data.apply(lambda found: secret_file(found[0], found[1], ROOT_KEY_FILE)),
        )


def check_adopted(
    cert_pem: str, key_pem: str, days: int, cert_source: str, key_source: str, expected_sha256: str | None
) -> CheckedRoot:
    root = check_root(cert_pem, key_pem, days, cert_source=cert_source, key_source=key_source)
    if expected_sha256 is not None and root.sha256 != expected_sha256.upper():
        raise RootError(
            f"{cert_source} now holds another root (SHA-256 {root.sha256}) than the one this stack adopted "
            f"(SHA-256 {expected_sha256.upper()}). istiod makes a new self-signed root when its Secret is deleted; "
            "signing with it would split the mesh's trust, so nothing was changed. To adopt it on purpose, "
            f"pin it: istio-ca:existingRoot.sha256 = {root.sha256}"
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


@dataclass(frozen=True)
class CheckedRoot:
    """A root that proved itself: its certificate re-encoded from DER, its NotAfter and fingerprint."""

    cert_pem: str
    not_after: str
    """RFC 3339, whole seconds."""
    sha256: str
    """SHA-256 fingerprint of the DER, colon-separated hex."""


def check_root(
    cert_pem: str,
    key_pem: str,
    days_needed: int = 0,
    *,
    cert_source: str = "the existing root certificate",
    key_source: str = "the existing root key",
) -> CheckedRoot:
    """The root, if it is a self-signed CA with no path length that forbids intermediates, whose key
    matches, and that lasts `days_needed` more days.

    The sources name where each PEM came from (a config key, a Secret's file); the messages never echo the PEMs.
    """
    try:
        cert = single_certificate(cert_pem)
    except PemError as error:
        raise RootError(f"{cert_source} {error}") from None
    name = cert.subject.rfc4514_string() or "(empty subject)"
    try:
        basic = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        basic = None
    if basic is None or not basic.ca:
        raise RootError(f"{cert_source}: {name} is not a CA (basicConstraints CA:TRUE)")
    if cert.issuer != cert.subject or not _signs_itself(cert):
        raise RootError(
            f"{cert_source}: {name} is not a root: it is issued by {cert.issuer.rfc4514_string()}, not self-signed. "
            "Adopt the root at the top of its chain (the Makefile's root-cert.pem and root-key.pem, not a "
            "cluster's ca-cert.pem)"
        )
    if basic.path_length == 0:
        raise RootError(
            f"{cert_source}: {name} carries pathlen:0, so no intermediate CA below it would pass path validation"
        )
    try:
        key = single_private_key(key_pem)
    except PemError as error:
        raise RootError(f"{key_source} {error}") from None
    if key.public_key() != cert.public_key():
        raise RootError(f"{key_source} does not match the certificate {name}")
    days_left = (cert.not_valid_after_utc - datetime.now(UTC)) / timedelta(days=1)
    if days_left < days_needed:
        raise RootError(
            f"{cert_source}: {name} ends on {cert.not_valid_after_utc:%Y-%m-%d}, "
            f"{max(days_left, 0):.0f} days from now: an intermediate or workload certificate of {days_needed} days "
            "would outlive it; shorten their days or renew the root"
        )
    return CheckedRoot(
        cert_pem=certificate_pem(cert),
        not_after=cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        sha256=sha256_fingerprint(cert),
    )


def _signs_itself(cert: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True
