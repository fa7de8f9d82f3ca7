"""An existing `cacerts` is taken over only when that is safe, and never replaced silently."""

from __future__ import annotations

from pathlib import Path

import pytest

from istio_ca.pem import sha256_fingerprint
from tests.e2e.local_cluster import LocalCluster
from tests.e2e.stacks import (
    FAST_KEYS,
    data_owners,
    decoded,
    makefile_cacerts,
    namespaced_workspace,
    set_root_in_config,
)
from tests.makefile import issue_like_the_makefile
from tests.x509_checks import CACERTS_KEYS, check_cacerts_chain, load_certificates

OWNER = "istio-ca/owner"


def test_the_makefiles_cacerts_is_taken_over_in_place_once_its_root_is_adopted(
    pulumi_env: dict[str, str],
    clusters: dict[str, LocalCluster],
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
) -> None:
    namespace = "istio-takeover"
    workspace = namespaced_workspace(pulumi_env, clusters, tmp_path_factory, namespace, intermediate=FAST_KEYS)
    makefile = issue_like_the_makefile(tmp_path)
    cluster = clusters["cluster1"]
    before = makefile_cacerts(cluster, namespace, makefile, **{"istio-generated": ""})
    set_root_in_config(workspace, (makefile / "root-cert.pem").read_text(), (makefile / "root-key.pem").read_text())

    preview = workspace.run("preview")
    assert "cluster1: a cacerts not written by this stack will be taken over in place" in preview.stdout
    assert cluster.secret(namespace, "cacerts") == before  # a preview changes nothing
    workspace.up()

    after = cluster.secret(namespace, "cacerts")
    assert after is not None
    assert after["metadata"]["uid"] == before["metadata"]["uid"]  # updated in place, never re-created
    assert after["type"] == "Opaque"
    assert set(after["data"]) == CACERTS_KEYS  # `istio-generated` is gone
    assert after["metadata"]["annotations"][OWNER] == f"organization/istio-ca/{namespace}"
    # Every file is owned by the stack's apply alone: no other manager can hold a field back.
    assert "kubectl-create" not in {entry["manager"] for entry in after["metadata"]["managedFields"]}
    owners = data_owners(after)
    assert set(owners) == CACERTS_KEYS
    assert all(len(managers) == 1 and next(iter(managers)).startswith("pulumi") for managers in owners.values()), owners
    files = decoded(after)
    chain = check_cacerts_chain(files)
    assert chain.roots == [chain.issuer]
    assert files["root-cert.pem"] == (makefile / "root-cert.pem").read_text()
    assert files["ca-cert.pem"] != (makefile / "ca-cert.pem").read_text()
    workspace.run("preview", "--expect-no-changes")
    workspace.destroy()


def test_a_foreign_cacerts_with_another_root_is_refused_until_the_cluster_opts_in(
    pulumi_env: dict[str, str],
    clusters: dict[str, LocalCluster],
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
) -> None:
    namespace = "istio-foreign"
    workspace = namespaced_workspace(pulumi_env, clusters, tmp_path_factory, namespace, intermediate=FAST_KEYS)
    makefile = issue_like_the_makefile(tmp_path)
    cluster = clusters["cluster2"]
    before = makefile_cacerts(cluster, namespace, makefile)
    fingerprint = sha256_fingerprint(load_certificates((makefile / "root-cert.pem").read_text())[0])

    for command in (("preview",), ("up", "--yes")):
        result = workspace.run(*command, check=False)
        output = result.stdout + result.stderr
        assert result.returncode != 0 and "Traceback" not in output, command
        assert (
            f"cluster2: Secret {namespace}/cacerts was not written by this stack and holds another root: "
            f"CN=Root CA,O=Istio (SHA-256 {fingerprint})"
        ) in output
        assert "adopt that root (existingRoot" in output
        assert "set `replaceForeignCacerts: true` in cluster2's entry of clusters" in output
        assert cluster.secret(namespace, "cacerts") == before, command  # untouched, to the resourceVersion

    config = workspace.config()
    config["clusters"][1]["replaceForeignCacerts"] = True
    workspace.write_config(config)
    workspace.up()
    after = cluster.secret(namespace, "cacerts")
    assert after is not None and after["metadata"]["uid"] == before["metadata"]["uid"]
    files = decoded(after)
    assert set(files) == CACERTS_KEYS
    assert files["root-cert.pem"] == clusters["cluster1"].secret_data(namespace, "cacerts")["root-cert.pem"]
    assert files["root-cert.pem"] != (makefile / "root-cert.pem").read_text()
    workspace.run("preview", "--expect-no-changes")
    workspace.destroy()


def test_a_cacerts_of_another_type_is_refused(
    pulumi_env: dict[str, str], clusters: dict[str, LocalCluster], tmp_path_factory: pytest.TempPathFactory
) -> None:
    namespace = "istio-typed"
    workspace = namespaced_workspace(pulumi_env, clusters, tmp_path_factory, namespace, intermediate=FAST_KEYS)
    clusters["cluster1"].create_secret(namespace, "cacerts", {"ca-cert.pem": "x"}, type_="istio.io/ca-root")
    result = workspace.run("preview", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "Traceback" not in output
    assert f"cluster1: Secret {namespace}/cacerts has type 'istio.io/ca-root', not 'Opaque'" in output
    assert f"kubectl -n {namespace} delete secret cacerts" in output
