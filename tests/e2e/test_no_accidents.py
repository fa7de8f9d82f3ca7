"""No run re-roots a cluster or loses a root key by accident, and config mistakes are refused before
anything changes: the state and `pulumi stack history` are checked before and after each refusal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.local_cluster import LocalCluster
from tests.e2e.pulumi_cli import Workspace, printed
from tests.e2e.stacks import FAST_KEYS, namespaced_workspace
from tests.x509_checks import check_cacerts_chain, load_certificates


def history(workspace: Workspace) -> list[str]:
    """The result of each update `pulumi stack history` lists, newest first."""
    return [entry["result"] for entry in json.loads(workspace.run("stack", "history", "--json").stdout)]


def refused_before_anything_changes(workspace: Workspace, message: str, skip_preview_too: bool = True) -> None:
    """`preview` and `up` (previewed first) fail with `message`, leaving the state and history as they were;
    `up --skip-preview` too, with one failed entry in the history and no resource changed."""
    resources, entries = workspace.resources(), history(workspace)
    for command in (("preview",), ("up", "--yes")):
        result = workspace.run(*command, check=False)
        assert result.returncode != 0 and message in printed(result) and "Traceback" not in printed(result), command
    assert (workspace.resources(), history(workspace)) == (resources, entries)
    if not skip_preview_too:
        return
    result = workspace.run("up", "--yes", "--skip-preview", check=False)
    assert result.returncode != 0 and message in printed(result)
    assert ours(workspace.resources()) == ours(resources)
    assert history(workspace) == ["failed", *entries]


def ours(resources: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The resources the program declares; the engine records the stack itself on any `up`."""
    engine = ("pulumi:pulumi:Stack", "pulumi:providers:pulumi")
    return {urn: resource for urn, resource in resources.items() if resource["type"] not in engine}


def test_destroy_keeps_the_root_key_until_released_and_a_new_stack_never_re_roots_the_clusters(
    pulumi_env: dict[str, str], clusters: dict[str, LocalCluster], tmp_path_factory: pytest.TempPathFactory
) -> None:
    namespace = "istio-no-reroot"
    workspace = namespaced_workspace(
        pulumi_env, clusters, tmp_path_factory, namespace, root=FAST_KEYS, intermediate=FAST_KEYS
    )
    workspace.up()
    before = {name: cluster.secret(namespace, "cacerts") for name, cluster in clusters.items()}

    # A plain destroy refuses: the signing root is protected, and nothing is deleted.
    resources = workspace.resources()
    refused = workspace.run("destroy", "--yes", check=False)
    assert refused.returncode != 0 and "protected" in printed(refused)
    assert workspace.resources() == resources

    # As the README says: back up, release the protection on purpose, destroy. cacerts stays.
    backup = workspace.directory / "backup.json"
    workspace.run("stack", "export", "--file", str(backup))
    workspace.destroy()
    assert workspace.resources() == {}
    assert {name: cluster.secret(namespace, "cacerts") for name, cluster in clusters.items()} == before

    # The next `up` would make a new root: refused for each cluster, naming it and the root it holds.
    (old_root,) = load_certificates(clusters["cluster1"].secret_data(namespace, "cacerts")["root-cert.pem"])
    refused_before_anything_changes(
        workspace, "cluster1: Secret istio-no-reroot/cacerts was written by this stack, but holds a root"
    )
    result = workspace.run("preview", check=False)
    assert "pulumi stack import --file <backup>" in printed(result) and old_root.subject.rfc4514_string() in printed(
        result
    )
    assert {name: cluster.secret(namespace, "cacerts") for name, cluster in clusters.items()} == before

    # The way back: restore the backup; nothing is planned, nothing re-issued.
    workspace.run("stack", "import", "--file", str(backup))
    workspace.run("preview", "--expect-no-changes")
    backup.unlink()
    workspace.destroy()


def test_a_renamed_stack_goes_on_with_its_rotation(
    pulumi_env: dict[str, str], clusters: dict[str, LocalCluster], tmp_path_factory: pytest.TempPathFactory
) -> None:
    namespace = "istio-stack-rename"
    workspace = namespaced_workspace(
        pulumi_env, clusters, tmp_path_factory, namespace, root=FAST_KEYS, intermediate=FAST_KEYS
    )
    workspace.up()
    config = workspace.config()
    workspace.write_config({**config, "rootRotation": {"phase": "trust-both"}})
    workspace.up()
    workspace.run("stack", "rename", "renamed")
    workspace.stack = "renamed"
    workspace.write_config({**config, "rootRotation": {"phase": "switch"}})
    workspace.up()  # its own cacerts, under the old owner annotation, chain to its roots: taken over
    for cluster in clusters.values():
        secret = cluster.secret(namespace, "cacerts")
        assert secret is not None
        assert secret["metadata"]["annotations"]["istio-ca/owner"] == "organization/istio-ca/renamed"
        chain = check_cacerts_chain(cluster.secret_data(namespace, "cacerts"))
        assert chain.issuer == chain.roots[1]
    workspace.destroy()


def test_a_renamed_cluster_keeps_its_cacerts_whatever_retain_cacerts_says(
    pulumi_env: dict[str, str], clusters: dict[str, LocalCluster], tmp_path_factory: pytest.TempPathFactory
) -> None:
    namespace = "istio-cluster-rename"
    workspace = namespaced_workspace(
        pulumi_env, clusters, tmp_path_factory, namespace, intermediate=FAST_KEYS, retainCacerts=False
    )
    workspace.up()
    cluster = clusters["cluster1"]
    before = cluster.secret(namespace, "cacerts")
    assert before is not None
    old = cluster.secret_data(namespace, "cacerts")
    config = workspace.config()
    config["clusters"][0]["name"] = "east"
    workspace.write_config(config)
    # The rename moves cluster1's resources to east: the key stays, the certificate's L changes.
    assert workspace.planned_changes() == {"east-cert": "replace", "east-csr": "replace", "east-cacerts": "update"}
    workspace.up()
    after = cluster.secret(namespace, "cacerts")
    assert after is not None and after["metadata"]["uid"] == before["metadata"]["uid"]
    new = cluster.secret_data(namespace, "cacerts")
    assert new["ca-key.pem"] == old["ca-key.pem"] and new["ca-cert.pem"] != old["ca-cert.pem"]
    (intermediate,) = load_certificates(new["ca-cert.pem"])
    assert "L=east" in intermediate.subject.rfc4514_string()
    workspace.run("preview", "--expect-no-changes")
    workspace.destroy()


def test_config_mistakes_are_refused_before_anything_changes(
    pulumi_env: dict[str, str], clusters: dict[str, LocalCluster], tmp_path_factory: pytest.TempPathFactory
) -> None:
    namespace = "istio-mistakes"
    workspace = namespaced_workspace(
        pulumi_env, clusters, tmp_path_factory, namespace, root=FAST_KEYS, intermediate=FAST_KEYS
    )
    good = workspace.config()
    good["clusters"][1]["keyGeneration"] = 2
    workspace.write_config(good)
    workspace.up()

    checked_without_preview: set[str] = set()

    def refused(config: dict[str, Any], message: str, kind: str) -> None:
        """Each kind of refusal is also checked once through `up --skip-preview`: config, cluster, rotation."""
        workspace.write_config(config)
        refused_before_anything_changes(workspace, message, skip_preview_too=kind not in checked_without_preview)
        checked_without_preview.add(kind)

    first, second = good["clusters"]
    refused(
        {**good, "clusters": [first, {**second, "kubeconfig": first["kubeconfig"]}]},
        "'cluster1' and 'cluster2' both write Secret istio-mistakes/cacerts through the API server",
        "config",
    )
    # The same API server under another name: told apart by the cluster's kube-system uid.
    other_name = json.loads(clusters["cluster1"].kubeconfig.read_text())
    cluster = other_name["clusters"][0]["cluster"]
    cluster["server"] = cluster["server"].replace("127.0.0.1", "localhost")
    cluster["tls-server-name"] = "kubernetes"  # a name the API server's certificate holds
    (workspace.directory / "localhost.kubeconfig").write_text(json.dumps(other_name))
    refused(
        {**good, "clusters": [first, {**second, "kubeconfig": str(workspace.directory / "localhost.kubeconfig")}]},
        "clusters: 'cluster1' and 'cluster2' reach the same cluster (kube-system uid",
        "cluster",
    )
    refused(
        {**good, "clusters": [first, {**second, "keyGeneration": 1}]},
        "clusters[1].keyGeneration is 1, lower than the 2 the last run applied",
        "config",
    )
    refused(
        {**good, "intermediate": {**FAST_KEYS, "renewBeforeDays": 0}},
        "intermediate.renewBeforeDays must be a whole number of days shorter than the lifetime",
        "config",
    )
    refused(
        {**good, "clusters": [first, {**second, "istioNamespace": "istio-not-there"}]},
        "cluster2: namespace istio-not-there does not exist, so its cacerts cannot be written",
        "cluster",
    )

    # Once trust-both is applied, sameKey and the root settings are what made the new root.
    workspace.write_config({**good, "rootRotation": {"phase": "trust-both"}})
    workspace.up()
    refused(
        {**good, "rootRotation": {"phase": "switch", "sameKey": True}},
        "rootRotation.sameKey is true, but the new root was made with a new key",
        "rotation",
    )
    refused(
        {**good, "root": {**FAST_KEYS, "days": 7300}, "rootRotation": {"phase": "switch"}},
        "root settings changed (days) after 'trust-both' made the new root",
        "rotation",
    )
    workspace.write_config(good)  # abort
    workspace.up()
    workspace.run("preview", "--expect-no-changes")
    workspace.destroy()


def test_a_kubeconfig_with_relative_paths_works_as_kubectl_reads_it(
    pulumi_env: dict[str, str], clusters: dict[str, LocalCluster], tmp_path_factory: pytest.TempPathFactory
) -> None:
    namespace = "istio-relative"
    cluster = clusters["cluster1"]
    workspace = namespaced_workspace(
        pulumi_env, {"cluster1": cluster}, tmp_path_factory, namespace, intermediate=FAST_KEYS
    )
    directory = tmp_path_factory.mktemp("kube")
    document = json.loads(cluster.kubeconfig.read_text())
    (directory / "ca.crt").write_bytes(Path(document["clusters"][0]["cluster"]["certificate-authority"]).read_bytes())
    document["clusters"][0]["cluster"]["certificate-authority"] = "ca.crt"  # relative to the kubeconfig
    (directory / "config").write_text(json.dumps(document))
    workspace.write_config(
        {**workspace.config(), "clusters": [{"name": "cluster1", "kubeconfig": str(directory / "config")}]}
    )
    workspace.run("preview")
    workspace.up()
    assert cluster.secret(namespace, "cacerts") is not None
    workspace.run("preview", "--expect-no-changes")
    workspace.destroy()
