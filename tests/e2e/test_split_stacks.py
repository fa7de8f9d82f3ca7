"""The split layout (examples/split): a PKI stack and one stack per cluster exchange only CSRs and
certificates, so the root key lives in the PKI stack alone and each intermediate key in its own
cluster's stack, whether every stack has its own passphrase or all share one."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID

from tests.e2e.leak_audit import AUDIT
from tests.e2e.local_cluster import LocalCluster
from tests.e2e.pulumi_cli import Workspace, printed
from tests.e2e.split_layout import (
    CLUSTERS,
    Layout,
    audit_keys,
    bring_up,
    decrypted_export,
    key_of,
    keys_in,
    layout,
)
from tests.e2e.stacks import age_certificates
from tests.x509_checks import CACERTS_KEYS, check_cacerts_chain, load_certificates


def on_one_server(clusters: dict[str, LocalCluster]) -> dict[str, LocalCluster]:
    """east and west as two namespaces of one API server."""
    return dict.fromkeys(CLUSTERS, clusters["cluster1"])


@pytest.fixture(scope="module")
def split(
    tmp_path_factory: pytest.TempPathFactory,
    pulumi_env: dict[str, str],
    clusters: dict[str, LocalCluster],
    split_venv: Path,
) -> Layout:
    """The layout with a passphrase per stack, brought up by the first test; the next ones start from there."""
    passphrases = {"prod": "pki-only", "east": "east-only", "west": "west-only"}
    return layout(tmp_path_factory, pulumi_env, on_one_server(clusters), split_venv, "own", passphrases)


def test_split_stacks_bring_up_renew_and_keep_every_key_in_its_own_stack(split: Layout) -> None:
    bring_up(split)
    # What each stack runs does not grow with the mesh: the PKI reaches no cluster, a cluster stack its own.
    kubernetes = "pulumi:providers:kubernetes"
    assert [r for r in split.pki.resources().values() if r["type"] == kubernetes] == []
    for member in split.members.values():
        assert len([r for r in member.resources().values() if r["type"] == kubernetes]) == 1
    chains = {name: check_cacerts_chain(split.cacerts_files(name)) for name in CLUSTERS}
    root = chains["east"].issuer
    assert all(chain.roots == [root] and chain.issuer == root for chain in chains.values())
    chain = chains["east"]
    audit_keys(split)

    # Renewal: the PKI re-signs east's request in its window; east's stack writes it in place, same key.
    east = split.members["east"]
    before = split.cacerts("east")
    assert before is not None
    age_certificates(split.pki, 1, "east")
    assert split.pki.planned_changes() == {"east-cert": "replace"}
    split.pki.up()
    assert east.planned_changes() == {"east-cacerts": "update"}
    east.up()
    after = split.cacerts("east")
    assert after is not None and after["metadata"]["uid"] == before["metadata"]["uid"]
    files = split.cacerts_files("east")
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
    split = layout(tmp_path_factory, pulumi_env, on_one_server(clusters), split_venv, "shared", shared)
    bring_up(split)
    audit_keys(split)


@contextmanager
def output_edited(workspace: Workspace, output: str, edit: Callable[[dict[str, Any]], None]) -> Iterator[None]:
    """A stack's recorded output changed by `edit` for a while, as a broken or hostile stack would export it."""
    original = workspace.export()
    deployment = json.loads(original)
    (stack,) = [r for r in deployment["deployment"]["resources"] if r["type"] == "pulumi:pulumi:Stack"]
    edit(stack["outputs"][output])
    path = workspace.directory / "edited-state.json"
    path.write_text(json.dumps(deployment))
    workspace.run("stack", "import", "--file", str(path))
    try:
        yield
    finally:
        path.write_text(original)
        workspace.run("stack", "import", "--file", str(path))
        path.unlink()


def request_with_a_uri(split: Layout, name: str) -> str:
    """The request the cluster's stack would make, plus a SPIFFE URI SAN (a key of its own: it is never signed)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Istio"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Intermediate CA"),
            x509.NameAttribute(NameOID.LOCALITY_NAME, name),
        ]
    )
    names = [x509.DNSName(f"istiod.{split.namespace(name)}.svc"), x509.UniformResourceIdentifier(SPIFFE_URI)]
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    request = builder.add_extension(x509.SubjectAlternativeName(names), critical=False).sign(key, hashes.SHA256())
    return request.public_bytes(Encoding.PEM).decode()


SPIFFE_URI = "spiffe://cluster.local/ns/istio-system/sa/istiod"


def test_the_pki_refuses_a_request_for_more_than_its_description_and_signs_nothing(split: Layout) -> None:
    east, pki = split.members["east"], split.pki
    signed = pki.outputs()["istioCaPki"]["clusters"]["east"]["certPem"]
    resources = pki.resources()
    crafted = request_with_a_uri(split, "east")
    with output_edited(east, "istioCaMember", lambda out: out.update(csrPem=crafted)):
        for command in (["preview"], ["up", "--yes", "--skip-preview"]):
            refused = pki.run(*command, check=False)
            assert refused.returncode != 0 and "Traceback" not in printed(refused)
            assert (
                "stack organization/mesh-cluster/east, output istioCaMember.csrPem: "
                f"subjectAltName URI [{SPIFFE_URI!r}], not []"
            ) in printed(refused), printed(refused)[-600:]
    assert pki.resources() == resources
    assert pki.outputs()["istioCaPki"]["clusters"]["east"]["certPem"] == signed
    pki.run("preview", "--expect-no-changes")


def test_what_the_stacks_exchange_is_checked_before_anything_is_written(split: Layout) -> None:
    east, pki = split.members["east"], split.pki
    written = split.cacerts("east")
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
    another_bundle = split.cacerts_files("west")["ca-cert.pem"]
    edits: list[tuple[Callable[[dict[str, Any]], None], str]] = [
        (lambda out: out["clusters"]["east"].update(certPem={}), "output clusters.east.certPem is {}"),
        (lambda out: out.update(trustedRootsPem=another_bundle), "neither holds nor is held by the one cacerts holds"),
        (
            lambda out: out["clusters"]["east"].update(certPem=other_key_cert),
            "is for another key than this cluster's; cacerts is not written",
        ),
    ]
    for edit, message in edits:
        with output_edited(pki, "istioCaPki", edit):
            refused = east.run("up", "--yes", "--skip-preview", check=False)
            assert refused.returncode != 0 and message in printed(refused), printed(refused)[-600:]
            assert split.cacerts("east") == written
    assert {name: ws.resources() for name, ws in (("pki", pki), ("east", east))} == resources
    east.run("preview", "--expect-no-changes")
    pki.run("preview", "--expect-no-changes")


def test_a_new_key_generation_keeps_the_held_key_until_its_successor_is_signed(split: Layout) -> None:
    east, pki = split.members["east"], split.pki
    before = split.cacerts("east")
    assert before is not None
    east.run("config", "set", "keyGeneration", "2")
    east.up()  # the new key and its request; cacerts keeps the key the PKI's certificate is for
    assert split.cacerts("east") == before
    names = {urn.rsplit("::", 1)[-1] for urn in east.resources()}
    assert {"east-key", "east-g2-key", "east-g2-csr"} <= names
    assert pki.planned_changes() == {"east-cert": "replace"}  # the new request
    pki.up()
    east.up()
    after = split.cacerts("east")
    assert after is not None and after["metadata"]["uid"] == before["metadata"]["uid"]
    chain = check_cacerts_chain(split.cacerts_files("east"))
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
    chain = check_cacerts_chain(split.cacerts_files(name))
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
    assert files == split.cacerts_files("east")
    assert check_cacerts_chain(files).issuer == root
    pki_state, east_state = decrypted_export(pki), decrypted_export(east)
    assert keys_in(pki_state) == {key_of(pki_state, name) for name in ("root-g2-key", "vm-apps-ca-key", "vm-apps-key")}
    assert keys_in(east_state) == {key_of(east_state, "east-g2-key")}
