"""A root rotation never outruns a cluster: with three API servers, one of them down at each phase.

After every step each cluster's `cacerts` is read and parsed: which roots `root-cert.pem` holds and
which root issued `ca-cert.pem` (and ends `cert-chain.pem`), not only the exit code.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.local_cluster import LocalCluster
from tests.e2e.pulumi_cli import Workspace, printed
from tests.e2e.rotation_checks import NOT_STARTED, RETIRE, SWITCH, TRUST_BOTH, Roots, down
from tests.e2e.stacks import FAST_KEYS, namespaced_workspace
from tests.x509_checks import load_certificates


def set_phase(workspace: Workspace, phase: str | None, **rotation: Any) -> None:
    config = workspace.config()
    config.pop("rootRotation", None)
    if phase is not None:
        config["rootRotation"] = {"phase": phase, **rotation}
    workspace.write_config(config)


def up_with_one_down(workspace: Workspace) -> str:
    """What the README advises while a cluster is down; it fails for that cluster alone."""
    result = workspace.run("up", "--yes", "--skip-preview", "--continue-on-error", check=False)
    assert result.returncode != 0 and "Traceback" not in result.stdout + result.stderr
    return result.stdout + result.stderr


def recorded_secret(workspace: Workspace, cluster: str) -> dict[str, Any]:
    (secret,) = [r for urn, r in workspace.resources().items() if urn.endswith(f"::{cluster}-cacerts")]
    return secret


def root_phases(workspace: Workspace) -> dict[str, str]:
    return {name: cluster["rootPhase"] for name, cluster in workspace.outputs()["clusters"].items()}


def test_each_phase_waits_for_a_cluster_that_was_down_and_it_catches_up_one_phase_at_a_time(
    pulumi_env: dict[str, str], three_clusters: dict[str, LocalCluster], tmp_path_factory: pytest.TempPathFactory
) -> None:
    namespace = "istio-gate"
    workspace = namespaced_workspace(
        pulumi_env, three_clusters, tmp_path_factory, namespace, root=FAST_KEYS, intermediate=FAST_KEYS
    )
    c1, c3 = three_clusters["cluster1"], three_clusters["cluster3"]
    workspace.up()
    (old,) = load_certificates(c1.secret_data(namespace, "cacerts")["root-cert.pem"])
    roots = Roots(old)

    def held() -> dict[str, tuple[tuple[str, ...], str]]:
        return {cluster.name: roots.held(cluster, namespace) for cluster in three_clusters.values()}

    # trust-both while cluster3 is down: it fails alone, and its recorded cacerts stays as it was.
    set_phase(workspace, "trust-both", retireAfterHours=0)
    record = recorded_secret(workspace, "cluster3")
    with down(c3):
        up_with_one_down(workspace)
        assert recorded_secret(workspace, "cluster3") == record
        roots.new = load_certificates(c1.secret_data(namespace, "cacerts")["root-cert.pem"])[1]
        assert root_phases(workspace) == {"cluster1": "trust-both", "cluster2": "trust-both", "cluster3": "not started"}

        # switch with cluster3 still down and not trusting the new root: nobody switches.
        set_phase(workspace, "switch", retireAfterHours=0)
        preview = workspace.run("preview", "--diff")
        assert (
            "rootRotation.phase 'switch' waits for cluster3, which has not applied 'trust-both' (its "
            "cacerts trusts only the old root); every cluster stays at 'trust-both' meanwhile: it did not answer"
        ) in printed(preview)
        assert not any(op == "replace" for op in workspace.planned_changes().values())
        up_with_one_down(workspace)
    assert held() == {"cluster1": TRUST_BOTH, "cluster2": TRUST_BOTH, "cluster3": NOT_STARTED}

    # cluster3 is back: it is brought to trust-both only, and the others wait with it.
    assert workspace.planned_changes() == {"cluster3-cacerts": "update"}
    workspace.up()
    assert held() == {"cluster1": TRUST_BOTH, "cluster2": TRUST_BOTH, "cluster3": TRUST_BOTH}
    assert workspace.outputs()["rootGenerations"]["phase"] == "trust-both"

    # switch with cluster3 down again: it trusts both roots, so the others may switch.
    with down(c3):
        up_with_one_down(workspace)
        assert root_phases(workspace) == {"cluster1": "switch", "cluster2": "switch", "cluster3": "trust-both"}

        # retire while cluster3 still signs under the old root: nobody retires.
        set_phase(workspace, "retire", retireAfterHours=0)
        assert "waits for cluster3, which has not applied 'switch'" in printed(workspace.run("preview"))
        up_with_one_down(workspace)
    assert held() == {"cluster1": SWITCH, "cluster2": SWITCH, "cluster3": TRUST_BOTH}

    # Back: cluster3 switches (its intermediate was re-issued in the state already), nobody retires yet.
    assert workspace.planned_changes() == {"cluster3-cacerts": "update"}
    workspace.up()
    assert held() == {"cluster1": SWITCH, "cluster2": SWITCH, "cluster3": SWITCH}

    # retire before the workload certificate lifetime has passed: refused, nothing changes.
    set_phase(workspace, "retire")
    history, resources = workspace.history_length(), workspace.resources()
    refused = workspace.run("preview", check=False)
    assert refused.returncode != 0 and "Traceback" not in refused.stdout + refused.stderr
    message = printed(refused)
    assert "rootRotation.phase 'retire' waits until " in message
    assert "got its intermediate from the new root at" in message and "retireAfterHours (24 h)" in message
    assert workspace.run("up", "--yes", check=False).returncode != 0
    assert (workspace.history_length(), workspace.resources()) == (history, resources)

    # The explicit override: retire now, every cluster at once.
    set_phase(workspace, "retire", retireAfterHours=0)
    workspace.up()
    assert held() == {"cluster1": RETIRE, "cluster2": RETIRE, "cluster3": RETIRE}
    set_phase(workspace, None)
    workspace.run("preview", "--expect-no-changes")
    workspace.up()
    assert root_phases(workspace) == dict.fromkeys(("cluster1", "cluster2", "cluster3"), "steady")
    workspace.destroy()


def test_a_cluster_removed_mid_rotation_no_longer_blocks_one_added_gets_the_phase_and_an_abort_restores_the_old_root(
    pulumi_env: dict[str, str], three_clusters: dict[str, LocalCluster], tmp_path_factory: pytest.TempPathFactory
) -> None:
    namespace = "istio-gate-abort"
    workspace = namespaced_workspace(
        pulumi_env, three_clusters, tmp_path_factory, namespace, root=FAST_KEYS, intermediate=FAST_KEYS
    )
    c1, c2, c3 = three_clusters.values()
    workspace.up()
    (old,) = load_certificates(c1.secret_data(namespace, "cacerts")["root-cert.pem"])
    roots = Roots(old)
    before = {cluster.name: cluster.secret_data(namespace, "cacerts") for cluster in three_clusters.values()}

    set_phase(workspace, "trust-both")
    with down(c3):
        up_with_one_down(workspace)
    roots.new = load_certificates(c1.secret_data(namespace, "cacerts")["root-cert.pem"])[1]
    set_phase(workspace, "switch")
    assert "waits for cluster3" in printed(workspace.run("preview"))

    # cluster3 gone for good: removed from the config, it no longer holds switch back.
    config = workspace.config()
    config["clusters"] = [entry for entry in config["clusters"] if entry["name"] != "cluster3"]
    workspace.write_config(config)
    preview = workspace.run("preview")
    assert "waits for" not in printed(preview)
    assert workspace.planned_changes() == {
        "cluster1-cert": "replace",
        "cluster2-cert": "replace",
        "cluster1-cacerts": "update",
        "cluster2-cacerts": "update",
        "cluster3": "delete",
        "cluster3-k8s": "delete",
        "cluster3-cert": "delete",
        "cluster3-key": "delete",
        "cluster3-csr": "delete",
        "cluster3-cacerts": "delete",
    }

    # A cluster added mid-rotation (a new namespace on cluster3's API server) gets trust-both's material.
    c3.create_namespace("istio-gate-added")
    config["clusters"].append({"name": "added", "kubeconfig": str(c3.kubeconfig), "istioNamespace": "istio-gate-added"})
    workspace.write_config({**config, "rootRotation": {"phase": "trust-both"}})
    workspace.up()
    assert roots.held(c3, "istio-gate-added") == TRUST_BOTH
    assert roots.held(c1, namespace) == TRUST_BOTH and roots.held(c2, namespace) == TRUST_BOTH

    # Abort: remove rootRotation before any cluster switched. Every bundle is the old root alone again
    # (a subset istiod accepts), the intermediates are the ones issued before, and the new root leaves the state.
    set_phase(workspace, None)
    changes = workspace.planned_changes()
    assert changes == {
        "root-g2-key": "delete",
        "root-g2-cert": "delete",
        "cluster1-cacerts": "update",
        "cluster2-cacerts": "update",
        "added-cacerts": "update",
    }
    workspace.up()
    for cluster in (c1, c2):
        assert cluster.secret_data(namespace, "cacerts") == before[cluster.name]
    assert roots.held(c3, "istio-gate-added") == NOT_STARTED
    assert not any("root-g2" in urn for urn in workspace.resources())
    assert workspace.outputs()["rootGenerations"] == json.loads(
        '{"trusted": [1], "signing": 1, "phase": null, "keyOf": {}, "adopted": false}'
    )
    workspace.run("preview", "--expect-no-changes")
    workspace.destroy()


def test_an_abort_is_refused_once_a_cluster_signs_under_the_new_root(
    pulumi_env: dict[str, str], clusters: dict[str, LocalCluster], tmp_path_factory: pytest.TempPathFactory
) -> None:
    namespace = "istio-gate-no-abort"
    workspace = namespaced_workspace(
        pulumi_env, clusters, tmp_path_factory, namespace, root=FAST_KEYS, intermediate=FAST_KEYS
    )
    workspace.up()
    set_phase(workspace, "trust-both")
    workspace.up()
    set_phase(workspace, "switch")
    workspace.up()
    set_phase(workspace, None)
    refused = workspace.run("preview", check=False)
    assert refused.returncode != 0
    assert "back to 'trust-both' and then remove rootRotation to abort it" in printed(refused)
    workspace.destroy()
