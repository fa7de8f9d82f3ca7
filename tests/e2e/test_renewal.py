"""Day two: intermediates renew themselves inside their window, keys re-key on request, nothing else moves."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.e2e.local_cluster import LocalCluster
from tests.e2e.pulumi_cli import Workspace, new_workspace
from tests.e2e.stacks import FAST_KEYS, age_certificates, namespaced_workspace
from tests.x509_checks import check_cacerts_chain, load_certificates


def set_cluster(workspace: Workspace, index: int, **settings: object) -> None:
    config = workspace.config()
    config["clusters"][index].update(settings)
    workspace.write_config(config)


def assert_chains_to_the_root(cluster: LocalCluster, namespace: str) -> None:
    chain = check_cacerts_chain(cluster.secret_data(namespace, "cacerts"))
    assert chain.roots == [chain.issuer]


def test_an_intermediate_inside_its_window_is_renewed_in_place_and_nothing_else_moves(
    pulumi_env: dict[str, str], clusters: dict[str, LocalCluster], tmp_path_factory: pytest.TempPathFactory
) -> None:
    namespace = "istio-renewal"
    workspace = namespaced_workspace(
        pulumi_env, clusters, tmp_path_factory, namespace, intermediate={**FAST_KEYS, "days": 2, "renewBeforeDays": 1}
    )
    workspace.up()
    before = {name: cluster.secret(namespace, "cacerts") for name, cluster in clusters.items()}
    old = clusters["cluster1"].secret_data(namespace, "cacerts")

    # A day later: cluster1's intermediate is inside its window (its last day).
    age_certificates(workspace, 20, "cluster1")
    assert workspace.planned_changes() == {"cluster1-cert": "replace", "cluster1-cacerts": "update"}
    preview = workspace.run("preview")
    assert "the intermediate CA of cluster1 is inside its renewal window" in preview.stdout
    workspace.up()

    after = clusters["cluster1"].secret(namespace, "cacerts")
    assert after is not None and before["cluster1"] is not None
    assert after["metadata"]["uid"] == before["cluster1"]["metadata"]["uid"]  # updated in place
    new = clusters["cluster1"].secret_data(namespace, "cacerts")
    assert new["ca-cert.pem"] != old["ca-cert.pem"] and new["ca-key.pem"] == old["ca-key.pem"]
    assert new["root-cert.pem"] == old["root-cert.pem"]
    assert_chains_to_the_root(clusters["cluster1"], namespace)
    (renewed,) = load_certificates(new["ca-cert.pem"])
    (previous,) = load_certificates(old["ca-cert.pem"])
    assert renewed.not_valid_after_utc > previous.not_valid_after_utc
    assert clusters["cluster2"].secret(namespace, "cacerts") == before["cluster2"]  # byte-identical, same version
    outputs = workspace.outputs()["clusters"]
    opens = renewed.not_valid_after_utc - timedelta(days=1)  # renewBeforeDays: 1
    assert outputs["cluster1"]["renewalWindowOpens"][:19] == opens.strftime("%Y-%m-%dT%H:%M:%S")
    workspace.destroy()


def test_a_new_key_generation_re_keys_only_that_cluster(
    pulumi_env: dict[str, str], clusters: dict[str, LocalCluster], tmp_path_factory: pytest.TempPathFactory
) -> None:
    namespace = "istio-rekey"
    workspace = namespaced_workspace(pulumi_env, clusters, tmp_path_factory, namespace, intermediate=FAST_KEYS)
    workspace.up()
    old = {name: cluster.secret_data(namespace, "cacerts") for name, cluster in clusters.items()}
    set_cluster(workspace, 1, keyGeneration=2)
    assert workspace.planned_changes() == {
        "cluster2-key": "replace",
        "cluster2-csr": "replace",
        "cluster2-cert": "replace",
        "cluster2-cacerts": "update",
    }
    workspace.up()
    new = clusters["cluster2"].secret_data(namespace, "cacerts")
    assert new["ca-key.pem"] != old["cluster2"]["ca-key.pem"]
    assert_chains_to_the_root(clusters["cluster2"], namespace)
    assert clusters["cluster1"].secret_data(namespace, "cacerts") == old["cluster1"]
    workspace.run("preview", "--expect-no-changes")
    workspace.destroy()


def test_a_vm_workload_certificate_inside_its_window_is_renewed(
    pulumi_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    workspace = new_workspace(tmp_path_factory.mktemp("vm-renewal") / "project", "vmrenewal", pulumi_env)
    # A one-day leaf renewed in the last third of its life (the default): 16 hours later it is due.
    workspace.write_config(
        {
            "clusters": [{"name": "cluster1"}],
            "intermediate": FAST_KEYS,
            "workloads": [{"namespace": "vm-apps", "days": 1}],
        }
    )
    workspace.up()
    before = workspace.outputs()["workloads"]["vm-apps"]
    age_certificates(workspace, 7, "vm-apps")
    assert workspace.planned_changes() == {"vm-apps-cert": "replace"}
    workspace.up()
    after = workspace.outputs()["workloads"]["vm-apps"]
    (old,) = load_certificates(before["certPem"])
    leaf, intermediate, root = load_certificates(after["certChainPem"])
    assert leaf.serial_number != old.serial_number and after["caCertPem"] == before["caCertPem"]
    leaf.verify_directly_issued_by(intermediate)
    intermediate.verify_directly_issued_by(root)
