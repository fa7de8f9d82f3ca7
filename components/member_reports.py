"""What the PKI stack of a split layout reads of each cluster stack: the CSR it asks the PKI to sign, and
what its `cacerts` holds, which gates a root rotation. Each value is checked before it counts, since
another stack's output is only what that stack says.

A cluster stack that reports nothing (not run yet, its state lost) never drops out of a rotation: it
holds the phase where it is until it reports, or until its entry leaves the PKI's `clusters`.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pulumi

from istio_ca.cluster_trust import ClusterTrust, fingerprint
from istio_ca.csr_checks import ExpectedRequest, check_request
from istio_ca.pem import certificates_in
from istio_ca.settings import ClusterSettings
from istio_ca.stack_exchange import ExchangeError, read_exchanges, text_at

MEMBER_EXCHANGE = "istioCaMember"
"""The stack output a cluster stack exports its MeshMember's `exchange` as (its CSR and what cacerts holds)."""
SIGNED_CERT_TYPE_TOKEN = "tls:index/locallySignedCert:LocallySignedCert"


@dataclass(frozen=True)
class MemberReports:
    """What the cluster stacks reported, checked."""

    requests: dict[str, str] = field(default_factory=dict)
    """Per cluster whose stack has run: its CSR (PEM), exactly the intermediate the PKI describes."""
    held: dict[str, ClusterTrust] = field(default_factory=dict)
    """Per cluster whose stack reported its `cacerts`: what it holds (only read during a rotation)."""
    unreported: dict[str, str] = field(default_factory=dict)
    """Per cluster whose `cacerts` cannot be told, during a rotation: why, and what to run."""


def read_member_reports(
    clusters: tuple[ClusterSettings, ...],
    stacks: Mapping[str, str],
    rotating: bool,
    roots: Mapping[int, str],
    issued: Mapping[str, Mapping[str, str]],
) -> MemberReports:
    """Every cluster stack's report, read at once and checked. `rotating`: whether what each `cacerts`
    holds counts (a rotation is half-way); `roots`: the root PEMs the PKI recorded, by generation;
    `issued`: per cluster, each certificate the PKI issued to it (issued_certificates)."""
    reports = MemberReports()
    records = read_exchanges([stacks[cluster.name] for cluster in clusters], MEMBER_EXCHANGE)
    fingerprints = {fingerprint(pem) for pem in roots.values()}
    for cluster, record in zip(clusters, records, strict=True):
        stack = stacks[cluster.name]
        where = f"stack {stack}, output {MEMBER_EXCHANGE}"
        if record is None:
            pulumi.log.warn(f"{cluster.name}: stack {stack} has not run yet: run it, then this stack again")
            if rotating:
                reports.unreported[cluster.name] = f"stack {stack} has not run yet: run it, then this stack"
            continue
        if record.get("cluster") != cluster.name:
            raise ExchangeError(f"{where}: it is cluster {record.get('cluster')!r}'s, not {cluster.name!r}'s")
        csr = text_at(record, ("csrPem",), where)
        check_request(csr, expected_request(cluster), f"{where}.csrPem")
        reports.requests[cluster.name] = csr
        if not rotating:
            continue  # what a cacerts holds counts only during a rotation (a lagging one may trust a retired root)
        issued_at = frozenset(datetime.fromisoformat(start) for start in issued.get(cluster.name, {}))
        trust = _checked_trust(record.get("trust"), f"{where}.trust", fingerprints, issued_at)
        if trust is not None:
            reports.held[cluster.name] = trust
        else:
            reports.unreported[cluster.name] = (
                f"stack {stack} reports no cacerts (none written yet, or its state was lost): run it, then this stack"
            )
    return reports


def expected_request(cluster: ClusterSettings) -> ExpectedRequest:
    """The intermediate the PKI's description gives the cluster, as a request must ask for it."""
    return ExpectedRequest(
        organization=cluster.intermediate.organization,
        common_name=cluster.intermediate.common_name,
        locality=cluster.name,
        dns_names=cluster.dns_names,
        key=cluster.intermediate.key,
    )


def _checked_trust(trust: Any, where: str, roots: set[str], issued: frozenset[datetime]) -> ClusterTrust | None:
    """A cluster stack's report of its `cacerts`: None when it reports none; refused when it names a root
    the PKI never held, or an intermediate the PKI never issued it."""
    if trust is None or (isinstance(trust, dict) and not trust.get("trusted")):
        return None
    if not isinstance(trust, dict):
        raise ExchangeError(f"{where} is {type(trust).__name__}, not the record istio-ca exports there")
    trusted, issuer, issued_at = trust.get("trusted"), trust.get("issuer"), trust.get("issuedAt")
    if not isinstance(trusted, list) or not all(isinstance(value, str) and value in roots for value in trusted):
        raise ExchangeError(f"{where}.trusted: {_shown(trusted)} names a root this PKI stack does not hold")
    if not isinstance(issuer, str) or issuer not in roots:
        raise ExchangeError(f"{where}.issuer: {_shown(issuer)} is not a root this PKI stack holds")
    moment = _moment(issued_at, f"{where}.issuedAt")
    if moment not in issued:
        raise ExchangeError(
            f"{where}.issuedAt: {issued_at} is the NotBefore of no certificate this PKI stack issued to that "
            "cluster: run that stack, then this one"
        )
    return ClusterTrust(trusted=tuple(trusted), issuer=issuer, issued_at=moment, live=False)


def _moment(value: Any, where: str) -> datetime:
    """An RFC 3339 time with its zone, in UTC."""
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
        if moment is not None and moment.tzinfo is not None:
            return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        pass
    raise ExchangeError(f"{where}: {_shown(value)} is not an RFC 3339 time with a zone")


def _shown(value: Any) -> str:
    return repr(value)[:80]


def validity(cert_pem: str) -> dict[str, str]:
    """A certificate's NotBefore -> NotAfter, RFC 3339: as `issued` records it."""
    cert = certificates_in(cert_pem)[0]
    return {cert.not_valid_before_utc.isoformat(): cert.not_valid_after_utc.isoformat()}


def issued_certificates(
    clusters: Sequence[str], memory_clusters: Mapping[str, Any], resources: Mapping[str, Any], pki_type: str
) -> dict[str, dict[str, str]]:
    """Per cluster, each certificate the PKI issued it that has not ended: NotBefore -> NotAfter (RFC 3339),
    from what its last run recorded (`issued`) and the certificate (`<cluster>-cert`, a direct child of the
    component of type `pki_type`, not a VM workload's of the same name) its state holds now."""
    found: dict[str, dict[str, str]] = {
        name: dict(((memory_clusters.get(name) or {}).get("issued")) or {}) for name in clusters
    }
    for urn, resource in resources.items():
        name = urn.rsplit("::", 1)[-1].removesuffix("-cert")
        cert_pem = (resource.get("outputs") or {}).get("certPem")
        signed_here = urn.split("::")[2].endswith(f"{pki_type}${SIGNED_CERT_TYPE_TOKEN}")
        if signed_here and name in found and cert_pem:
            found[name].update(validity(cert_pem))
    now = datetime.now(UTC)
    return {
        name: {start: end for start, end in issued.items() if datetime.fromisoformat(end) > now}
        for name, issued in found.items()
    }
