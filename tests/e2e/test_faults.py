"""What happens when a cluster is down, a run is interrupted, or someone edits `cacerts` by hand.

The README's "Failure and recovery" section gives the commands these tests run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.local_cluster import LocalCluster
from tests.e2e.processes import reaped
from tests.e2e.pulumi_cli import Workspace
from tests.e2e.stacks import FAST_KEYS, namespaced_workspace
from tests.x509_checks import check_cacerts_chain, load_certificates

INTERRUPT_WAIT_SECONDS = 120


def serials(clusters: dict[str, LocalCluster], namespace: str) -> dict[str, int]:
    return {
        name: load_certificates(cluster.secret_data(namespace, "cacerts")["ca-cert.pem"])[0].serial_number
        for name, cluster in clusters.items()
    }


def assert_complete_and_valid(clusters: dict[str, LocalCluster], namespace: str) -> None:
    """Every cluster holds the four files, its intermediate signed by the one shared root."""
    roots = set()
    for name, cluster in clusters.items():
        files = cluster.secret_data(namespace, "cacerts")
        chain = check_cacerts_chain(files)
        assert chain.roots == [chain.issuer], name
        roots.add(files["root-cert.pem"])
    assert len(roots) == 1


def test_a_cluster_that_is_down_fails_alone_and_converges_when_back(
    pulumi_env: dict[str, str], three_clusters: dict[str, LocalCluster], tmp_path_factory: pytest.TempPathFactory
) -> None:
    namespace = "istio-down"
    workspace = namespaced_workspace(pulumi_env, three_clusters, tmp_path_factory, namespace, intermediate=FAST_KEYS)
    down = three_clusters["cluster3"]
    up = {name: cluster for name, cluster in three_clusters.items() if cluster is not down}
    down.stop_api_server()
    try:
        # A plain `up` stops at the first failure: no traceback, and the message says what to run.
        result = workspace.run("up", "--yes", "--skip-preview", check=False)
        output = result.stdout + result.stderr
        assert result.returncode != 0
        assert "Traceback" not in output and "KeyboardInterrupt" not in output
        assert f"cluster3: the API server {down.server} did not answer" in output
        assert "pulumi up --continue-on-error" in output

        # What the README recommends: the reachable clusters get their cacerts.
        result = workspace.run("up", "--yes", "--skip-preview", "--continue-on-error", check=False)
        output = result.stdout + result.stderr
        assert result.returncode != 0 and "Traceback" not in output
        failures = [line for line in output.splitlines() if "cluster3" in line and down.server in line]
        assert failures, output[-3000:]
        assert_complete_and_valid(up, namespace)
        before = serials(up, namespace)
    finally:
        down.start_api_server()

    workspace.up()
    assert_complete_and_valid(three_clusters, namespace)
    assert serials(up, namespace) == before  # the others are not re-issued
    workspace.run("preview", "--expect-no-changes")
    workspace.destroy()


def wait_for_keys_in_progress(workspace: Workspace, process: subprocess.Popen[str]) -> None:
    """Until the engine has begun creating keys (a `pulumi up` has written its first resources)."""
    deadline = time.monotonic() + INTERRUPT_WAIT_SECONDS
    backend = Path(workspace.env["PULUMI_BACKEND_URL"].removeprefix("file://"))
    checkpoint = backend / ".pulumi" / "stacks" / "istio-ca" / f"{workspace.stack}.json"
    while time.monotonic() < deadline:
        assert process.poll() is None, "pulumi up ended before it could be interrupted"
        if checkpoint.exists() and '"tls:index/privateKey:PrivateKey"' in checkpoint.read_text():
            return
        time.sleep(0.05)
    raise AssertionError("no key creation started")


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_an_interrupted_up_converges_with_the_readme_recovery_commands(
    pulumi_env: dict[str, str],
    clusters: dict[str, LocalCluster],
    tmp_path_factory: pytest.TempPathFactory,
    how: signal.Signals,
) -> None:
    namespace = f"istio-{how.name.lower()}"
    # RSA 4096 keys, so the interruption lands while keys are being generated.
    workspace = namespaced_workspace(pulumi_env, clusters, tmp_path_factory, namespace)
    process = workspace.start("up", "--yes", "--skip-preview")
    wait_for_keys_in_progress(workspace, process)
    with reaped(process.pid):
        os.killpg(process.pid, how)
        output = workspace.finish(process, timeout=INTERRUPT_WAIT_SECONDS)
    assert process.returncode != 0
    assert "Traceback" not in output

    # The README's recovery: the state's metadata file a kill may have left empty, then release a lock left by
    # a killed run and drop operations it left pending.
    remove_empty_metadata_files(workspace)
    workspace.run("cancel", "--yes", check=False)
    workspace.run("refresh", "--yes", "--clear-pending-creates", "--skip-preview")
    workspace.up()
    assert_complete_and_valid(clusters, namespace)
    pending = json.loads(workspace.export())["deployment"].get("pending_operations") or []
    assert pending == []
    workspace.run("preview", "--expect-no-changes")
    workspace.destroy()


def remove_empty_metadata_files(workspace: Workspace) -> None:
    """The README's `find <backend directory>/.pulumi -name '*.attrs' -empty -delete`."""
    backend = Path(workspace.env["PULUMI_BACKEND_URL"].removeprefix("file://"))
    subprocess.run(["find", str(backend / ".pulumi"), "-name", "*.attrs", "-empty", "-delete"], check=True)


def test_a_state_whose_metadata_file_a_kill_left_empty_reads_again_after_the_readme_step(
    pulumi_env: dict[str, str], clusters: dict[str, LocalCluster], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The file backend rewrites `<stack>.json.attrs` in place after each checkpoint; killed in between, it is
    left empty and every command stops (the cause of a SIGKILL test that once failed in CI)."""
    namespace = "istio-empty-attrs"
    workspace = namespaced_workspace(pulumi_env, clusters, tmp_path_factory, namespace, intermediate=FAST_KEYS)
    workspace.up()
    backend = Path(workspace.env["PULUMI_BACKEND_URL"].removeprefix("file://"))
    metadata = backend / ".pulumi" / "stacks" / "istio-ca" / f"{workspace.stack}.json.attrs"
    assert metadata.stat().st_size > 0
    metadata.write_text("")  # what a kill between its truncation and its write leaves
    refused = workspace.run("preview", check=False)
    assert refused.returncode != 0 and "failed to load checkpoint: EOF" in refused.stdout + refused.stderr
    remove_empty_metadata_files(workspace)
    workspace.run("preview", "--expect-no-changes")
    assert_complete_and_valid(clusters, namespace)
    workspace.destroy()


def test_a_cacerts_deleted_or_edited_by_hand_is_restored(
    pulumi_env: dict[str, str], clusters: dict[str, LocalCluster], tmp_path_factory: pytest.TempPathFactory
) -> None:
    namespace = "istio-drift"
    workspace = namespaced_workspace(pulumi_env, clusters, tmp_path_factory, namespace, intermediate=FAST_KEYS)
    workspace.up()
    cluster = clusters["cluster1"]
    written = cluster.secret_data(namespace, "cacerts")

    cluster.request("DELETE", f"/api/v1/namespaces/{namespace}/secrets/cacerts")
    workspace.run("up", "--yes", "--skip-preview", "--refresh")
    assert cluster.secret_data(namespace, "cacerts") == written  # the same bytes, not a new intermediate

    edited = {"data": {"ca-cert.pem": "ZWRpdGVk"}}  # "edited"
    status, _ = cluster.request_patch(f"/api/v1/namespaces/{namespace}/secrets/cacerts", edited)
    assert status == 200
    assert workspace.planned_changes("--refresh") == {"cluster1-cacerts": "update"}
    workspace.run("up", "--yes", "--skip-preview", "--refresh")
    assert cluster.secret_data(namespace, "cacerts") == written
    workspace.destroy()


def test_twenty_clusters_stay_unchanged_over_three_runs(
    pulumi_env: dict[str, str], clusters: dict[str, LocalCluster], tmp_path_factory: pytest.TempPathFactory
) -> None:
    namespace = "istio-twenty"
    entries: list[dict[str, Any]] = [
        {
            "name": f"c{index:02d}",
            "kubeconfig": str(cluster.kubeconfig),
            "istioNamespace": f"{namespace}-{index:02d}",
            "createNamespace": True,
        }
        for index, cluster in enumerate(list(clusters.values()) * 10)
    ]
    workspace = namespaced_workspace(
        pulumi_env, clusters, tmp_path_factory, namespace, clusters=entries, intermediate=FAST_KEYS
    )
    workspace.up()
    before = workspace.resources()
    for _ in range(3):
        workspace.run("up", "--yes", "--skip-preview", "--expect-no-changes")
    assert workspace.resources() == before
    workspace.destroy()


def test_cacerts_outlives_its_cluster_entry_and_destroy_unless_asked(
    pulumi_env: dict[str, str], clusters: dict[str, LocalCluster], tmp_path_factory: pytest.TempPathFactory
) -> None:
    namespace = "istio-kept"
    workspace = namespaced_workspace(pulumi_env, clusters, tmp_path_factory, namespace, intermediate=FAST_KEYS)
    workspace.up()
    kept = clusters["cluster2"].secret(namespace, "cacerts")

    config = workspace.config()
    config["clusters"] = config["clusters"][:1]
    workspace.write_config(config)
    workspace.up()
    assert clusters["cluster2"].secret(namespace, "cacerts") == kept  # removed from config, kept in the cluster

    workspace.destroy()
    assert clusters["cluster1"].secret(namespace, "cacerts") is not None

    # Deleting is an explicit opt-in, set (and applied) before the cluster goes. The stack was destroyed,
    # so its new root replaces the kept cacerts only on purpose (test_no_accidents.py shows the refusal).
    config["retainCacerts"] = False
    config["clusters"][0]["replaceForeignCacerts"] = True
    workspace.write_config(config)
    workspace.up()
    workspace.destroy()
    assert clusters["cluster1"].secret(namespace, "cacerts") is None
    assert clusters["cluster1"].namespace_exists(namespace)
