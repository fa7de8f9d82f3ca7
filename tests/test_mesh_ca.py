"""MeshCA composed by a host stack: its own record in the state, the host's providers, its errors."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_tls as tls
import pytest

from istio_ca import HostCluster, MeshCA, MeshCAArgs
from istio_ca import cacerts as cacerts_module
from istio_ca.cacerts import CacertsError, LiveCacerts
from istio_ca.config_schema import MeshConfig, RootRotationPhase
from istio_ca.rotation import RootRotationState, RotationError
from istio_ca.validation import ConfigError
from tests.program import Recorder, run_program, use_mocks
from tests.roots import make_intermediate, make_root
from tests.test_cluster_trust import cacerts_files

EAST: MeshConfig = {"clusters": [{"name": "east"}]}


def run_host(
    build: Callable[[], MeshCA], preview: bool = False, last_resources: dict[str, Any] | None = None
) -> Recorder:
    """Run `build` as a host stack's program under the mocks; return what it registered."""
    recorder = use_mocks(preview)
    recorder.last_resources = last_resources or {}

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def program() -> pulumi.Output[Any]:
        mesh = build()
        return pulumi.Output.all(mesh.root_cert_pem, mesh.cluster_cas["east"].cacerts_uid)

    program()
    return recorder


def east_mesh(mutable: bool = True, kubeconfig: pulumi.Input[str] | None = None) -> MeshCA:
    provider = k8s.Provider("east-host", enable_secret_mutable=mutable)
    host = HostCluster(provider=provider)
    if kubeconfig is not None:
        host["kubeconfig"] = kubeconfig
    return MeshCA("mesh", MeshCAArgs(mesh=EAST, host_clusters={"east": host}))


def test_cacerts_goes_through_the_hosts_provider_and_no_provider_is_made() -> None:
    recorder = run_host(east_mesh)
    secret = recorder.requests["east-cacerts"]
    assert secret.provider.split("::")[-2] == "east-host"
    assert not recorder.of_type("pulumi:providers:kubernetes")[1:]  # the host's only
    assert "east-k8s" not in recorder.requests


@pytest.mark.parametrize("preview", [True, False])
def test_a_host_provider_that_re_creates_secrets_is_refused(preview: bool) -> None:
    with pytest.raises(CacertsError, match="'east-host' does not set enable_secret_mutable=True"):
        run_host(lambda: east_mesh(mutable=False), preview=preview)


def test_the_guard_reads_the_cluster_through_the_hosts_kubeconfig(monkeypatch: pytest.MonkeyPatch) -> None:
    read: list[cacerts_module.Target] = []

    def read_live(target: cacerts_module.Target) -> LiveCacerts:
        read.append(target)
        return LiveCacerts(exists=False)

    monkeypatch.setattr(cacerts_module, "read_live", read_live)
    run_host(lambda: east_mesh(kubeconfig="apiVersion: v1\nkind: Config\n"))
    assert [(t.cluster, t.kubeconfig, t.namespace) for t in read] == [
        ("east", "apiVersion: v1\nkind: Config\n", "istio-system")
    ]


def test_a_kubeconfig_unknown_at_preview_defers_the_guard_to_up(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_read(target: cacerts_module.Target) -> LiveCacerts:
        raise AssertionError("the guard read a cluster whose kubeconfig is not known yet")

    monkeypatch.setattr(cacerts_module, "read_live", no_read)

    def created_in_the_same_stack() -> MeshCA:
        # Stands in for a cluster the host creates in this run: an output the preview does not know.
        unknown = tls.PrivateKey("cluster-credentials", algorithm="ED25519").public_key_openssh
        return east_mesh(kubeconfig=unknown)

    recorder = run_host(created_in_the_same_stack, preview=True)
    assert "east-cacerts" in recorder.requests  # planned, not refused


def test_errors_name_the_arguments_not_the_programs_config_keys() -> None:
    recorder = use_mocks()

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def refused() -> None:
        MeshCA("mesh", MeshCAArgs(mesh={"clusters": [{"name": "East"}]}))

    with pytest.raises(ConfigError) as error:
        refused()
    assert str(error.value).startswith("clusters[0].name: 'East' is not a valid cluster name")
    assert "istio-ca:" not in str(error.value)
    assert [request.type for request in recorder.requests.values()] == ["pulumi:pulumi:Stack"]  # no component
    provider = k8s.Provider.__new__(k8s.Provider)  # never registered: refused before any resource
    with pytest.raises(ConfigError, match=r"host_clusters: \['west'\] are not among the clusters of the mesh"):
        run_host(lambda: MeshCA("mesh", MeshCAArgs(mesh=EAST, host_clusters={"west": HostCluster(provider=provider)})))


class Infra(pulumi.ComponentResource):
    """A host's own component, with the mesh inside it."""

    def __init__(self) -> None:
        super().__init__("acme:index:Infra", "infra")
        self.mesh = MeshCA(
            "pki",
            MeshCAArgs(mesh={**EAST, "rootRotation": {"phase": RootRotationPhase.SWITCH}}),
            opts=pulumi.ResourceOptions(parent=self),
        )


def record(urn_type: str, name: str, generations: RootRotationState) -> dict[str, Any]:
    urn = f"urn:pulumi:unit::istio-ca::{urn_type}::{name}"
    return {urn: {"type": "istio-ca:index:MeshCA", "outputs": {"root_generations": generations.to_output()}}}


def test_the_mesh_reads_its_own_record_and_no_other() -> None:
    trust_both = RootRotationState(trusted=(1, 2), signing=1, phase="trust-both")
    retired = RootRotationState(trusted=(2,), signing=2, phase="retire")
    last = {
        **record("acme:index:Infra$istio-ca:index:MeshCA", "pki", trust_both),
        **record("istio-ca:index:MeshCA", "pki", retired),  # another mesh, at the stack's top level
        **record("acme:index:Infra$istio-ca:index:MeshCA", "mesh", retired),  # another name
    }
    recorder = run_host(lambda: Infra().mesh, last_resources=last)
    # `switch` follows only the trust-both its own record holds: generation 2 signs.
    assert {r.name for r in recorder.of_type("tls:index/selfSignedCert:SelfSignedCert")} == {
        "root-cert",
        "root-g2-cert",
    }
    assert (
        recorder.named("east-cert")
        .inputs["caCertPem"]
        .endswith("fake-cert-of-root-g2-cert\n-----END CERTIFICATE-----\n")
    )


def test_a_stack_the_program_made_before_meshca_is_read_once_from_its_stack_outputs() -> None:
    trust_both = RootRotationState(trusted=(1, 2), signing=1, phase="trust-both")
    config = {**EAST, "rootRotation": {"phase": "switch"}}
    run = run_program(config, program_outputs={"rootGenerations": trust_both.to_output()})
    assert "root-g2-cert" in run.recorder.requests
    # Once the mesh has a record of its own, the stack outputs no longer count.
    retired = RootRotationState(trusted=(2,), signing=2, phase="retire")
    with pytest.raises(RotationError, match="'switch' after 'retire'"):
        run_program(
            config,
            program_outputs={"rootGenerations": trust_both.to_output()},
            last_outputs={"rootGenerations": retired.to_output()},
        )


def test_a_cluster_known_by_its_provider_alone_is_gated_by_its_recorded_cacerts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No kubeconfig to read it through: the gate reads what the state recorded for its `cacerts`."""
    warnings: list[str] = []
    monkeypatch.setattr(pulumi.log, "warn", lambda message, *args, **kwargs: warnings.append(message))
    old, old_key = make_root(ecdsa=True)
    new, _ = make_root(ecdsa=True)
    intermediate, _ = make_intermediate(old, old_key)
    mesh_type = "istio-ca:index:MeshCA"
    beneath = f"urn:pulumi:unit::istio-ca::{mesh_type}$istio-ca:index:RootCA"
    files = cacerts_files(intermediate, old, old)  # still trusts the old root alone: it missed trust-both
    trust_both = RootRotationState(trusted=(1, 2), signing=1, phase="trust-both")
    last = {
        **record(mesh_type, "mesh", trust_both),
        f"{beneath}$istio-ca:index:ClusterCA$kubernetes:core/v1:Secret::east-cacerts": {
            "type": "kubernetes:core/v1:Secret",
            "outputs": {"data": {name: base64.b64encode(text.encode()).decode() for name, text in files.items()}},
        },
        f"{beneath}$tls:index/selfSignedCert:SelfSignedCert::root-cert": {
            "type": "tls:index/selfSignedCert:SelfSignedCert",
            "outputs": {"certPem": old},
        },
        f"{beneath}$tls:index/selfSignedCert:SelfSignedCert::root-g2-cert": {
            "type": "tls:index/selfSignedCert:SelfSignedCert",
            "outputs": {"certPem": new},
        },
    }

    def switching() -> MeshCA:
        provider = k8s.Provider("east-host", enable_secret_mutable=True)
        mesh: MeshConfig = {**EAST, "rootRotation": {"phase": RootRotationPhase.SWITCH}}
        return MeshCA("mesh", MeshCAArgs(mesh=mesh, host_clusters={"east": HostCluster(provider=provider)}))

    recorder = run_host(switching, last_resources=last)
    assert any(line.startswith("rootRotation.phase 'switch' waits for east") for line in warnings), warnings
    # Held at trust-both: the old root still signs east's intermediate.
    assert "fake-cert-of-root-cert\n" in recorder.named("east-cert").inputs["caCertPem"]


def test_a_root_adopted_from_a_host_cluster_is_read_through_the_hosts_provider() -> None:
    def adopting() -> MeshCA:
        provider = k8s.Provider("east-host", enable_secret_mutable=True)
        mesh: MeshConfig = {**EAST, "existingRoot": {"fromCluster": "east"}}
        return MeshCA("mesh", MeshCAArgs(mesh=mesh, host_clusters={"east": HostCluster(provider=provider)}))

    recorder = use_mocks(preview=True)

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def program() -> pulumi.Output[Any]:
        return adopting().root_cert_pem

    program()
    read = recorder.requests["root-secret"]
    assert read.provider.split("::")[-2] == "east-host" and read.id == "istio-system/istio-ca-secret"
    assert "root-k8s" not in recorder.requests
