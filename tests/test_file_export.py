"""The Makefile's file layout: what is written, with which modes, and what is cleaned up."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from istio_ca.file_export import MANIFEST, component_layout, protect_directory, write_layout
from tests.program import fake_cert, fake_private_key, run_program

CLUSTER_FILES = {"ca-cert.pem": "C", "ca-key.pem": "K", "root-cert.pem": "R", "cert-chain.pem": "CR"}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_layout_modes_keep_keys_private() -> None:
    assert component_layout("c1", CLUSTER_FILES) == {
        "c1/ca-cert.pem": ("C", 0o644),
        "c1/ca-key.pem": ("K", 0o600),
        "c1/root-cert.pem": ("R", 0o644),
        "c1/cert-chain.pem": ("CR", 0o644),
    }
    layout = component_layout("vm", {"key.pem": "k", "ca-key.pem": "ck", "workload-cert.pem": "w"})
    assert layout == {"vm/key.pem": ("k", 0o600), "vm/ca-key.pem": ("ck", 0o600), "vm/workload-cert.pem": ("w", 0o644)}


def test_write_layout_writes_files_with_their_modes(tmp_path: Path) -> None:
    write_layout(tmp_path, {"root-cert.pem": ("R", 0o644), **component_layout("c1", CLUSTER_FILES)})
    assert (tmp_path / "root-cert.pem").read_text() == "R"
    assert {p.name: p.read_text() for p in (tmp_path / "c1").iterdir()} == CLUSTER_FILES
    assert mode(tmp_path / "c1" / "ca-key.pem") == 0o600
    assert mode(tmp_path / "c1" / "ca-cert.pem") == 0o644
    assert mode(tmp_path) == mode(tmp_path / "c1") == 0o700
    assert not list(tmp_path.rglob(".*.tmp"))


def test_files_of_a_removed_cluster_are_removed_and_nothing_else(tmp_path: Path) -> None:
    write_layout(tmp_path, {**component_layout("c1", CLUSTER_FILES), **component_layout("c2", CLUSTER_FILES)})
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "c2" / "extra.pem").write_text("mine too")
    write_layout(tmp_path, component_layout("c1", CLUSTER_FILES))
    assert sorted(p.name for p in (tmp_path / "c2").iterdir()) == ["extra.pem"]
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert (tmp_path / "c1" / "ca-key.pem").read_text() == "K"
    write_layout(tmp_path, {})
    assert not (tmp_path / "c1").exists()
    assert (tmp_path / MANIFEST).read_text() == "[]\n"


def test_a_key_file_left_world_readable_is_tightened(tmp_path: Path) -> None:
    (tmp_path / "c1").mkdir()
    (tmp_path / "c1" / "ca-key.pem").write_text("old")
    (tmp_path / "c1" / "ca-key.pem").chmod(0o644)
    write_layout(tmp_path, component_layout("c1", CLUSTER_FILES))
    assert mode(tmp_path / "c1" / "ca-key.pem") == 0o600


def test_up_exports_the_makefile_layout_without_the_root_key(tmp_path: Path) -> None:
    run_program(
        {
            "clusters": [{"name": "cluster1"}],
            "workloads": [{"namespace": "vm-apps"}],
            "exportDirectory": str(tmp_path),
        }
    )
    files = {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()}
    assert files == {
        MANIFEST,
        ".gitignore",  # `*`: keys never committed by accident
        "root-cert.pem",
        "cluster1/ca-cert.pem",
        "cluster1/ca-key.pem",
        "cluster1/cert-chain.pem",
        "cluster1/root-cert.pem",
        "vm-apps/key.pem",
        "vm-apps/workload-cert.pem",
        "vm-apps/workload-cert-chain.pem",
        "vm-apps/root-cert.pem",
        "vm-apps/ca-cert.pem",
        "vm-apps/ca-key.pem",
    }
    assert (tmp_path / "root-cert.pem").read_text() == fake_cert("root-cert")
    assert (tmp_path / "cluster1" / "ca-key.pem").read_text() == fake_private_key("cluster1-key")
    assert (tmp_path / "vm-apps" / "key.pem").read_text() == fake_private_key("vm-apps-key")
    everything = "".join(p.read_text() for p in tmp_path.rglob("*.pem"))
    assert fake_private_key("root-key") not in everything


def test_nothing_is_exported_unless_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    run_program({"clusters": [{"name": "cluster1"}]})
    # Only the render directory, prepared for the provider: owner-only and ignored by git.
    assert [str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")] == [
        "rendered",
        "rendered/cluster1",
        "rendered/cluster1/.gitignore",
    ]
    assert mode(tmp_path / "rendered" / "cluster1") == 0o700
    assert (tmp_path / "rendered" / "cluster1" / ".gitignore").read_text().splitlines()[-1] == "*"


def test_preview_writes_nothing(tmp_path: Path) -> None:
    run_program({"clusters": [{"name": "cluster1"}], "exportDirectory": str(tmp_path / "out")}, preview=True)
    assert not (tmp_path / "out").exists()


def test_the_parents_a_protected_directory_needs_are_made_the_owners_only(tmp_path: Path) -> None:
    """The default `rendered/` holds every cluster's directory: made here, others cannot list it either; a
    parent that was there keeps its mode."""
    tmp_path.chmod(0o755)
    protect_directory(tmp_path / "rendered" / "east")
    modes = {
        path: stat.S_IMODE(path.stat().st_mode)
        for path in (tmp_path, tmp_path / "rendered", tmp_path / "rendered" / "east")
    }
    assert modes == {tmp_path: 0o755, tmp_path / "rendered": 0o700, tmp_path / "rendered" / "east": 0o700}
    (tmp_path / "rendered").chmod(0o750)  # the user's choice, once it exists
    protect_directory(tmp_path / "rendered" / "west")
    assert stat.S_IMODE((tmp_path / "rendered").stat().st_mode) == 0o750
    assert stat.S_IMODE((tmp_path / "rendered" / "west").stat().st_mode) == 0o700
