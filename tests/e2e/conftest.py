"""Fixtures of the end-to-end suite: the built toolchain, Pulumi's offline home, two API servers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.leak_audit import AUDIT
from tests.e2e.local_cluster import LocalCluster, running_clusters
from tests.e2e.pulumi_cli import Toolchain, scratch_environment
from tests.installed import install_checkout

CLUSTER_NAMES = ("cluster1", "cluster2")
SLOWEST_FIRST = (
    "test_split_rotation.py",
    "test_split_stacks.py",
    "test_faults.py",
    "test_shared_backend.py",
    "test_rotation_gate.py",
    "test_no_accidents.py",
    "test_rotation.py",
    "test_upgrade.py",
    "test_istiod_lifecycle.py",
)
"""The end-to-end files that take longest (2 to 5 minutes each on two workers), longest first. `make test` hands
whole files to its two workers in the order collected (`--dist loadfile --no-loadscope-reorder`): these first,
then the other files as usual, the unit tests last, so that no worker is left with a long file while the
other has nothing to do. A slow new file belongs here."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent

    def rank(item: pytest.Item) -> int:
        path = Path(str(item.fspath))
        in_e2e = path.is_relative_to(here)
        if in_e2e and path.name in SLOWEST_FIRST:
            return SLOWEST_FIRST.index(path.name)
        return len(SLOWEST_FIRST) if in_e2e else len(SLOWEST_FIRST) + 1

    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.e2e)
    items.sort(key=rank)  # stable: each file's tests keep their order


@pytest.fixture(scope="session")
def toolchain() -> Toolchain:
    root = os.environ.get("ISTIO_CA_TOOLCHAIN")
    if not root:
        if os.environ.get("CI"):
            pytest.fail("ISTIO_CA_TOOLCHAIN is not set: in CI the end-to-end tests must run (`make test` sets it)")
        pytest.skip("no toolchain: `make test` builds it, or set ISTIO_CA_TOOLCHAIN")
    return Toolchain(Path(root))


@pytest.fixture(scope="session")
def pulumi_env(toolchain: Toolchain, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """CLI environment with a private PULUMI_HOME holding the toolchain's provider plugins."""
    base = tmp_path_factory.mktemp("pulumi")
    env = scratch_environment(toolchain, base)
    AUDIT.plain_places |= {base / "state", base / "tmp"}
    return env


@pytest.fixture(scope="session", autouse=True)
def no_key_leaks_anywhere() -> Iterator[None]:
    """After every end-to-end test: no key in plain text in any output, state file, history or temporary file."""
    yield
    AUDIT.remember_key_files()
    if any(text.startswith("$ pulumi up") for text in AUDIT.transcripts):
        assert AUDIT.keys, "the audit saw no key after an `up`: it would pass whatever leaked"
    leaks = AUDIT.leaks()
    assert not leaks, f"a private key is in plain text in: {leaks}"
    loose = AUDIT.loose_key_files()
    assert not loose, f"key files others can read: {loose}"


@pytest.fixture(scope="session")
def split_venv(toolchain: Toolchain, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The split layout's programs' virtualenv: the checkout installed as examples/split/*/requirements.txt say."""
    return install_checkout(tmp_path_factory.mktemp("split-install"), "examples/split/pki")


@pytest.fixture(scope="session")
def clusters(toolchain: Toolchain, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, LocalCluster]]:
    """Two independent API servers, each with its own etcd; stopped whatever the tests do."""
    with running_clusters(CLUSTER_NAMES, toolchain.bin, tmp_path_factory.mktemp("clusters")) as started:
        yield started


@pytest.fixture(scope="session")
def three_clusters(
    toolchain: Toolchain, clusters: dict[str, LocalCluster], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, LocalCluster]]:
    """The two clusters and a third, for the tests that take one down; each test leaves it up."""
    with running_clusters(["cluster3"], toolchain.bin, tmp_path_factory.mktemp("cluster3")) as third:
        yield {**clusters, **third}
