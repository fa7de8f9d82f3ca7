"""Root rotations in the split layout, each cluster stack on an API server of its own: a phase never
outruns a cluster stack whose cluster is down, and a mesh running on a Makefile root moves into the
layout on that root, then rotates away from it. Every `cacerts` is parsed after each step."""

from __future__ import annotations

from pathlib import Path

import pytest

from istio_ca.private_keys import private_keys_in
from tests.e2e.local_cluster import LocalCluster
from tests.e2e.pulumi_cli import Workspace, printed
from tests.e2e.rotation_checks import NOT_STARTED, RETIRE, SWITCH, TRUST_BOTH, Roots, down
from tests.e2e.split_layout import Layout, bring_up, decrypted_export, key_of, keys_in, layout
from tests.e2e.stacks import makefile_cacerts
from tests.makefile import makefile_commands, openssl
from tests.x509_checks import check_cacerts_chain, load_certificates


def set_phase(pki: Workspace, phase: str) -> None:
    pki.run("config", "set", "--path", "rootRotation.phase", phase)
    pki.run("config", "set", "--path", "rootRotation.retireAfterHours", "0")


def held_by_every_cluster(split: Layout, roots: Roots) -> dict[str, tuple[tuple[str, ...], str]]:
    """What each cluster's `cacerts` holds, parsed, with its whole chain checked."""
    for name in split.members:
        check_cacerts_chain(split.cacerts_files(name))
    return {name: roots.held(split.clusters[name], split.namespace(name)) for name in split.members}


def test_a_phase_waits_for_a_cluster_stack_whose_cluster_is_down_and_goes_on_once_it_caught_up(
    tmp_path_factory: pytest.TempPathFactory,
    pulumi_env: dict[str, str],
    three_clusters: dict[str, LocalCluster],
    split_venv: Path,
) -> None:
    on_their_own = {
        "east": three_clusters["cluster1"],
        "west": three_clusters["cluster2"],
        "south": three_clusters["cluster3"],
    }
    passphrases = dict.fromkeys(("prod", *on_their_own), "rotation")
    split = layout(tmp_path_factory, pulumi_env, on_their_own, split_venv, "three", passphrases)
    bring_up(split)
    pki, south = split.pki, split.members["south"]
    (old,) = load_certificates(split.cacerts_files("east")["root-cert.pem"])
    roots = Roots(old)

    # trust-both while south's cluster is down: its stack fails, and its cacerts and report stay as they were.
    set_phase(pki, "trust-both")
    pki.up()
    with down(on_their_own["south"]):
        for name in ("east", "west"):
            split.members[name].up()
        failed = south.run("up", "--yes", "--skip-preview", check=False)
        assert failed.returncode != 0 and "Traceback" not in printed(failed), printed(failed)[-3000:]
        roots.new = load_certificates(split.cacerts_files("east")["root-cert.pem"])[1]

        # switch: the PKI stays at trust-both and names south's stack; no intermediate is re-signed.
        set_phase(pki, "switch")
        assert not any(op == "replace" for op in pki.planned_changes().values())
        waiting = printed(pki.up())
        assert (
            "rootRotation.phase 'switch' waits for south, which has not applied 'trust-both' (its cacerts trusts "
            "only the old root); every cluster stays at 'trust-both' meanwhile: run stack "
            "organization/mesh-cluster/south, then this one"
        ) in waiting
        for name in ("east", "west"):
            split.members[name].run("preview", "--expect-no-changes")
    assert held_by_every_cluster(split, roots) == {"east": TRUST_BOTH, "west": TRUST_BOTH, "south": NOT_STARTED}

    # south is back: its stack catches up to trust-both, then the PKI switches everyone.
    south.up()
    assert held_by_every_cluster(split, roots)["south"] == TRUST_BOTH
    pki.up()
    for member in split.members.values():
        member.up()
    assert held_by_every_cluster(split, roots) == dict.fromkeys(split.members, SWITCH)

    set_phase(pki, "retire")
    pki.up()
    for member in split.members.values():
        member.up()
    assert held_by_every_cluster(split, roots) == dict.fromkeys(split.members, RETIRE)
    pki.run("config", "rm", "rootRotation")
    for workspace in (pki, *split.members.values()):
        workspace.run("preview", "--expect-no-changes")
    pki_state = decrypted_export(pki)
    assert keys_in(pki_state) == {key_of(pki_state, "root-g2-key")}  # the old root's key has left


def makefile_mesh(out: Path, split: Layout) -> str:
    """`make root-ca east-cacerts west-cacerts`, each cluster's files in its `cacerts`; the root's PEM."""
    directories = {name: out / name for name in split.members}
    for args, cwd in makefile_commands(out, directories, key_bits=2048):
        openssl(*args, cwd=cwd)
    root_pem = (out / "root-cert.pem").read_text()
    for name, directory in directories.items():
        (directory / "root-cert.pem").write_text(root_pem)
        (directory / "cert-chain.pem").write_text((directory / "ca-cert.pem").read_text() + root_pem)
        makefile_cacerts(split.clusters[name], split.namespace(name), directory)
    return root_pem


def public_key(key_pem: str) -> bytes:
    (key,) = private_keys_in(key_pem)
    return key


def only_its_own_key(split: Layout) -> None:
    """Each cluster stack's state holds its own intermediate key and no other."""
    for name, member in split.members.items():
        export = decrypted_export(member)
        assert keys_in(export) == {key_of(export, f"{name}-key")}, name


def test_a_mesh_on_a_makefile_root_moves_into_the_split_layout_on_that_root_then_rotates_away(
    tmp_path_factory: pytest.TempPathFactory,
    pulumi_env: dict[str, str],
    clusters: dict[str, LocalCluster],
    split_venv: Path,
    tmp_path: Path,
) -> None:
    on_their_own = {"east": clusters["cluster1"], "west": clusters["cluster2"]}
    passphrases = {"prod": "pki-only", "east": "east-only", "west": "west-only"}
    split = layout(tmp_path_factory, pulumi_env, on_their_own, split_venv, "adopted", passphrases)
    root_pem = makefile_mesh(tmp_path, split)
    root_key_pem = (tmp_path / "root-key.pem").read_text()
    uids = {name: (split.cacerts(name) or {})["metadata"]["uid"] for name in split.members}
    pki = split.pki
    pki.run("config", "set", "--path", "existingRoot.certPem", stdin=root_pem)
    pki.run("config", "set", "--secret", "--path", "existingRoot.keyPem", stdin=root_key_pem)

    # The move: the same root in every bundle, byte for byte; each cacerts taken over in place with an
    # intermediate from the cluster's own stack, signed by the adopted root.
    bring_up(split)
    (old,) = load_certificates(root_pem)
    roots = Roots(old)
    for name in split.members:
        assert split.cacerts_files(name)["root-cert.pem"] == root_pem
        assert (split.cacerts(name) or {})["metadata"]["uid"] == uids[name]
    assert held_by_every_cluster(split, roots) == dict.fromkeys(split.members, NOT_STARTED)
    only_its_own_key(split)
    assert keys_in(decrypted_export(pki)) == {public_key(root_key_pem)}

    # Away from it, phase by phase; the root made here is ECDSA, as the PKI program's `root` says.
    for phase, holds in (("trust-both", TRUST_BOTH), ("switch", SWITCH), ("retire", RETIRE)):
        set_phase(pki, phase)
        pki.up()
        for member in split.members.values():
            member.up()
        if roots.new is None:
            roots.new = load_certificates(split.cacerts_files("east")["root-cert.pem"])[1]
        assert held_by_every_cluster(split, roots) == dict.fromkeys(split.members, holds)

    # The adopted root has left every bundle: dropping existingRoot and the rotation changes nothing issued.
    pki.run("config", "rm", "existingRoot")
    pki.run("config", "rm", "rootRotation")
    assert pki.planned_changes() == {}
    pki.up()
    for workspace in (pki, *split.members.values()):
        workspace.run("preview", "--expect-no-changes")
    types = {resource["type"] for resource in pki.resources().values()}
    assert "istio-ca:index:RootCA" in types and "istio-ca:index:ExistingRoot" not in types
    only_its_own_key(split)
    pki_state = decrypted_export(pki)
    assert keys_in(pki_state) == {key_of(pki_state, "root-g2-key")}  # the adopted root's key has left
