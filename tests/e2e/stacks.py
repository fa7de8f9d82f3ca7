"""Stacks the end-to-end tests set up: each in its own Istio namespace, so no test depends on another."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.local_cluster import LocalCluster
from tests.e2e.pulumi_cli import Workspace, new_workspace
from tests.x509_checks import CACERTS_KEYS, CacertsChain, check_cacerts_chain

FAST_KEYS = {"keyAlgorithm": "ECDSA"}
"""Intermediates with P-256 keys: for tests about something other than key generation."""


def namespaced_workspace(
    pulumi_env: dict[str, str],
    local_clusters: dict[str, LocalCluster],
    tmp_path_factory: pytest.TempPathFactory,
    namespace: str,
    **config: Any,
) -> Workspace:
    """A stack whose clusters (by default one per local cluster) write `cacerts` into `namespace`,
    which is created in each cluster first."""
    for cluster in local_clusters.values():
        cluster.create_namespace(namespace)
    workspace = new_workspace(tmp_path_factory.mktemp(namespace) / "project", namespace, pulumi_env)
    workspace.write_config(
        {
            "istioNamespace": namespace,
            "clusters": [{"name": name, "kubeconfig": str(c.kubeconfig)} for name, c in local_clusters.items()],
            **config,
        }
    )
    return workspace


def set_root_in_config(workspace: Workspace, cert_pem: str, key_pem: str) -> None:
    """As the README says: the PEMs through stdin, the key as a secret."""
    workspace.run("config", "set", "--path", "istio-ca:existingRoot.certPem", stdin=cert_pem)
    workspace.run("config", "set", "--secret", "--path", "istio-ca:existingRoot.keyPem", stdin=key_pem)


def makefile_cacerts(cluster: LocalCluster, namespace: str, makefile_dir: Path, **extra: str) -> dict[str, Any]:
    """`kubectl create secret generic cacerts -n NS --from-file=...` of the Makefile's cluster files."""
    files = {name: (makefile_dir / name).read_text() for name in sorted(CACERTS_KEYS)}
    cluster.create_secret(namespace, "cacerts", {**files, **extra})
    secret = cluster.secret(namespace, "cacerts")
    assert secret is not None
    return secret


def decoded(secret: dict[str, Any]) -> dict[str, str]:
    return {key: base64.b64decode(value).decode() for key, value in secret.get("data", {}).items()}


def data_owners(secret: dict[str, Any]) -> dict[str, set[str]]:
    """Which field managers own each `data` key, from managedFields."""
    owners: dict[str, set[str]] = {}
    for entry in secret["metadata"].get("managedFields", []):
        for field in entry.get("fieldsV1", {}).get("f:data", {}):
            if field != ".":  # the map itself, not one of its keys
                owners.setdefault(field.removeprefix("f:"), set()).add(entry["manager"])
    return owners


def age_certificates(workspace: Workspace, hours_left: float, *names: str) -> None:
    """Let time pass for the named clusters' (or workloads') certificates: the state then says each ends in
    `hours_left` hours, in the certificate resource and in the mesh's outputs, as it would that much later
    (the tls provider and the program both judge renewal from what the state records)."""
    ends = (datetime.now(UTC) + timedelta(hours=hours_left)).strftime("%Y-%m-%dT%H:%M:%SZ")
    deployment = json.loads(workspace.export())
    for resource in deployment["deployment"]["resources"]:
        urn = resource["urn"]
        if any(urn.endswith(f"::{name}-cert") for name in names):
            resource["outputs"]["validityEndTime"] = ends
        # The mesh component's record (what the next run reads), and the stack outputs the program exports from it.
        if urn.split("::")[-2].endswith(("pulumi:pulumi:Stack", "istio-ca:index:MeshCA")):
            for group in ("clusters", "workloads"):
                for name in names:
                    if name in resource["outputs"].get(group, {}):
                        resource["outputs"][group][name]["notAfter"] = ends
    path = workspace.directory / "aged-state.json"
    path.write_text(json.dumps(deployment))
    workspace.run("stack", "import", "--file", str(path))
    path.unlink()


def renews_in_place(
    workspace: Workspace, cluster: LocalCluster, namespace: str, before: CacertsChain
) -> dict[str, Any]:
    """Day two for one cluster: its intermediate aged to an hour left is re-issued under the same root, and its
    `cacerts` is updated in place (the same Secret object, which istiod watches), then nothing changes; returns
    the renewed Secret."""
    first = cluster.secret(namespace, "cacerts")
    assert first is not None
    age_certificates(workspace, 1, cluster.name)
    assert workspace.planned_changes() == {f"{cluster.name}-cert": "replace", f"{cluster.name}-cacerts": "update"}
    workspace.up()
    renewed = cluster.secret(namespace, "cacerts")
    assert renewed is not None and renewed["metadata"]["uid"] == first["metadata"]["uid"]
    after = check_cacerts_chain(cluster.secret_data(namespace, "cacerts"))
    assert after.intermediate.serial_number != before.intermediate.serial_number and after.issuer == before.issuer
    workspace.run("preview", "--expect-no-changes")
    return renewed
