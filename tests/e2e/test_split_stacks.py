"""The split layout (examples/split): a PKI stack and one stack per cluster exchange only CSRs and
certificates, so the root key lives in the PKI stack alone and each intermediate key in its own
cluster's stack, whether every stack has its own passphrase or all share one."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from istio_ca.private_keys import private_keys_in
from tests.e2e.leak_audit import AUDIT
from tests.e2e.local_cluster import LocalCluster
from tests.e2e.pulumi_cli import COMMAND_TIMEOUT_SECONDS, Workspace, new_workspace, printed
from tests.e2e.stacks import age_certificates
from tests.installed import install_checkout
from tests.program import PROJECT_DIR
from tests.x509_checks import CACERTS_KEYS, check_cacerts_chain, load_certificates

SECRET_SIGNATURE = "4dabf18193072939515e22adb298388d"
CLUSTERS = ("east", "west")


@dataclass
class Layout:
    pki: Workspace
    members: dict[str, Workspace]
    cluster: LocalCluster
    run: str

    def namespace(self, name: str) -> str:
        """Each cluster stack's Istio namespace: the clusters of the layout share one API server."""
        return f"split-{name}-{self.run}"


@pytest.fixture(scope="module")
def split_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_checkout(tmp_path_factory.mktemp("split-install"), "examples/split/pki")


def layout(
    tmp_path_factory: pytest.TempPathFactory,
    pulumi_env: dict[str, str],
    cluster: LocalCluster,
    venv: Path,
    run: str,
    passphrases: dict[str, str],
) -> Layout:
    """The PKI stack and two cluster stacks on a backend of their own, each stack with its passphrase."""
    backend = tmp_path_factory.mktemp(f"split-backend-{run}")
    AUDIT.plain_places.add(backend)

    def workspace(project: str, stack: str) -> Workspace:
        env = {**pulumi_env, "PULUMI_BACKEND_URL": backend.as_uri(), "PULUMI_CONFIG_PASSPHRASE": passphrases[stack]}
        directory = tmp_path_factory.mktemp(f"split-{run}-{stack}") / "project"
        return new_workspace(directory, stack, env, PROJECT_DIR / "examples" / "split" / project, virtualenv=venv)

    split = Layout(pki=workspace("pki", "prod"), members={}, cluster=cluster, run=run)
    for index, name in enumerate(CLUSTERS):
        split.pki.run("config", "set", "--path", f"clusters[{index}].name", name)
        split.pki.run("config", "set", "--path", f"clusters[{index}].istioNamespace", split.namespace(name))
    for name in CLUSTERS:
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
    """The README's commands as written: each cluster stack says what to run next until cacerts is written."""
    commands = readme_bring_up()
    assert commands == [
        ("cluster", "east"),
        ("cluster", "west"),
        ("pki", "prod"),
        ("cluster", "east"),
        ("cluster", "west"),
    ]
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
            assert split.cluster.secret(split.namespace(stack), "cacerts") is None
    for workspace in (split.pki, *split.members.values()):
        workspace.run("preview", "--expect-no-changes")


@pytest.fixture(scope="module")
def split(
    tmp_path_factory: pytest.TempPathFactory,
    pulumi_env: dict[str, str],
    clusters: dict[str, LocalCluster],
    split_venv: Path,
) -> Layout:
    """The layout with a passphrase per stack, brought up by the first test; the next ones start from there."""
    passphrases = {"prod": "pki-only", "east": "east-only", "west": "west-only"}
    return layout(tmp_path_factory, pulumi_env, clusters["cluster1"], split_venv, "own", passphrases)


def test_split_stacks_bring_up_renew_and_keep_every_key_in_its_own_stack(split: Layout) -> None:
    bring_up(split)
    # What each stack runs does not grow with the mesh: the PKI reaches no cluster, a cluster stack its own.
    kubernetes = "pulumi:providers:kubernetes"
    assert [r for r in split.pki.resources().values() if r["type"] == kubernetes] == []
    for member in split.members.values():
        assert len([r for r in member.resources().values() if r["type"] == kubernetes]) == 1
    chains = {
        name: check_cacerts_chain(split.cluster.secret_data(split.namespace(name), "cacerts")) for name in CLUSTERS
    }
    root = chains["east"].issuer
    assert all(chain.roots == [root] and chain.issuer == root for chain in chains.values())
    chain = chains["east"]
    audit_keys(split)

    # Renewal: the PKI re-signs east's request in its window; east's stack writes it in place, same key.
    east = split.members["east"]
    before = split.cluster.secret(split.namespace("east"), "cacerts")
    assert before is not None
    age_certificates(split.pki, 1, "east")
    assert split.pki.planned_changes() == {"east-cert": "replace"}
    split.pki.up()
    assert east.planned_changes() == {"east-cacerts": "update"}
    east.up()
    after = split.cluster.secret(split.namespace("east"), "cacerts")
    assert after is not None and after["metadata"]["uid"] == before["metadata"]["uid"]
    files = split.cluster.secret_data(split.namespace("east"), "cacerts")
    renewed = check_cacerts_chain(files)
    assert renewed.issuer == root and renewed.intermediate.public_key() == chain.intermediate.public_key()
    assert after["data"]["ca-key.pem"] == before["data"]["ca-key.pem"]  # the key stayed in east's stack
    audit_keys(split)


def test_one_shared_passphrase_still_keeps_every_key_in_its_own_stack(
    tmp_path_factory: pytest.TempPathFactory,
    pulumi_env: dict[str, str],
    clusters: dict[str, LocalCluster],
    split_venv: Path,
) -> None:
    """A team with one KMS key: any secret that crossed a stack would be readable there; none did."""
    shared = {stack: "one-for-all" for stack in ("prod", *CLUSTERS)}
    split = layout(tmp_path_factory, pulumi_env, clusters["cluster1"], split_venv, "shared", shared)
    bring_up(split)
    audit_keys(split)


def pki_exchange_edited(split: Layout, edit: Callable[[dict[str, Any]], None]) -> Iterator[None]:
    """The PKI stack's recorded `istioCaPki` output changed by `edit` for a while, as a broken PKI would export it."""
    original = split.pki.export()
    deployment = json.loads(original)
    (stack,) = [r for r in deployment["deployment"]["resources"] if r["type"] == "pulumi:pulumi:Stack"]
    edit(stack["outputs"]["istioCaPki"])
    path = split.pki.directory / "edited-state.json"
    path.write_text(json.dumps(deployment))
    split.pki.run("stack", "import", "--file", str(path))
    try:
        yield
    finally:
        path.write_text(original)
        split.pki.run("stack", "import", "--file", str(path))
        path.unlink()


def test_what_the_stacks_exchange_is_checked_before_anything_is_written(split: Layout) -> None:
    east, pki = split.members["east"], split.pki
    namespace = split.namespace("east")
    written = split.cluster.secret(namespace, "cacerts")
    resources = {name: ws.resources() for name, ws in (("pki", pki), ("east", east))}

    # The PKI refuses a request that is not the intermediate its own description gives the cluster.
    pki.run("config", "set", "--path", "clusters[0].intermediate.org", "Acme")
    for command in (["preview"], ["up", "--yes", "--skip-preview"]):
        refused = pki.run(*command, check=False)
        assert refused.returncode != 0
        assert (
            "stack organization/mesh-cluster/east, output istioCaMember.csrPem: subject organizationName is "
            "['Istio'], not ['Acme']" in printed(refused)
        )
    pki.run("config", "rm", "--path", "clusters[0].intermediate")

    west_cert = json.loads(pki.export())
    (stack,) = [r for r in west_cert["deployment"]["resources"] if r["type"] == "pulumi:pulumi:Stack"]
    other_key_cert = stack["outputs"]["istioCaPki"]["clusters"]["west"]["certPem"]
    another_bundle = split.cluster.secret_data(split.namespace("west"), "cacerts")["ca-cert.pem"]
    edits: list[tuple[Callable[[dict[str, Any]], None], str]] = [
        (lambda out: out["clusters"]["east"].update(certPem={}), "output clusters.east.certPem is {}"),
        (lambda out: out.update(trustedRootsPem=another_bundle), "neither holds nor is held by the one cacerts holds"),
        (
            lambda out: out["clusters"]["east"].update(certPem=other_key_cert),
            "is for another key than this cluster's; cacerts is not written",
        ),
    ]
    for edit, message in edits:
        with contextmanager(pki_exchange_edited)(split, edit):
            refused = east.run("up", "--yes", "--skip-preview", check=False)
            assert refused.returncode != 0 and message in printed(refused), printed(refused)[-600:]
            assert split.cluster.secret(namespace, "cacerts") == written
    assert {name: ws.resources() for name, ws in (("pki", pki), ("east", east))} == resources
    east.run("preview", "--expect-no-changes")
    pki.run("preview", "--expect-no-changes")


def test_a_new_key_generation_keeps_the_held_key_until_its_successor_is_signed(split: Layout) -> None:
    east, pki = split.members["east"], split.pki
    namespace = split.namespace("east")
    before = split.cluster.secret(namespace, "cacerts")
    assert before is not None
    east.run("config", "set", "keyGeneration", "2")
    east.up()  # the new key and its request; cacerts keeps the key the PKI's certificate is for
    assert split.cluster.secret(namespace, "cacerts") == before
    names = {urn.rsplit("::", 1)[-1] for urn in east.resources()}
    assert {"east-key", "east-g2-key", "east-g2-csr"} <= names
    assert pki.planned_changes() == {"east-cert": "replace"}  # the new request
    pki.up()
    east.up()
    after = split.cluster.secret(namespace, "cacerts")
    assert after is not None and after["metadata"]["uid"] == before["metadata"]["uid"]
    chain = check_cacerts_chain(split.cluster.secret_data(namespace, "cacerts"))
    export = decrypted_export(east)
    assert chain.intermediate.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo) == key_of(
        export, "east-g2-key"
    )
    assert east.planned_changes() == {"east-key": "delete", "east-csr": "delete"}  # the held key leaves now
    east.up()
    assert keys_in(decrypted_export(east)) == {key_of(decrypted_export(east), "east-g2-key")}
    east.run("preview", "--expect-no-changes")
    east.run("config", "set", "keyGeneration", "1")
    refused = east.run("preview", check=False)
    assert refused.returncode != 0 and "keyGeneration is 1, lower than the 2 cacerts holds" in printed(refused)
    east.run("config", "set", "keyGeneration", "2")


def held(split: Layout, name: str) -> tuple[list[Any], Any]:
    chain = check_cacerts_chain(split.cluster.secret_data(split.namespace(name), "cacerts"))
    return chain.roots, chain.issuer


def test_a_root_rotation_goes_phase_by_phase_as_every_cluster_stack_catches_up(split: Layout) -> None:
    pki, east, west = split.pki, split.members["east"], split.members["west"]
    (old,), _ = held(split, "east")

    def phase(value: str) -> None:
        pki.run("config", "set", "--path", "rootRotation.phase", value)
        pki.run("config", "set", "--path", "rootRotation.retireAfterHours", "0")

    phase("trust-both")
    pki.up()
    east.up()  # west has not run yet
    roots, issuer = held(split, "east")
    assert roots[0] == old and len(roots) == 2 and issuer == old
    new = roots[1]
    assert held(split, "west") == ([old], old)

    phase("switch")  # west still trusts only the old root: the PKI stays at trust-both
    waiting = pki.up()
    assert "rootRotation.phase 'switch' waits for west, which has not applied 'trust-both'" in printed(waiting)
    assert "run stack organization/mesh-cluster/west, then this one" in printed(waiting)
    west.up()
    assert held(split, "west") == ([old, new], old)
    pki.up()  # now every cluster trusts both: each intermediate is re-signed by the new root
    for member in (east, west):
        member.up()
    assert held(split, "east") == ([old, new], new) and held(split, "west") == ([old, new], new)

    phase("retire")
    pki.up()
    for member in (east, west):
        member.up()
    assert held(split, "east") == ([new], new) and held(split, "west") == ([new], new)
    pki.run("config", "rm", "rootRotation")
    pki.run("preview", "--expect-no-changes")
    for member in (east, west):
        member.run("preview", "--expect-no-changes")
    pki_state = decrypted_export(pki)
    assert keys_in(pki_state) == {key_of(pki_state, "root-g2-key")}  # the old root's key has left


def test_vm_workloads_and_exported_files_stay_with_the_keys_they_hold(split: Layout) -> None:
    """A VM's keys are made in the PKI stack, where they are signed; each cluster stack writes its own files."""
    pki, east = split.pki, split.members["east"]
    pki.run("config", "set", "--path", "workloads[0].namespace", "vm-apps")
    pki.run("config", "set", "exportDirectory", "out")
    east.run("config", "set", "exportDirectory", "out")
    vm, own = pki.directory / "out", east.directory / "out"
    AUDIT.key_directories |= {vm, own}  # key files by design: 0600 in 0700 directories, checked at the end
    pki.up()
    east.up()
    (root,) = load_certificates((vm / "root-cert.pem").read_text())
    (leaf,) = load_certificates((vm / "vm-apps" / "workload-cert.pem").read_text())
    (vm_ca,) = load_certificates((vm / "vm-apps" / "ca-cert.pem").read_text())
    leaf.verify_directly_issued_by(vm_ca)
    vm_ca.verify_directly_issued_by(root)
    files = {name: (own / "east" / name).read_text() for name in CACERTS_KEYS}
    assert files == split.cluster.secret_data(split.namespace("east"), "cacerts")
    assert check_cacerts_chain(files).issuer == root
    pki_state, east_state = decrypted_export(pki), decrypted_export(east)
    assert keys_in(pki_state) == {key_of(pki_state, name) for name in ("root-g2-key", "vm-apps-ca-key", "vm-apps-key")}
    assert keys_in(east_state) == {key_of(east_state, "east-g2-key")}
