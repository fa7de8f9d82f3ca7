"""What the PKI stack of a split layout reads of each cluster stack: the CSR, and, during a root rotation, what
the cluster's `cacerts` holds. A report counts only for roots the PKI holds and an intermediate it issued; a
cluster that reports nothing holds the rotation where it is."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pulumi
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from istio_ca import MeshPKI, MeshPKIArgs
from istio_ca.cluster_trust import ClusterTrust, fingerprint
from istio_ca.config import parse_settings
from istio_ca.config_schema import KeyAlgorithm, MeshConfig, RootRotationPhase
from istio_ca.member_reports import MemberReports, expected_request, issued_certificates, read_member_reports
from istio_ca.rotation import RootRotationState
from istio_ca.settings import ClusterSettings
from istio_ca.stack_exchange import ExchangeError
from tests.program import Recorder, fake_cert, use_mocks
from tests.roots import make_intermediate, make_root

MESH: MeshConfig = {"clusters": [{"name": "east"}], "intermediate": {"keyAlgorithm": KeyAlgorithm.ECDSA}}
EAST = parse_settings(MESH, frozenset({"east"})).clusters[0]
STACK = "organization/mesh-cluster/east"
WHERE = f"stack {STACK}, output istioCaMember.trust"

OLD_ROOT, OLD_ROOT_KEY = make_root(organization="old root", ecdsa=True)
NEW_ROOT, _ = make_root(organization="new root", ecdsa=True)
OLD, NEW = fingerprint(OLD_ROOT), fingerprint(NEW_ROOT)
FORGED = fingerprint(make_root(organization="a root the PKI never held", ecdsa=True)[0])

ISSUED_AT = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
"""The NotBefore of the intermediate the PKI issued to east."""
ISSUED = {"east": {ISSUED_AT.isoformat(): (ISSUED_AT + timedelta(days=730)).isoformat()}}
TRUST_BOTH = {"trusted": [OLD, NEW], "issuer": OLD, "issuedAt": ISSUED_AT.isoformat()}


def csr_for(cluster: ClusterSettings) -> str:
    """A request exactly as the cluster stack's CertRequest makes it for the intermediate the PKI describes."""
    expected = expected_request(cluster)
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey = (
        rsa.generate_private_key(65537, expected.key.size)
        if expected.key.algorithm == "RSA"
        else ec.generate_private_key({256: ec.SECP256R1(), 384: ec.SECP384R1()}[expected.key.size])
    )
    subject = x509.Name([x509.NameAttribute(oid, value) for oid, value in expected.subject.items()])
    names = x509.SubjectAlternativeName([x509.DNSName(name) for name in expected.dns_names])
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject).add_extension(names, critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


CSR = csr_for(EAST)


def member(trust: Any = TRUST_BOTH, cluster: str = "east", csr: str = CSR) -> dict[str, Any]:
    """A cluster stack's outputs: its MeshMember's exchange as `istioCaMember`, with `trust` (`...`: no `trust`)."""
    record: dict[str, Any] = {"cluster": cluster, "csrPem": csr}
    if trust is not ...:
        record["trust"] = trust
    return {"istioCaMember": record}


def read(outputs: dict[str, Any], rotating: bool = True) -> MemberReports:
    """read_member_reports of east, whose stack has `outputs`, against the roots of generations 1 and 2."""
    recorder = use_mocks()
    recorder.other_stacks[STACK] = outputs
    found: list[MemberReports] = []

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def program() -> None:
        roots = {1: OLD_ROOT, 2: NEW_ROOT}
        found.append(read_member_reports((EAST,), {"east": STACK}, rotating=rotating, roots=roots, issued=ISSUED))

    program()
    return found[0]


@pytest.mark.parametrize(
    "trust",
    [
        TRUST_BOTH,
        {"trusted": [OLD, NEW], "issuer": NEW, "issuedAt": ISSUED_AT.isoformat()},
        {**TRUST_BOTH, "issuedAt": ISSUED_AT.strftime("%Y-%m-%dT%H:%M:%SZ")},
        {**TRUST_BOTH, "issuedAt": (ISSUED_AT + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S+02:00")},
    ],
    ids=["trust-both", "switch", "issuedAt in Z", "issuedAt in +02:00"],
)
def test_a_true_report_counts_during_a_rotation(trust: dict[str, Any]) -> None:
    reports = read(member(trust))
    assert reports.held == {
        "east": ClusterTrust(trusted=tuple(trust["trusted"]), issuer=trust["issuer"], issued_at=ISSUED_AT, live=False)
    }
    assert reports.held["east"].issued_at == ISSUED_AT  # the same moment, in any zone it is written in
    assert reports.unreported == {}
    assert reports.requests == {"east": CSR}


def test_a_stack_not_run_yet_holds_the_rotation_and_asks_for_nothing() -> None:
    reports = read({})
    assert reports.unreported == {"east": f"stack {STACK} has not run yet: run it, then this stack"}
    assert reports.held == {}
    assert "east" not in reports.requests


@pytest.mark.parametrize(
    "trust", [..., None, {"trusted": [], "issuer": None}, {}], ids=["no trust", "null", "no roots", "empty"]
)
def test_a_report_of_no_cacerts_holds_the_rotation(trust: Any) -> None:
    reports = read(member(trust))
    assert "reports no cacerts" in reports.unreported["east"]
    assert reports.unreported["east"].startswith(f"stack {STACK} ")
    assert reports.held == {}
    assert reports.requests == {"east": CSR}  # its CSR is still signed


@pytest.mark.parametrize(
    ("trust", "field", "message"),
    [
        ({**TRUST_BOTH, "trusted": [OLD, FORGED]}, ".trusted", "names a root this PKI stack does not hold"),
        ({**TRUST_BOTH, "trusted": OLD}, ".trusted", "names a root this PKI stack does not hold"),
        ({**TRUST_BOTH, "issuer": FORGED}, ".issuer", "is not a root this PKI stack holds"),
        ({**TRUST_BOTH, "issuer": None}, ".issuer", "None is not a root this PKI stack holds"),
        ({**TRUST_BOTH, "issuedAt": "2026-01-01T00:00:00"}, ".issuedAt", "is not an RFC 3339 time with a zone"),
        ({**TRUST_BOTH, "issuedAt": "yesterday"}, ".issuedAt", "'yesterday' is not an RFC 3339 time with a zone"),
        ({**TRUST_BOTH, "issuedAt": 1767225600}, ".issuedAt", "is not an RFC 3339 time with a zone"),
        ({**TRUST_BOTH, "issuedAt": "9999-12-31T23:59:59-01:00"}, ".issuedAt", "is not an RFC 3339 time with a zone"),
        ({k: v for k, v in TRUST_BOTH.items() if k != "issuedAt"}, ".issuedAt", "None is not an RFC 3339 time"),
        (
            {**TRUST_BOTH, "issuedAt": (ISSUED_AT + timedelta(days=2)).isoformat()},
            ".issuedAt",
            "is the NotBefore of no certificate this PKI stack issued to that cluster",
        ),
        (
            {**TRUST_BOTH, "issuedAt": (ISSUED_AT - timedelta(seconds=1)).isoformat()},
            ".issuedAt",
            "is the NotBefore of no certificate this PKI stack issued to that cluster",
        ),
        ("trust-both", "", "is str, not the record istio-ca exports there"),
        ([OLD, NEW], "", "is list, not the record istio-ca exports there"),
    ],
    ids=[
        "forged root trusted",
        "trusted not a list",
        "forged issuer",
        "no issuer",
        "no zone",
        "not a time",
        "a number",
        "out of range",
        "no issuedAt",
        "in the future",
        "a second off",
        "trust text",
        "trust list",
    ],
)
def test_a_report_the_pki_cannot_vouch_for_is_refused_in_one_line(trust: Any, field: str, message: str) -> None:
    with pytest.raises(ExchangeError) as error:  # never a TypeError or ValueError with a stack trace
        read(member(trust))
    given = str(error.value)
    assert given.startswith(f"{WHERE}{field}:" if field else f"{WHERE} is ")
    assert message in given
    assert "\n" not in given


def test_outside_a_rotation_what_cacerts_holds_is_not_read() -> None:
    """A cluster lagging after a rotation may still trust a retired root: that is no reason to refuse it."""
    forged = read(member({"trusted": [FORGED], "issuer": FORGED, "issuedAt": "2026-01-01T00:00:00"}), rotating=False)
    assert (forged.held, forged.unreported, forged.requests) == ({}, {}, {"east": CSR})
    not_run = read({}, rotating=False)
    assert (not_run.held, not_run.unreported, not_run.requests) == ({}, {}, {})


SIGNED_CERT_URN = (
    "urn:pulumi:unit::istio-ca::istio-ca:index:MeshPKI$tls:index/locallySignedCert:LocallySignedCert::{}-cert"
)


def test_issued_certificates_are_the_recorded_ones_and_the_one_in_the_state_until_they_end() -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    current, _ = make_intermediate(OLD_ROOT, OLD_ROOT_KEY)
    loaded = x509.load_pem_x509_certificate(current.encode())
    in_state = {loaded.not_valid_before_utc.isoformat(): loaded.not_valid_after_utc.isoformat()}
    earlier = {(now - timedelta(days=400)).isoformat(): (now + timedelta(days=330)).isoformat()}
    ended = {(now - timedelta(days=731)).isoformat(): (now - timedelta(days=1)).isoformat()}
    memory = {
        "east": {"certPem": "what the last run exported", "issued": {**earlier, **ended}},
        "west": {"issued": ended},
        "north": None,
        "gone": {"issued": earlier},  # left the mesh: nothing is read for it
    }
    signed = "tls:index/locallySignedCert:LocallySignedCert"
    resources = {
        SIGNED_CERT_URN.format("east"): {"type": signed, "outputs": {"certPem": current}},
        # The state has it, the record not yet (its last run failed half-way).
        SIGNED_CERT_URN.format("south"): {"type": signed, "outputs": {"certPem": current}},
        SIGNED_CERT_URN.format("west"): {"type": signed, "outputs": {}},
        SIGNED_CERT_URN.format("gone"): {"type": signed, "outputs": {"certPem": current}},
        "urn:pulumi:unit::istio-ca::istio-ca:index:MeshPKI$istio-ca:index:RootCA"
        "$tls:index/selfSignedCert:SelfSignedCert::root-cert": {
            "type": "tls:index/selfSignedCert:SelfSignedCert",
            "outputs": {"certPem": OLD_ROOT},
        },
        # A VM namespace named like a cluster: its workload certificate is not an intermediate the PKI issued.
        "urn:pulumi:unit::istio-ca::istio-ca:index:MeshPKI$istio-ca:index:RootCA$istio-ca:index:WorkloadCerts"
        f"${signed}::north-cert": {"type": signed, "outputs": {"certPem": current}},
    }
    assert issued_certificates(["east", "north", "south", "west"], memory, resources, "istio-ca:index:MeshPKI") == {
        "east": {**earlier, **in_state},
        "north": {},
        "south": in_state,
        "west": {},
    }


PKI_URN = "urn:pulumi:unit::istio-ca::istio-ca:index:MeshPKI::pki"
ROOT_CERT_URN = (
    "urn:pulumi:unit::istio-ca::istio-ca:index:MeshPKI$istio-ca:index:RootCA"
    "$tls:index/selfSignedCert:SelfSignedCert::{}"
)
TWO_CLUSTERS: MeshConfig = {
    "clusters": [{"name": "east"}, {"name": "west"}],
    "intermediate": {"keyAlgorithm": KeyAlgorithm.ECDSA},
    "rootRotation": {"phase": RootRotationPhase.SWITCH},
}
STACKS = {"east": STACK, "west": "organization/mesh-cluster/west"}


def preview_pki(west_trust: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[Recorder, list[str]]:
    """A preview of the PKI stack asked for `switch` after its last run applied `trust-both`: east's stack
    reports trust-both truthfully, west's reports `west_trust`. The recorder and the warnings.

    A preview, with each certificate the PKI signs unknown, as the engine gives one it has yet to sign: the
    mocks would answer with a fake PEM, which MeshPKI's check of each signed certificate (rightly) refuses.
    The phase is chosen before anything registers, from the state and the reports alone, so a preview shows it.
    """
    recorder = use_mocks(preview=True)
    answer = recorder.new_resource

    def new_resource(args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        resource_id, state = answer(args)
        if args.typ == "tls:index/locallySignedCert:LocallySignedCert":
            del state["certPem"]
        return resource_id, state

    monkeypatch.setattr(recorder, "new_resource", new_resource)
    generations = RootRotationState(trusted=(1, 2), signing=1, phase="trust-both").to_output()
    recorder.last_resources = {
        PKI_URN: {
            "type": "istio-ca:index:MeshPKI",
            "outputs": {
                "root_generations": generations,
                "clusters": {name: {"issued": ISSUED["east"]} for name in STACKS},
            },
        },
        ROOT_CERT_URN.format("root-cert"): {
            "type": "tls:index/selfSignedCert:SelfSignedCert",
            "outputs": {"certPem": OLD_ROOT},
        },
        ROOT_CERT_URN.format("root-g2-cert"): {
            "type": "tls:index/selfSignedCert:SelfSignedCert",
            "outputs": {"certPem": NEW_ROOT},
        },
    }
    settings = parse_settings(TWO_CLUSTERS, frozenset(STACKS))
    csrs = {cluster.name: csr_for(cluster) for cluster in settings.clusters}
    recorder.other_stacks[STACKS["east"]] = member(TRUST_BOTH, "east", csrs["east"])
    recorder.other_stacks[STACKS["west"]] = member(west_trust, "west", csrs["west"])
    warnings: list[str] = []
    monkeypatch.setattr(pulumi.log, "warn", lambda message, *args, **kwargs: warnings.append(message))

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def program() -> None:
        MeshPKI("pki", MeshPKIArgs(mesh=TWO_CLUSTERS, cluster_stacks=STACKS))

    program()
    return recorder, warnings


@pytest.mark.parametrize(
    "west_trust",
    [..., {"trusted": [OLD], "issuer": OLD, "issuedAt": ISSUED_AT.isoformat()}],
    ids=["west reports no cacerts", "west trusts only the old root"],
)
def test_a_cluster_stack_that_does_not_report_trust_both_holds_every_cluster_at_it(
    west_trust: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder, warnings = preview_pki(west_trust, monkeypatch)
    generations = recorder.component_outputs["pki"]["root_generations"]
    assert (generations["phase"], generations["signing"]) == ("trust-both", 1)
    assert recorder.named("east-cert").inputs["caCertPem"] == fake_cert("root-cert")  # the old root still signs
    waiting = [line for line in warnings if "waits for west" in line]
    assert len(waiting) == 1
    assert STACKS["west"] in waiting[0]
    assert "every cluster stays at 'trust-both'" in waiting[0]


def test_once_every_cluster_stack_reports_trust_both_the_new_root_signs(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder, warnings = preview_pki(TRUST_BOTH, monkeypatch)
    generations = recorder.component_outputs["pki"]["root_generations"]
    assert (generations["phase"], generations["signing"]) == ("switch", 2)
    assert recorder.named("east-cert").inputs["caCertPem"] == fake_cert("root-g2-cert")
    assert recorder.named("west-cert").inputs["caCertPem"] == fake_cert("root-g2-cert")
    assert not [line for line in warnings if "waits for" in line]
