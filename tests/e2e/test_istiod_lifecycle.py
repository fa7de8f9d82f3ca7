"""Day two under the real istiod: it reloads a renewed intermediate by itself, and follows a root
rotation phase by phase with ISTIO_MULTIROOT_MESH=true, while every workload keeps being trusted.

istiod's log is kept as evidence (shown on failure); the assertions are on what istiod signs and
publishes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.e2e.istiod import Istiod, load_chain, running_istiod
from tests.e2e.local_cluster import LocalCluster
from tests.e2e.pulumi_cli import Toolchain, Workspace
from tests.e2e.stacks import FAST_KEYS, age_certificates, namespaced_workspace
from tests.x509_checks import load_certificates, openssl_verifies

WORKLOADS = "lifecycle-workloads"
SERVICE_ACCOUNT = "sleep"
RELOADED = "Istiod has detected the newly added intermediate CA and updated its key and certs accordingly"
WAIT_SECONDS = 30


def wait_for(what: str, condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"not within {WAIT_SECONDS}s: {what}")


def reloads(istiod: Istiod) -> int:
    return istiod.log_text().count(RELOADED)


def apply_and_project(workspace: Workspace, istiod: Istiod) -> None:
    """`pulumi up`, then the kubelet's projection of the changed Secret; istiod must reload by itself."""
    before = reloads(istiod)
    workspace.up()
    istiod.sync_cacerts()
    wait_for("istiod reloads its plugged-in CA", lambda: reloads(istiod) > before)


def issue(istiod: Istiod, trusted: str, workloads: str = WORKLOADS) -> list[x509.Certificate]:
    """A workload certificate from istiod's CA service, over TLS trusting `trusted`: leaf, intermediate, roots."""
    _, chain = istiod.workload_certificate(workloads, SERVICE_ACCOUNT, trusted.encode())
    return load_chain(chain)


def pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(Encoding.PEM).decode()


def test_istiod_reloads_a_renewed_intermediate_without_a_restart(
    pulumi_env: dict[str, str],
    clusters: dict[str, LocalCluster],
    toolchain: Toolchain,
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
) -> None:
    namespace = "istio-renew-istiod"
    cluster = clusters["cluster1"]
    workspace = namespaced_workspace(
        pulumi_env,
        {"cluster1": cluster},
        tmp_path_factory,
        namespace,
        intermediate={**FAST_KEYS, "days": 2, "renewBeforeDays": 1},
    )
    workspace.up()
    old = cluster.secret_data(namespace, "cacerts")
    with running_istiod(cluster, namespace, toolchain, tmp_path / "istiod") as istiod:
        cluster.create_namespace(WORKLOADS)
        pid = istiod.process.pid if istiod.process else None
        before = issue(istiod, old["root-cert.pem"])
        assert before[1] == load_certificates(old["ca-cert.pem"])[0]

        age_certificates(workspace, 20, "cluster1")  # a day later: inside the window
        apply_and_project(workspace, istiod)

        renewed = cluster.secret_data(namespace, "cacerts")
        assert renewed["ca-cert.pem"] != old["ca-cert.pem"] and renewed["root-cert.pem"] == old["root-cert.pem"]
        assert istiod.process is not None and istiod.process.pid == pid and istiod.process.poll() is None
        after = issue(istiod, renewed["root-cert.pem"])
        (new_intermediate,) = load_certificates(renewed["ca-cert.pem"])
        assert after[1] == new_intermediate  # new workload certificates come from the renewed intermediate
        after[0].verify_directly_issued_by(new_intermediate)
        # The certificate issued before still verifies against the root istiod publishes.
        published = istiod.published_root(WORKLOADS)
        assert openssl_verifies(tmp_path, pem(before[0]), pem(before[1]), published)
    workspace.destroy()


@pytest.mark.parametrize("same_key", [False, True], ids=["new key", "same key"])
def test_istiod_follows_a_root_rotation_phase_by_phase(
    pulumi_env: dict[str, str],
    clusters: dict[str, LocalCluster],
    toolchain: Toolchain,
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
    same_key: bool,
) -> None:
    namespace = "istio-rotate-istiod" + ("-same-key" if same_key else "")
    workloads = WORKLOADS + ("-same-key" if same_key else "")
    cluster = clusters["cluster2"]
    workspace = namespaced_workspace(
        pulumi_env,
        {"cluster2": cluster},
        tmp_path_factory,
        namespace,
        root={"keyAlgorithm": "ECDSA"},
        intermediate=FAST_KEYS,
    )
    workspace.up()
    first = cluster.secret_data(namespace, "cacerts")
    old_root = first["root-cert.pem"]
    settings = {"ISTIO_MULTIROOT_MESH": "true"}
    with running_istiod(cluster, namespace, toolchain, tmp_path / "istiod", settings=settings) as istiod:
        cluster.create_namespace(workloads)
        old_leaf = issue(istiod, old_root, workloads)

        def phase(name: str) -> dict[str, str]:
            config = workspace.config()
            # retireAfterHours 0: retire at once, to show what it does to a certificate issued before.
            config["rootRotation"] = {"phase": name, "retireAfterHours": 0, "sameKey": same_key}
            workspace.write_config(config)
            apply_and_project(workspace, istiod)
            files = cluster.secret_data(namespace, "cacerts")
            wait_for(
                f"{name}: istiod publishes the bundle",
                lambda: istiod.published_root(workloads) == files["root-cert.pem"],
            )
            return files

        # trust both: istiod takes the two-root bundle; it still signs with the old intermediate.
        both = phase("trust-both")
        assert both["root-cert.pem"].startswith(old_root)
        assert "Updating new ROOT-CA" in istiod.log_text()
        leaf = issue(istiod, both["root-cert.pem"], workloads)
        assert leaf[1] == load_certificates(first["ca-cert.pem"])[0]
        assert openssl_verifies(tmp_path, pem(old_leaf[0]), pem(old_leaf[1]), istiod.published_root(workloads))

        # switch: new workload certificates come from the intermediate the new root signed.
        switched = phase("switch")
        new_root = load_certificates(switched["root-cert.pem"])[1]
        leaf = issue(istiod, switched["root-cert.pem"], workloads)
        assert leaf[1] == load_certificates(switched["ca-cert.pem"])[0]
        leaf[1].verify_directly_issued_by(new_root)
        assert openssl_verifies(tmp_path, pem(old_leaf[0]), pem(old_leaf[1]), istiod.published_root(workloads))

        # retire: only the new root is published. What was issued under the old root no longer verifies,
        # unless the new root is a same-key renewal of it (same key and subject): then it still does.
        retired = phase("retire")
        assert load_certificates(retired["root-cert.pem"]) == [new_root]
        leaf = issue(istiod, retired["root-cert.pem"], workloads)
        assert openssl_verifies(tmp_path, pem(leaf[0]), pem(leaf[1]), istiod.published_root(workloads))
        still = openssl_verifies(tmp_path, pem(old_leaf[0]), pem(old_leaf[1]), istiod.published_root(workloads))
        assert still is same_key

        # The steady state after it: no change planned, istiod keeps signing.
        config = workspace.config()
        config.pop("rootRotation")
        workspace.write_config(config)
        workspace.run("preview", "--expect-no-changes")
        workspace.up()
        assert issue(istiod, retired["root-cert.pem"], workloads)[1] == leaf[1]
    workspace.destroy()


def test_istiod_takes_an_aborted_rotation_back_to_the_old_root(
    pulumi_env: dict[str, str],
    clusters: dict[str, LocalCluster],
    toolchain: Toolchain,
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
) -> None:
    namespace, workloads = "istio-abort-istiod", "abort-workloads"
    cluster = clusters["cluster1"]
    workspace = namespaced_workspace(
        pulumi_env, {"cluster1": cluster}, tmp_path_factory, namespace, root=FAST_KEYS, intermediate=FAST_KEYS
    )
    workspace.up()
    first = cluster.secret_data(namespace, "cacerts")
    settings = {"ISTIO_MULTIROOT_MESH": "true"}
    with running_istiod(cluster, namespace, toolchain, tmp_path / "istiod", settings=settings) as istiod:
        cluster.create_namespace(workloads)
        old_leaf = issue(istiod, first["root-cert.pem"], workloads)

        def rotation(config_value: dict[str, str] | None) -> dict[str, str]:
            config = {key: value for key, value in workspace.config().items() if key != "rootRotation"}
            workspace.write_config({**config, "rootRotation": config_value} if config_value else config)
            apply_and_project(workspace, istiod)
            files = cluster.secret_data(namespace, "cacerts")
            wait_for("istiod publishes the bundle", lambda: istiod.published_root(workloads) == files["root-cert.pem"])
            return files

        both = rotation({"phase": "trust-both"})
        assert len(load_certificates(both["root-cert.pem"])) == 2
        # The abort: istiod takes the subset, the old root alone, and goes on signing with the same intermediate.
        aborted = rotation(None)
        assert aborted == first
        leaf = issue(istiod, aborted["root-cert.pem"], workloads)
        assert leaf[1] == load_certificates(first["ca-cert.pem"])[0]
        for issued in (leaf, old_leaf):
            assert openssl_verifies(tmp_path, pem(issued[0]), pem(issued[1]), istiod.published_root(workloads))
        assert istiod.process is not None and istiod.process.poll() is None
    workspace.destroy()
