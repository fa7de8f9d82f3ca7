"""A host stack composes MeshCA with a Kubernetes provider of its own: examples/host-stack, installed
from its requirements.txt as a host installs istio-ca, run against a cluster of its own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.local_cluster import LocalCluster, running_clusters
from tests.e2e.pulumi_cli import Toolchain, Workspace, new_workspace, printed
from tests.e2e.stacks import renews_in_place
from tests.installed import install_checkout
from tests.program import PROJECT_DIR
from tests.x509_checks import check_cacerts_chain

EXAMPLE = "examples/host-stack"
NAMESPACE = "istio-system"


@pytest.fixture(scope="module")
def east(toolchain: Toolchain, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A cluster of the example's own: its `istio-system` holds no `cacerts` another test left behind."""
    with running_clusters(["east"], toolchain.bin, tmp_path_factory.mktemp("east")) as started:
        started["east"].create_namespace(NAMESPACE)
        yield started["east"]


@pytest.fixture(scope="module")
def host_stack(east: LocalCluster, pulumi_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    venv = install_checkout(tmp_path_factory.mktemp("host-install"), EXAMPLE)
    workspace = new_workspace(
        tmp_path_factory.mktemp("host") / "project", "host", pulumi_env, PROJECT_DIR / EXAMPLE, virtualenv=venv
    )
    workspace.run("config", "set", "--secret", "kubeconfig", stdin=east.kubeconfig.read_text())
    return workspace


def secret_provider(workspace: Workspace) -> str:
    """The name of the provider the state records for the `cacerts` Secret."""
    (secret,) = [r for urn, r in workspace.resources().items() if urn.endswith("::east-cacerts")]
    return str(secret["provider"]).split("::")[-2]


def test_a_host_provider_that_would_re_create_secrets_is_refused(host_stack: Workspace, east: LocalCluster) -> None:
    program = host_stack.directory / "__main__.py"
    written = program.read_text()
    assert "enable_secret_mutable=True" in written
    program.write_text(written.replace("enable_secret_mutable=True", "enable_secret_mutable=False"))
    try:
        for command in (["preview"], ["up", "--yes", "--skip-preview"]):
            result = host_stack.run(*command, check=False)
            assert result.returncode != 0
            assert "does not set enable_secret_mutable=True" in printed(result)
            assert east.secret(NAMESPACE, "cacerts") is None  # nothing written
    finally:
        program.write_text(written)


def test_a_host_stack_writes_renews_and_destroys_through_its_own_provider(
    host_stack: Workspace, east: LocalCluster
) -> None:
    host_stack.up()
    first = east.secret(NAMESPACE, "cacerts")
    assert first is not None
    chain = check_cacerts_chain(east.secret_data(NAMESPACE, "cacerts"))
    assert chain.roots == [chain.issuer]
    assert host_stack.outputs()["eastPhase"] == "steady"
    assert secret_provider(host_stack) == "east"  # the host's provider; MeshCA made none of its own
    assert not [urn for urn in host_stack.resources() if urn.endswith("::east-k8s")]
    host_stack.run("preview", "--expect-no-changes")

    # Renewal in place, through the host's provider: the same Secret object, a new intermediate.
    renewed = renews_in_place(host_stack, east, NAMESPACE, chain)

    host_stack.destroy()
    kept = east.secret(NAMESPACE, "cacerts")
    assert kept is not None and (kept["metadata"]["uid"], kept["data"]) == (first["metadata"]["uid"], renewed["data"])
    assert host_stack.resources() == {}
