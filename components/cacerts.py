"""The `cacerts` Secret istiod loads its plugged-in CA from: what it holds, and who may replace it.

A `cacerts` this stack wrote carries an owner annotation. One without it is foreign, and is judged
before anything is written:
- it chains to this stack's root (the Makefile's, adopted with `existingRoot`): taken over in place,
  its foreign keys (such as `istio-generated`) and other managers' field ownership dropped;
- it holds another root: refused, unless the cluster opts in to replacing it, because replacing it
  breaks mTLS between that cluster's old and new workloads;
- it is not Opaque: refused, since a Secret's type cannot change.
A cluster that does not answer is left to fail on its own, so the others go ahead.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
from cryptography import x509
from kubernetes import client as kube_client
from kubernetes.client.exceptions import ApiException

from istio_ca.config_schema import REPLACE_FOREIGN_CACERTS
from istio_ca.kube_api import REQUEST_TIMEOUT_SECONDS, Unreachable, api_client
from istio_ca.pem import certificates_in, issued_by, sha256_fingerprint

SECRET_NAME = "cacerts"
SECRET_TYPE = "Opaque"
FILES = ("ca-cert.pem", "ca-key.pem", "root-cert.pem", "cert-chain.pem")
"""Exactly what istiod's plugged-in CA reads."""
OWNER_ANNOTATION = "istio-ca/owner"
"""Names the stack (`organization/project/stack`) that wrote the Secret."""
TAKEOVER_MANAGED_FIELDS = {
    "manager": "istio-ca-takeover",
    "operation": "Update",
    "apiVersion": "v1",
    "fieldsType": "FieldsV1",
    "fieldsV1": {"f:type": {}},
}
"""What the takeover leaves of the Secret's field ownership: the apply then owns every file alone."""


class CacertsError(pulumi.RunError):
    """A `cacerts` that must not be written over; Pulumi prints the message without a stack trace."""


@dataclass(frozen=True)
class LiveCacerts:
    """What a cluster's `cacerts` is now, as far as deciding whether to write it goes."""

    exists: bool
    namespace_exists: bool = True
    """False when the Istio namespace itself is missing (then the Secret is too)."""
    cluster_uid: str | None = None
    """The uid of the cluster's `kube-system` namespace: the same cluster, whatever URL reaches it."""
    owner: str | None = None
    type: str | None = None
    files: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Target:
    """Where one cluster's `cacerts` goes, and who writes it."""

    cluster: str
    kubeconfig: str
    context: str | None
    namespace: str
    owner: str


def stack_owner() -> str:
    return f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}"


def read_live(target: Target) -> LiveCacerts:
    """The cluster's `cacerts` as it is; raises Unreachable when its API server does not answer."""
    with api_client(target.kubeconfig, target.context) as api:
        _, uid = _namespace(api, "kube-system")
        try:
            secret = kube_client.CoreV1Api(api).read_namespaced_secret(
                SECRET_NAME, target.namespace, _request_timeout=REQUEST_TIMEOUT_SECONDS
            )
        except ApiException as error:
            if error.status == 404:
                exists, _ = _namespace(api, target.namespace)
                return LiveCacerts(exists=False, namespace_exists=exists, cluster_uid=uid)
            raise CacertsError(
                f"{target.cluster}: cannot read Secret {target.namespace}/{SECRET_NAME}: {error.status} {error.reason}"
            ) from None
    annotations = (secret.metadata.annotations if secret.metadata else None) or {}
    files = {name: base64.b64decode(value).decode(errors="replace") for name, value in (secret.data or {}).items()}
    return LiveCacerts(
        exists=True, owner=annotations.get(OWNER_ANNOTATION), type=secret.type, files=files, cluster_uid=uid
    )


def _namespace(api: kube_client.ApiClient, namespace: str) -> tuple[bool, str | None]:
    """Whether the namespace exists, and its uid. A namespace that cannot be read (this identity may not,
    or the server erred) is taken to exist, with no uid: the write will say what is wrong."""
    try:
        found = kube_client.CoreV1Api(api).read_namespace(namespace, _request_timeout=REQUEST_TIMEOUT_SECONDS)
    except ApiException as error:
        return error.status != 404, None
    return True, (found.metadata.uid if found.metadata else None)


def judge(target: Target, live: LiveCacerts, roots: Sequence[str] | None, replace_foreign: bool) -> bool:
    """Whether `live` must be taken over before writing; raises CacertsError where it must not be written.

    `roots`: the roots this stack trusts (PEM), [] when it has none yet, None when they cannot be told now.
    """
    where = f"{target.cluster}: Secret {target.namespace}/{SECRET_NAME}"
    if not live.exists:
        return False
    if live.owner == target.owner:
        if roots is None or replace_foreign or shares_a_root(live, roots):
            return False
        raise CacertsError(
            f"{where} was written by this stack, but holds a root the stack no longer has: {found_root(live)}. The "
            "stack was destroyed, recreated or restored from an older backup since, and writing over it would re-root "
            f"{target.cluster} and break mTLS between its workloads signed before and after. Either restore the "
            "state that holds that root (`pulumi stack import --file <backup>`), or adopt the root if its key is "
            f"still at hand (existingRoot), or replace it on purpose: set `{REPLACE_FOREIGN_CACERTS}: true` "
            f"in {target.cluster}'s entry of clusters"
        )
    if live.type != SECRET_TYPE:
        raise CacertsError(
            f"{where} has type {live.type!r}, not {SECRET_TYPE!r}, and a Secret's type cannot change. Check what "
            f"made it, then delete it (kubectl -n {target.namespace} delete secret {SECRET_NAME}) and run again"
        )
    if chains_to(live, roots or []) or replace_foreign:
        return True
    raise CacertsError(
        f"{where} was not written by this stack and holds another root: {found_root(live)}. Writing over it "
        f"would break mTLS between {target.cluster}'s workloads signed before and after. Either adopt that root "
        f"(existingRoot; see the README), or replace it on purpose: set `{REPLACE_FOREIGN_CACERTS}: true` in "
        f"{target.cluster}'s entry of clusters"
    )


def shares_a_root(live: LiveCacerts, roots: Sequence[str]) -> bool:
    """Whether the live bundle trusts one of `roots`; a bundle with no certificate has nothing to lose."""
    held = certificates_in(live.files.get("root-cert.pem", ""))
    ours = [cert for pem in roots for cert in certificates_in(pem)]
    return not held or any(cert in ours for cert in held)


def chains_to(live: LiveCacerts, roots: Sequence[str]) -> bool:
    """Whether the foreign intermediate was signed by one of this stack's roots."""
    intermediate = _first_certificate(live.files.get("ca-cert.pem", ""))
    return intermediate is not None and any(
        issued_by(intermediate, root) for pem in roots for root in certificates_in(pem)
    )


def found_root(live: LiveCacerts) -> str:
    """The foreign Secret's root, by subject and SHA-256 fingerprint, for the refusal."""
    root = _first_certificate(live.files.get("root-cert.pem", ""))
    if root is not None:
        return f"{root.subject.rfc4514_string()} (SHA-256 {sha256_fingerprint(root)})"
    intermediate = _first_certificate(live.files.get("ca-cert.pem", ""))
    if intermediate is not None:
        return f"no root-cert.pem; its ca-cert.pem is issued by {intermediate.issuer.rfc4514_string()}"
    return "no certificate that parses"


def _first_certificate(pem: str) -> x509.Certificate | None:
    certificates = certificates_in(pem)
    return certificates[0] if certificates else None


def take_over(target: Target, live: LiveCacerts) -> None:
    """Drop what another writer left: its extra keys and its field ownership; the apply then owns the rest."""
    operations: list[dict[str, object]] = [
        {"op": "remove", "path": f"/data/{name.replace('~', '~0').replace('/', '~1')}"}
        for name in sorted(set(live.files) - set(FILES))
    ]
    # Every other writer's claim on the Secret goes; the takeover keeps only the type (which never
    # changes). An empty list would hand every field to `before-first-apply` instead.
    operations.append({"op": "replace", "path": "/metadata/managedFields", "value": [TAKEOVER_MANAGED_FIELDS]})
    with api_client(target.kubeconfig, target.context) as api:
        kube_client.CoreV1Api(api).patch_namespaced_secret(
            SECRET_NAME, target.namespace, operations, _request_timeout=REQUEST_TIMEOUT_SECONDS
        )


def guard(
    target: pulumi.Output[Target],
    root_cert_pem: pulumi.Input[str],
    trusted_root_pems: pulumi.Input[Sequence[str]],
    replace_foreign: bool,
) -> pulumi.Output[str]:
    """Resolves once the cluster's `cacerts` may be written (taking a foreign one over on `up`); fails otherwise.

    Runs during preview too, so a refusal shows before anything changes; a kubeconfig the preview does
    not know yet (the host stack creates the cluster) leaves it to `up`. Roots still unknown (about to
    be created) cannot have signed a foreign intermediate; MeshCA judged this stack's own `cacerts`
    against the roots it recorded before any resource (`judge`).
    """
    signer = pulumi.Output.from_input(root_cert_pem)
    trusted = pulumi.Output.from_input(trusted_root_pems)

    async def decide() -> str:
        if not await target.is_known():
            return "read at up"  # a kubeconfig still unknown in a preview: its cluster is being made
        where = await target.future()
        assert where is not None
        try:
            live = await asyncio.to_thread(read_live, where)
        except Unreachable as error:
            pulumi.log.warn(
                f"{where.cluster}: {error}, so its cacerts cannot be written now. To write the other clusters' "
                "meanwhile, run `pulumi up --continue-on-error`; run `pulumi up` again once it is back"
            )
            return "unreachable"
        roots: list[str] | None = None
        if await trusted.is_known():
            roots = list(await trusted.future() or [])
        elif await signer.is_known():
            roots = [await signer.future() or ""]
        if not judge(where, live, roots, replace_foreign):
            return "owned" if live.exists else "absent"
        if pulumi.runtime.is_dry_run():
            pulumi.log.info(f"{where.cluster}: a cacerts not written by this stack will be taken over in place")
        else:
            await asyncio.to_thread(take_over, where, live)
        return "taken over"

    return pulumi.Output.from_input(asyncio.ensure_future(decide()))


def refuse_an_immutable_secret_provider(provider: pulumi.ProviderResource, cluster: str) -> pulumi.Output[bool]:
    """Resolves once the host's provider is known to update Secrets in place; fails otherwise, in preview too.

    A provider without `enableSecretMutable` deletes and re-creates a changed Secret: an istiod starting in
    between finds no `cacerts` and mints a self-signed root. Its registered inputs say which it is.
    """

    async def check() -> bool:
        urn = await provider.urn.future()
        assert urn is not None
        # Not invoke_output: in a preview that waits for the provider to exist and never answers.
        found = await pulumi.runtime.invoke_async("pulumi:pulumi:getResource", {"urn": urn})
        recorded = (found or {}).get("state") or {}
        if str(recorded.get("enableSecretMutable", "")).lower() != "true":
            raise CacertsError(
                f"{cluster}: the Kubernetes provider {urn.rsplit('::', 1)[-1]!r} does not set "
                "enable_secret_mutable=True, so every change of cacerts would delete and re-create it, and an "
                "istiod starting in between would find none and mint a self-signed root. Set "
                "enable_secret_mutable=True on that provider"
            )
        return True

    return pulumi.Output.from_input(asyncio.ensure_future(check()))
