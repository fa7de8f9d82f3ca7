"""A cluster stack's half of the split layout refuses what belongs to the PKI stack, before registering."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest

from istio_ca import MeshMember, MeshMemberArgs, MeshPKI, MeshPKIArgs
from istio_ca.validation import ConfigError
from tests.program import use_mocks

EAST: dict[str, Any] = {"clusters": [{"name": "east"}]}


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
    mesh = {**EAST, **extra}
    message_given = refused(lambda: MeshMember("east", MeshMemberArgs(mesh=mesh, pki_stack="o/mesh-pki/prod")))
    assert message_given.startswith(message)


def test_a_member_holds_its_own_cluster_only() -> None:
    two = {"clusters": [{"name": "east"}, {"name": "west"}]}
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
    mesh = {"clusters": [{"name": "east", "kubeconfig": str(kubeconfig)}]}
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
