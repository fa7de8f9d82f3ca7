"""A cluster stack's half of the split layout refuses what belongs to the PKI stack, before registering."""

from __future__ import annotations

import asyncio
import gc
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from pulumi.runtime.settings import SETTINGS

from istio_ca import HostCluster, MeshMember, MeshMemberArgs, MeshPKI, MeshPKIArgs, mesh_member
from istio_ca import cacerts as cacerts_module
from istio_ca.cacerts import CacertsError, LiveCacerts, Target
from istio_ca.certificate import pem_bundle
from istio_ca.config_schema import MeshConfig
from istio_ca.file_export import GIT_IGNORE_ALL
from istio_ca.kube_api import Unreachable
from istio_ca.validation import ConfigError
from tests.program import Recorder, use_mocks
from tests.roots import make_root, sign_certificate

EAST: MeshConfig = {"clusters": [{"name": "east"}]}


def refused(build: Any) -> str:
    recorder = use_mocks()

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def program() -> None:
        build()

    with pytest.raises(ConfigError) as error:
        program()
    assert [r.type for r in recorder.requests.values()] == ["pulumi:pulumi:Stack"]  # nothing registered
    return str(error.value)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"workloads": [{"namespace": "vm"}]}, "workloads: set on the PKI stack's mesh (MeshPKI), not a cluster's"),
        ({"rootRotation": {"phase": "trust-both"}}, "rootRotation: set on the PKI stack's mesh"),
        ({"root": {"days": 10}}, "root: set on the PKI stack's mesh"),
        ({"existingRoot": {"fromCluster": "east"}}, "existingRoot: set on the PKI stack's mesh"),
    ],
    ids=["workloads", "rotation", "root", "adopted root"],
)
def test_a_cluster_stack_refuses_what_belongs_to_the_pki(extra: dict[str, Any], message: str) -> None:
    mesh = cast(MeshConfig, {**EAST, **extra})
    message_given = refused(lambda: MeshMember("east", MeshMemberArgs(mesh=mesh, pki_stack="o/mesh-pki/prod")))
    assert message_given.startswith(message)


def test_a_member_holds_its_own_cluster_only() -> None:
    two: MeshConfig = {"clusters": [{"name": "east"}, {"name": "west"}]}
    message = refused(lambda: MeshMember("east", MeshMemberArgs(mesh=two, pki_stack="organization/mesh-pki/prod")))
    assert message == "clusters: a MeshMember holds one cluster, 'east'"


def test_the_pki_signs_for_exactly_the_stacks_it_is_given_and_reaches_no_cluster(tmp_path: Any) -> None:
    message = refused(lambda: MeshPKI("pki", MeshPKIArgs(mesh=EAST, cluster_stacks={})))
    assert message == "cluster_stacks: [] must name each of the clusters ['east']"
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: a\ncontexts: [{name: a, context: {cluster: a}}]\n"
        "clusters: [{name: a, cluster: {server: 'https://127.0.0.1:1'}}]\n"
    )
    mesh: MeshConfig = {"clusters": [{"name": "east", "kubeconfig": str(kubeconfig)}]}
    message = refused(lambda: MeshPKI("pki", MeshPKIArgs(mesh=mesh, cluster_stacks={"east": "o/p/east"})))
    assert message == "clusters: 'east' has a kubeconfig; the PKI stack reaches no cluster"


def test_the_pki_never_re_issues_an_ended_root_implicitly() -> None:
    """As in one stack: the provider would replace it, and every cluster's bundle with it, in one step."""
    recorder = use_mocks()
    recorder.last_resources = {
        "urn:pulumi:unit::istio-ca::istio-ca:index:MeshPKI::pki": {
            "type": "istio-ca:index:MeshPKI",
            "outputs": {"root_not_after": "2020-01-01T00:00:00Z"},
        }
    }
    recorder.other_stacks["o/mesh-cluster/east"] = {}

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def program() -> None:
        MeshPKI("pki", MeshPKIArgs(mesh=EAST, cluster_stacks={"east": "o/mesh-cluster/east"}))

    with pytest.raises(ConfigError, match="the root ended on 2020-01-01T00:00:00Z: istio-ca will not re-issue it"):
        program()


# A member that writes `cacerts`: the PKI stack's output holds real certificates, and the mocks give the
# member's key a real public key, so the certificate is for it (`_generation_for` compares the two).

PKI = "o/mesh-pki/prod"


@dataclass(frozen=True)
class Pki:
    """A PKI stack's roots: `signing` signs east's intermediate; the bundle holds `trusted`, in order."""

    signing: tuple[str, str]
    trusted: tuple[str, ...]


def private(key_pem: str) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey)
    return key


def signed_by(recorder: Recorder, monkeypatch: pytest.MonkeyPatch, pki: Pki) -> None:
    """Have the PKI stack export east's intermediate, signed for the key the mocks give `east-key`."""
    key = ec.generate_private_key(ec.SECP256R1())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    mocked = recorder.new_resource

    def new_resource(args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        resource_id, state = mocked(args)
        if args.name == "east-key":
            state.update(privateKeyPem=key_pem, publicKeyPem=public_pem)
        return resource_id, state

    monkeypatch.setattr(recorder, "new_resource", new_resource)
    root_pem, root_key_pem = pki.signing
    root = x509.load_pem_x509_certificate(root_pem.encode())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Intermediate CA")])
    cert = sign_certificate(name, key, root.subject, private(root_key_pem), days=365, ca=True, path_length=0)
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    recorder.other_stacks[PKI] = {
        "istioCaPki": {
            "rootCertPem": root_pem,
            "trustedRootsPem": pem_bundle(list(pki.trusted)),
            "clusters": {"east": {"certPem": cert_pem, "certChainPem": pem_bundle([cert_pem, root_pem])}},
        }
    }


def run_member(build: Callable[[], MeshMember]) -> None:
    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def program() -> pulumi.Output[Any]:
        member = build()
        return pulumi.Output.all(member.exchange, member.cacerts_uid, member.cacerts_key_generation)

    program()


def drop_the_refused_run() -> None:
    """Let the refused run's pending outputs fail with the refusal and collect them now: asyncio would report
    each as never retrieved at exit, far from this test."""
    loop = asyncio.get_event_loop()
    handler = loop.get_exception_handler()
    loop.set_exception_handler(lambda loop, context: None)
    try:
        pending = asyncio.all_tasks(loop)
        if pending:
            loop.run_until_complete(asyncio.wait(pending, timeout=10))
        SETTINGS.outputs.clear()
        SETTINGS.rpc_manager.clear()
        use_mocks()
        gc.collect()
    finally:
        loop.set_exception_handler(handler)


def collect_warnings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    warnings: list[str] = []
    monkeypatch.setattr(pulumi.log, "warn", lambda message, *args, **kwargs: warnings.append(message))
    return warnings


@pytest.mark.parametrize("signed", [False, True], ids=["before the pki signed", "signed"])
def test_a_rendered_member_protects_its_directory_on_up_before_a_key_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signed: bool
) -> None:
    recorder = use_mocks()
    if signed:
        root = make_root(ecdsa=True)
        signed_by(recorder, monkeypatch, Pki(signing=root, trusted=(root[0],)))
    else:
        recorder.other_stacks[PKI] = {}  # made, not run yet
    directory = tmp_path / "rendered" / "east"
    directory.mkdir(parents=True)
    os.chmod(directory, 0o755)  # made by hand, readable by all
    mesh: MeshConfig = {"renderDirectory": str(tmp_path / "rendered"), "clusters": [{"name": "east"}]}
    run_member(lambda: MeshMember("east", MeshMemberArgs(mesh=mesh, pki_stack=PKI)))
    if signed:  # the key goes there once the provider renders `cacerts`
        assert recorder.named("east-k8s").inputs["renderYamlToDirectory"] == str(directory)
    assert ("east-cacerts" in recorder.requests) == signed
    # Protected by the program itself, before the provider writes anything (under the mocks it writes nothing).
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert [p.name for p in directory.iterdir()] == [".gitignore"]
    assert (directory / ".gitignore").read_text() == GIT_IGNORE_ALL


def test_a_rendered_member_says_in_preview_that_its_bundle_cannot_be_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warnings = collect_warnings(monkeypatch)
    recorder = use_mocks(preview=True)
    root = make_root(ecdsa=True)
    signed_by(recorder, monkeypatch, Pki(signing=root, trusted=(root[0],)))
    mesh: MeshConfig = {"renderDirectory": str(tmp_path / "rendered"), "clusters": [{"name": "east"}]}
    run_member(lambda: MeshMember("east", MeshMemberArgs(mesh=mesh, pki_stack=PKI)))
    assert "east-cacerts" in recorder.requests
    rendered = [line for line in warnings if "is rendered" in line]
    assert len(rendered) == 1, warnings
    assert rendered[0].startswith(
        "east is rendered, so its trust bundle cannot be checked against the one the cluster holds"
    )
    assert not (tmp_path / "rendered").exists()  # a preview writes nothing


def test_a_rendered_member_the_pki_has_not_signed_gives_no_bundle_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warnings = collect_warnings(monkeypatch)
    recorder = use_mocks(preview=True)
    recorder.other_stacks[PKI] = {}  # made, not run yet
    mesh: MeshConfig = {"renderDirectory": str(tmp_path / "rendered"), "clusters": [{"name": "east"}]}
    run_member(lambda: MeshMember("east", MeshMemberArgs(mesh=mesh, pki_stack=PKI)))
    assert warnings == [f"east: stack {PKI} has not signed this cluster's request yet: run it next, then this stack"]
    assert "east-cacerts" not in recorder.requests


HOST_KUBECONFIG = "apiVersion: v1\nkind: Config\n"


def host_member(kubeconfig: str | None = HOST_KUBECONFIG) -> MeshMember:
    host = HostCluster(provider=k8s.Provider("east-host", enable_secret_mutable=True))
    if kubeconfig is not None:
        host["kubeconfig"] = kubeconfig
    return MeshMember("east", MeshMemberArgs(mesh=EAST, pki_stack=PKI, host_cluster=host))


@pytest.mark.parametrize("preview", [True, False])
@pytest.mark.parametrize(
    ("held", "refused"),
    [
        ("old+a", True),  # trust-both of another rotation: shares a root (the takeover guard lets it by)
        ("a", False),  # the bundle before this rotation's trust-both
        ("a+b", False),  # the bundle after it
        (None, False),  # no cacerts yet
        ("unreachable", False),  # the write fails on its own
    ],
)
def test_a_host_members_bundle_is_checked_through_the_hosts_kubeconfig(
    monkeypatch: pytest.MonkeyPatch, held: str | None, refused: bool, preview: bool
) -> None:
    (a, a_key), (b, _), (old, _) = make_root(ecdsa=True), make_root(ecdsa=True), make_root(ecdsa=True)
    roots = {"a": a, "b": b, "old": old}
    read: list[Target] = []

    def live(target: Target) -> LiveCacerts:
        if held == "unreachable":
            raise Unreachable("the API server of east does not answer")
        if held is None:
            return LiveCacerts(exists=False)
        bundle = pem_bundle([roots[name] for name in held.split("+")])
        owner = "organization/istio-ca/unit"  # this stack's: the takeover guard judges it by its roots
        return LiveCacerts(exists=True, owner=owner, type="Opaque", files={"root-cert.pem": bundle})

    def read_live(target: Target) -> LiveCacerts:
        read.append(target)
        return live(target)

    monkeypatch.setattr(mesh_member, "read_live", read_live)
    monkeypatch.setattr(cacerts_module, "read_live", live)  # the takeover guard's read
    recorder = use_mocks(preview=preview)
    signed_by(recorder, monkeypatch, Pki(signing=(a, a_key), trusted=(a, b)))  # trust-both: a still signs
    if refused:
        with pytest.raises(CacertsError, match="neither holds nor is held by the one cacerts holds now"):
            run_member(host_member)
        drop_the_refused_run()
    else:
        run_member(host_member)
        assert recorder.requests["east-cacerts"].provider.split("::")[-2] == "east-host"
    assert [(t.cluster, t.kubeconfig, t.context, t.namespace) for t in read] == [
        ("east", HOST_KUBECONFIG, None, "istio-system")
    ]


def test_a_host_member_without_a_kubeconfig_says_in_preview_that_its_bundle_cannot_be_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    warnings = collect_warnings(monkeypatch)

    def no_read(target: Target) -> LiveCacerts:
        raise AssertionError(f"{target.cluster} was read without a kubeconfig")

    monkeypatch.setattr(mesh_member, "read_live", no_read)
    monkeypatch.setattr(cacerts_module, "read_live", no_read)
    recorder = use_mocks(preview=True)
    root = make_root(ecdsa=True)
    signed_by(recorder, monkeypatch, Pki(signing=root, trusted=(root[0],)))
    run_member(lambda: host_member(kubeconfig=None))
    assert recorder.requests["east-cacerts"].provider.split("::")[-2] == "east-host"
    assert warnings == [
        "east is reached through the host's provider alone, so its trust bundle cannot be checked against the one "
        "the cluster holds: give host_cluster a kubeconfig"
    ]


PKI_URN = "urn:pulumi:unit::istio-ca::istio-ca:index:MeshPKI::pki"


def rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    ("ends_in", "warning"),
    [
        (timedelta(hours=1), "the intermediate CA of east is inside its renewal window (it ends {})"),
        (timedelta(hours=-1), "the intermediate CA of east expired on {}"),
        (timedelta(days=400), None),  # the default window is the last third of 730 days
    ],
    ids=["due", "expired", "not due"],
)
def test_the_pki_warns_of_an_intermediate_due_for_renewal(
    monkeypatch: pytest.MonkeyPatch, ends_in: timedelta, warning: str | None
) -> None:
    """As the single stack does: from the date its last run recorded, before any cluster stack has run."""
    warnings = collect_warnings(monkeypatch)
    not_after = rfc3339(datetime.now(UTC) + ends_in)
    recorder = use_mocks(preview=True)
    recorder.last_resources = {
        PKI_URN: {"type": "istio-ca:index:MeshPKI", "outputs": {"clusters": {"east": {"notAfter": not_after}}}}
    }
    recorder.other_stacks["o/mesh-cluster/east"] = {}  # made, not run yet: nothing to sign

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def program() -> pulumi.Output[Any]:
        return MeshPKI("pki", MeshPKIArgs(mesh=EAST, cluster_stacks={"east": "o/mesh-cluster/east"})).exchange

    program()
    assert "east-cert" not in recorder.requests
    due = [line for line in warnings if "the intermediate CA of east" in line]
    if warning is None:
        assert due == [], warnings
    else:
        assert len(due) == 1, warnings
        assert due[0].startswith(warning.format(not_after)), due


def test_the_pki_adopts_a_root_given_in_its_config_not_one_read_from_a_cluster() -> None:
    mesh: MeshConfig = {**EAST, "existingRoot": {"fromCluster": "east"}}
    message = refused(lambda: MeshPKI("pki", MeshPKIArgs(mesh=mesh, cluster_stacks={"east": "o/mesh-cluster/east"})))
    assert message == (
        "existingRoot.fromCluster: the PKI stack reaches no cluster; give the root as existingRoot.certPem "
        "and existingRoot.keyPem (a secret) instead"
    )
