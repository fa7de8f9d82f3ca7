"""The split layout (examples/split) as the end-to-end tests run it: a PKI stack and one stack per cluster on
a backend of their own, each stack with its passphrase, and the checks that every key stays in its own stack."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from istio_ca.private_keys import private_keys_in
from tests.e2e.leak_audit import AUDIT
from tests.e2e.local_cluster import LocalCluster
from tests.e2e.pulumi_cli import COMMAND_TIMEOUT_SECONDS, Workspace, new_workspace, printed
from tests.program import PROJECT_DIR

SECRET_SIGNATURE = "4dabf18193072939515e22adb298388d"
CLUSTERS = ("east", "west")


@dataclass
class Layout:
    pki: Workspace
    members: dict[str, Workspace]
    clusters: dict[str, LocalCluster]
    """The API server each cluster stack writes to, by cluster name."""
    run: str

    def namespace(self, name: str) -> str:
        """Each cluster stack's Istio namespace, apart from the others' where they share an API server."""
        return f"split-{name}-{self.run}"

    def cacerts(self, name: str) -> dict[str, Any] | None:
        """The cluster's `cacerts` Secret as its API server has it now; None without one."""
        return self.clusters[name].secret(self.namespace(name), "cacerts")

    def cacerts_files(self, name: str) -> dict[str, str]:
        """The files of the cluster's `cacerts`, decoded."""
        return self.clusters[name].secret_data(self.namespace(name), "cacerts")


def layout(
    tmp_path_factory: pytest.TempPathFactory,
    pulumi_env: dict[str, str],
    clusters: dict[str, LocalCluster],
    venv: Path,
    run: str,
    passphrases: dict[str, str],
) -> Layout:
    """The PKI stack and a stack per cluster (`clusters`: the API server of each) on a backend of their own,
    each stack with its passphrase."""
    backend = tmp_path_factory.mktemp(f"split-backend-{run}")
    AUDIT.plain_places.add(backend)

    def workspace(project: str, stack: str) -> Workspace:
        env = {**pulumi_env, "PULUMI_BACKEND_URL": backend.as_uri(), "PULUMI_CONFIG_PASSPHRASE": passphrases[stack]}
        directory = tmp_path_factory.mktemp(f"split-{run}-{stack}") / "project"
        return new_workspace(directory, stack, env, PROJECT_DIR / "examples" / "split" / project, virtualenv=venv)

    split = Layout(pki=workspace("pki", "prod"), members={}, clusters=dict(clusters), run=run)
    for index, name in enumerate(clusters):
        split.pki.run("config", "set", "--path", f"clusters[{index}].name", name)
        split.pki.run("config", "set", "--path", f"clusters[{index}].istioNamespace", split.namespace(name))
    for name, cluster in clusters.items():
        cluster.create_namespace(split.namespace(name))
        member = workspace("cluster", name)
        member.run("config", "set", "kubeconfig", str(cluster.kubeconfig))
        member.run("config", "set", "istioNamespace", split.namespace(name))
        split.members[name] = member
    return split


def decrypted_export(workspace: Workspace) -> dict[str, Any]:
    """`pulumi stack export --show-secrets`, kept out of the transcripts: it holds keys by design."""
    done = subprocess.run(
        ["pulumi", "stack", "export", "--show-secrets", "--stack", workspace.stack, "--non-interactive"],
        cwd=workspace.directory,
        env=workspace.env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_SECONDS,
    )
    assert done.returncode == 0, "pulumi stack export --show-secrets failed"
    exported = json.loads(done.stdout)
    AUDIT.remember(done.stdout)
    return dict(exported)


def texts(value: Any) -> list[str]:
    """Every string in an export, a decrypted secret's plaintext (JSON text) decoded."""
    if isinstance(value, dict):
        return [text for item in value.values() for text in texts(item)]
    if isinstance(value, list):
        return [text for item in value for text in texts(item)]
    if isinstance(value, str) and value.startswith('"'):
        return texts(json.loads(value))
    return [value] if isinstance(value, str) else []


def keys_in(value: Any) -> set[bytes]:
    """Every private key anywhere in a decrypted state, in any encoding the shared finder reads, as the public
    key it pairs with (its PEM, PKCS#8, OpenSSH and base64 forms are one key)."""
    return set().union(*(private_keys_in(text) for text in texts(value)))


def key_of(export: dict[str, Any], name: str) -> bytes:
    """The key the resource `name` holds."""
    (resource,) = [r for r in export["deployment"]["resources"] if r["urn"].endswith(f"::{name}")]
    (key,) = keys_in(resource["outputs"]["privateKeyPem"])
    return key


def secret_outputs(export: dict[str, Any]) -> list[str]:
    """The stack and the split components' outputs that are secrets: there must be none."""
    kinds = ("pulumi:pulumi:Stack", "istio-ca:index:MeshPKI", "istio-ca:index:MeshMember")
    resources = export["deployment"]["resources"]
    return [
        r["urn"] for r in resources if r["type"] in kinds and SECRET_SIGNATURE in json.dumps(r.get("outputs") or {})
    ]


def audit_keys(split: Layout) -> None:
    """The root key only in the PKI stack's state; each intermediate key only in its own cluster stack's."""
    pki = decrypted_export(split.pki)
    members = {name: decrypted_export(ws) for name, ws in split.members.items()}
    assert keys_in(pki) == {key_of(pki, "root-key")}
    for name, export in members.items():
        assert keys_in(export) == {key_of(export, f"{name}-key")}, name
    for export in (pki, *members.values()):
        assert secret_outputs(export) == []


README_UP = re.compile(r"^pulumi up --yes --cwd (pki|cluster) --stack (\w+)", re.MULTILINE)


def readme_bring_up() -> list[tuple[str, str]]:
    """The README's bring-up commands, in order: (project, stack)."""
    readme = (PROJECT_DIR / "README.md").read_text()
    section = readme.split("## Split the PKI from the clusters", 1)[1].split("\n## ", 1)[0]
    return README_UP.findall(section)


def bring_up(split: Layout) -> None:
    """The README's commands as written (for every cluster stack where it names east and west): each cluster
    stack says what to run next until cacerts is written."""
    assert readme_bring_up() == [
        ("cluster", "east"),
        ("cluster", "west"),
        ("pki", "prod"),
        ("cluster", "east"),
        ("cluster", "west"),
    ]
    members = [("cluster", name) for name in split.members]
    commands = [*members, ("pki", "prod"), *members]
    before = {name: split.cacerts(name) for name in split.members}
    signed = False
    for project, stack in commands:
        workspace = split.pki if project == "pki" else split.members[stack]
        result = workspace.run("up", "--yes")
        if project == "pki":
            signed = True
        elif not signed:
            assert f"{stack}: stack organization/mesh-pki/prod has not signed this cluster's request yet" in printed(
                result
            )
            assert split.cacerts(stack) == before[stack]  # none yet, or the one it takes over, untouched
    for workspace in (split.pki, *split.members.values()):
        workspace.run("preview", "--expect-no-changes")
