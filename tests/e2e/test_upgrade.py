"""Stacks made by the program as it was before this version upgrade with no key, certificate or Secret
created, replaced or deleted; one of them in the middle of a root rotation, which then goes on."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.e2e.local_cluster import LocalCluster
from tests.e2e.pulumi_cli import Workspace, copy_program, new_workspace
from tests.e2e.stacks import FAST_KEYS
from tests.program import PROJECT_DIR
from tests.x509_checks import check_cacerts_chain

BEFORE = (
    "617ce16026a7bcc50c0ab1e189a687390f06fe51",  # before the rotation gate, protection and the istio_ca name
    "20014f8ad5db1c3491002ec308dfd61268072ce8",  # before the mesh component (MeshCA) and its own record in the state
)
"""Landed commits whose stacks must upgrade: each program shape users may have made stacks with."""
CHANGES = {"create", "replace", "create-replacement", "delete", "delete-replaced", "import", "import-replacement"}


@pytest.fixture(scope="module", params=BEFORE, ids=[commit[:7] for commit in BEFORE])
def old_program(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The program at a commit of BEFORE; fails (never skips) when this clone does not hold it."""
    commit = request.param
    archive = subprocess.run(
        ["git", "-C", str(PROJECT_DIR), "archive", "--format=tar", commit], capture_output=True, timeout=120
    )
    assert archive.returncode == 0, f"cannot check out {commit}: {archive.stderr.decode()[-500:]}"
    directory = tmp_path_factory.mktemp("before")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(directory, filter="data")
    return directory


def stack_made_before(
    old_program: Path,
    pulumi_env: dict[str, str],
    clusters: dict[str, LocalCluster],
    tmp_path_factory: pytest.TempPathFactory,
    namespace: str,
) -> Workspace:
    for cluster in clusters.values():
        cluster.create_namespace(namespace)
    workspace = new_workspace(tmp_path_factory.mktemp(namespace) / "project", namespace, pulumi_env, old_program)
    workspace.write_config(
        {
            "istioNamespace": namespace,
            "clusters": [{"name": name, "kubeconfig": str(c.kubeconfig)} for name, c in clusters.items()],
            "root": FAST_KEYS,
            "intermediate": FAST_KEYS,
            "workloads": [{"namespace": f"{namespace}-vm"}],
        }
    )
    workspace.up()
    return workspace


def assert_upgrades_with_nothing_made_anew(workspace: Workspace, clusters: dict[str, LocalCluster]) -> None:
    namespace = workspace.config()["istioNamespace"]
    before = {name: cluster.secret(namespace, "cacerts") for name, cluster in clusters.items()}
    copy_program(PROJECT_DIR, workspace.directory)
    steps = workspace.preview_steps()
    # The mesh component is new: a logical parent holding no key, certificate or Secret of its own.
    assert {name: op for name, op in steps.items() if op in CHANGES} == {"mesh": "create"}, steps
    workspace.up()
    workspace.run("preview", "--expect-no-changes")
    after = {name: cluster.secret(namespace, "cacerts") for name, cluster in clusters.items()}
    for name in clusters:
        old, new = before[name], after[name]
        assert old is not None and new is not None
        assert (new["metadata"]["uid"], new["data"]) == (old["metadata"]["uid"], old["data"]), name


def test_a_stack_made_before_upgrades_with_nothing_made_anew(
    old_program: Path,
    pulumi_env: dict[str, str],
    clusters: dict[str, LocalCluster],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    namespace = f"istio-upgrade-{old_program.name}"
    workspace = stack_made_before(old_program, pulumi_env, clusters, tmp_path_factory, namespace)
    assert_upgrades_with_nothing_made_anew(workspace, clusters)
    workspace.destroy()


def test_a_stack_in_the_middle_of_a_rotation_upgrades_and_finishes_it(
    old_program: Path,
    pulumi_env: dict[str, str],
    clusters: dict[str, LocalCluster],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    namespace = f"istio-upgrade-rotating-{old_program.name}"
    workspace = stack_made_before(old_program, pulumi_env, clusters, tmp_path_factory, namespace)
    config = workspace.config()
    workspace.write_config({**config, "rootRotation": {"phase": "trust-both"}})
    workspace.up()
    assert_upgrades_with_nothing_made_anew(workspace, clusters)
    for phase in ("switch", "retire"):
        workspace.write_config({**config, "rootRotation": {"phase": phase, "retireAfterHours": 0}})
        workspace.up()
    new_root = check_cacerts_chain(clusters["cluster1"].secret_data(namespace, "cacerts")).issuer
    for cluster in clusters.values():
        assert check_cacerts_chain(cluster.secret_data(namespace, "cacerts")).roots == [new_root]
    workspace.destroy()
