"""What each cluster's `cacerts` holds, as far as a root rotation goes: the roots it trusts and the root
that signed its intermediate.

A root rotation may only move on once every cluster has applied the phase before, so what a cluster
holds is read from where a failed run cannot fake it: the live Secret where the cluster answers, else
the Secret's state as Pulumi last recorded it (a write that failed left it unchanged). Never from a
value this run computes.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from istio_ca import cacerts
from istio_ca.kube_api import Unreachable
from istio_ca.pem import certificates_in, issued_by, sha256_fingerprint
from istio_ca.root_ca import generation_name
from istio_ca.settings import ClusterSettings

SECRET_TYPE_TOKEN = "kubernetes:core/v1:Secret"
ROOT_CERT_TYPE_TOKEN = "tls:index/selfSignedCert:SelfSignedCert"
ADOPTED_ROOT_TYPE_TOKEN = "istio-ca:index:ExistingRoot"
LIVE_READ_THREADS = 8


@dataclass(frozen=True)
class ClusterTrust:
    """One cluster's `cacerts`, by SHA-256 fingerprints."""

    trusted: tuple[str, ...]
    """The roots of `root-cert.pem`, in order."""
    issuer: str | None
    """The root that signed `ca-cert.pem` (the one `cert-chain.pem` ends with); None if none of them did."""
    issued_at: datetime | None
    """The intermediate's NotBefore: when it was issued."""
    live: bool
    """Read from the cluster now; False: from the state Pulumi recorded, the cluster did not answer."""

    def to_output(self) -> dict[str, Any]:
        """The fingerprints as a plain output: `trusted` (a list) and `issuer` (or None)."""
        return {"trusted": list(self.trusted), "issuer": self.issuer}

    def to_report(self) -> dict[str, Any]:
        """to_output, and `issuedAt` (RFC 3339): what a cluster stack reports to its PKI stack."""
        issued_at = self.issued_at.isoformat() if self.issued_at is not None else None
        return {**self.to_output(), "issuedAt": issued_at}


def trust_of(files: Mapping[str, str], live: bool) -> ClusterTrust | None:
    """What a `cacerts` holding `files` trusts; None when it holds no intermediate that parses."""
    roots = certificates_in(files.get("root-cert.pem", ""))
    intermediates = certificates_in(files.get("ca-cert.pem", ""))
    if not intermediates:
        return None
    intermediate = intermediates[0]
    # Two generations of a same-key renewal both verify the intermediate: the chain names the one it was issued under.
    candidates = certificates_in(files.get("cert-chain.pem", ""))[1:][::-1] + roots
    issuer = next((root for root in candidates if issued_by(intermediate, root)), None)
    return ClusterTrust(
        trusted=tuple(sha256_fingerprint(root) for root in roots),
        issuer=sha256_fingerprint(issuer) if issuer is not None else None,
        issued_at=intermediate.not_valid_before_utc,
        live=live,
    )


def applied_trust(data: Mapping[str, Any] | None) -> ClusterTrust | None:
    """What a `cacerts` Secret whose `data` (base64 values) Pulumi applied holds."""
    return trust_of(_decoded(data or {}), live=False)


def applied_roots(data: Mapping[str, Any] | None) -> dict[str, Any]:
    """applied_trust's fingerprints, as a plain output: `trusted` (a list) and `issuer` (or None)."""
    trust = applied_trust(data)
    return trust.to_output() if trust else {"trusted": [], "issuer": None}


def recorded_trust(resources: Mapping[str, Any], cluster: str) -> ClusterTrust | None:
    """What the state recorded for the cluster's `cacerts` Secret (`<cluster>-cacerts`); None without one."""
    for urn, resource in resources.items():
        if resource.get("type") == SECRET_TYPE_TOKEN and urn.rsplit("::", 1)[-1] == f"{cluster}-cacerts":
            return applied_trust((resource.get("outputs") or {}).get("data"))
    return None


def recorded_roots(resources: Mapping[str, Any], root_name: str, generations: Iterable[int]) -> dict[int, str]:
    """Each generation's root certificate (PEM) as the state recorded it: `<root>-cert` (or, for an adopted
    generation 1, the ExistingRoot component's certificate) and `<root>-g<N>-cert`."""
    by_name: dict[str, str] = {}
    for urn, resource in resources.items():
        outputs = resource.get("outputs") or {}
        name = urn.rsplit("::", 1)[-1]
        if resource.get("type") == ROOT_CERT_TYPE_TOKEN:
            by_name[name] = outputs.get("certPem") or ""
        elif resource.get("type") == ADOPTED_ROOT_TYPE_TOKEN and name == root_name:
            by_name.setdefault(generation_name(root_name, 1, "cert"), outputs.get("cert_pem") or "")
    found = {}
    for generation in generations:
        pem = by_name.get(generation_name(root_name, generation, "cert"), "")
        if certificates_in(pem):
            found[generation] = pem
    return found


def read_live_cacerts(clusters: Sequence[ClusterSettings], owner: str) -> dict[str, cacerts.LiveCacerts | None]:
    """Each applied (not rendered) cluster's `cacerts` as it is now, by name; None where the API server
    does not answer. The reads run concurrently."""
    applied = [cluster for cluster in clusters if cluster.kubeconfig is not None]

    def one(cluster: ClusterSettings) -> cacerts.LiveCacerts | None:
        try:
            return cacerts.read_live(target_of(cluster, owner))
        except Unreachable:
            return None

    with ThreadPoolExecutor(max_workers=LIVE_READ_THREADS) as pool:
        return dict(zip((cluster.name for cluster in applied), pool.map(one, applied), strict=True))


def target_of(cluster: ClusterSettings, owner: str) -> cacerts.Target:
    assert cluster.kubeconfig is not None
    return cacerts.Target(cluster.name, cluster.kubeconfig, cluster.context, cluster.namespace, owner)


def trust_by_cluster(
    live: Mapping[str, cacerts.LiveCacerts | None], resources: Mapping[str, Any]
) -> dict[str, ClusterTrust]:
    """What each cluster's `cacerts` holds: live where its API server answered, else as recorded. A
    cluster with neither (new, or never written) is left out."""
    found = {name: _trust(name, now, resources) for name, now in live.items()}
    return {name: trust for name, trust in found.items() if trust is not None}


def _trust(name: str, live: cacerts.LiveCacerts | None, resources: Mapping[str, Any]) -> ClusterTrust | None:
    if live is None:
        return recorded_trust(resources, name)
    return trust_of(live.files, live=True) if live.exists else None


def refuse_to_re_root(
    clusters: Sequence[ClusterSettings],
    live: Mapping[str, cacerts.LiveCacerts | None],
    roots: Sequence[str] | None,
    owner: str,
) -> None:
    """Before any resource: a `cacerts` this stack wrote that trusts none of the roots it holds now
    (`roots`, PEM; None when they cannot be told) is from the stack's earlier life (destroyed,
    recreated, restored from an old backup): writing over it would re-root that cluster."""
    for cluster in clusters:
        now = live.get(cluster.name)
        if now is not None and now.owner == owner:
            cacerts.judge(target_of(cluster, owner), now, roots, cluster.replace_foreign_cacerts)


def refuse_two_entries_for_one_cluster(
    clusters: Sequence[ClusterSettings], live: Mapping[str, cacerts.LiveCacerts | None]
) -> None:
    """Two entries whose API servers answer with the same `kube-system` uid are one cluster, whatever
    their URLs: with the same Istio namespace, its `cacerts` would hold only one of their intermediates."""
    seen: dict[tuple[str, str], str] = {}
    for cluster in clusters:
        now = live.get(cluster.name)
        if now is None or now.cluster_uid is None:
            continue
        other = seen.setdefault((now.cluster_uid, cluster.namespace), cluster.name)
        if other != cluster.name:
            raise cacerts.CacertsError(
                f"clusters: {other!r} and {cluster.name!r} reach the same cluster (kube-system uid "
                f"{now.cluster_uid}) and both write Secret {cluster.namespace}/cacerts: one cluster's Secret would "
                "hold only one intermediate. Give each cluster one entry"
            )


def refuse_a_missing_namespace(
    clusters: Sequence[ClusterSettings], live: Mapping[str, cacerts.LiveCacerts | None]
) -> None:
    """Said in the preview, naming the cluster, rather than after a minute of retries in `up`."""
    for index, cluster in enumerate(clusters):
        now = live.get(cluster.name)
        if now is not None and not now.namespace_exists and not cluster.create_namespace:
            raise cacerts.CacertsError(
                f"{cluster.name}: namespace {cluster.namespace} does not exist, so its cacerts cannot be written. "
                f"Install Istio's namespace first, or set createNamespace: true in clusters[{index}]"
            )


def fingerprint(pem: str) -> str:
    """The SHA-256 fingerprint of the PEM's first certificate ("" when it holds none that parses)."""
    certificates = certificates_in(pem)
    return sha256_fingerprint(certificates[0]) if certificates else ""


def fingerprints(pems: Sequence[str]) -> list[str]:
    """The SHA-256 fingerprint of each PEM's first certificate, in order ("" for one that does not parse)."""
    return [fingerprint(pem) for pem in pems]


def _decoded(data: Mapping[str, Any]) -> dict[str, str]:
    files = {}
    for name, value in data.items():
        try:
            files[name] = base64.b64decode(str(value)).decode(errors="replace")
        except (binascii.Error, ValueError):
            continue
    return files
