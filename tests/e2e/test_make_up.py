"""`make up` on a fresh clone: the dev stack in one command, offline, and nothing changes the second time."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.leak_audit import AUDIT
from tests.e2e.pulumi_cli import Toolchain
from tests.program import PROJECT_DIR


def fresh_clone(directory: Path) -> Path:
    """The working tree's tracked files, as a clone has them, in a repository of their own: the
    toolchain keys its cache by them."""
    files = subprocess.run(["git", "ls-files"], cwd=PROJECT_DIR, capture_output=True, text=True, check=True)
    for name in files.stdout.splitlines():
        if (PROJECT_DIR / name).exists():
            (directory / name).parent.mkdir(parents=True, exist_ok=True)
            # A link (istio_ca -> components) stays a link, as git keeps it.
            shutil.copy2(PROJECT_DIR / name, directory / name, follow_symlinks=False)
    subprocess.run(["git", "init", "-q"], cwd=directory, check=True)
    subprocess.run(["git", "add", "-A"], cwd=directory, check=True)
    # The linked virtualenv (the one running these tests) is the clone's: make must see it up to date.
    (directory / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    installed = Path(sys.prefix, ".installed").stat().st_mtime
    for requirements in ("requirements.txt", "requirements-dev.txt"):
        os.utime(directory / requirements, (installed - 1, installed - 1))
    return directory


def new_user_environment(toolchain: Toolchain, home: Path) -> dict[str, str]:
    """A shell without Pulumi: no pulumi on PATH, no PULUMI_* settings, no kubeconfig."""
    path = [p for p in os.environ["PATH"].split(os.pathsep) if not (Path(p) / "pulumi").exists()]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_") and k != "KUBECONFIG"}
    env.update(PATH=os.pathsep.join(path), HOME=str(home), ISTIO_CA_TOOLCHAIN_CACHE=str(toolchain.root.parent))
    return env


def make_up(clone: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["make", "up"], cwd=clone, env=env, capture_output=True, text=True, timeout=1200)
    AUDIT.transcripts.append(result.stdout + result.stderr)
    return result


def test_make_up_runs_the_dev_stack_from_a_fresh_clone_and_twice_changes_nothing(
    toolchain: Toolchain, tmp_path: Path
) -> None:
    if not Path(sys.prefix, ".installed").exists():
        pytest.fail(f"{sys.prefix} is not the virtualenv `make` made: run the suite with `make test`")
    clone = fresh_clone(tmp_path / "clone")
    AUDIT.plain_places.add(clone / ".pulumi-state")
    AUDIT.key_directories.add(clone / "rendered")
    home = tmp_path / "home"
    home.mkdir()
    env = new_user_environment(toolchain, home)

    first = make_up(clone, env)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "17 created" in first.stdout
    for cluster in ("cluster1", "cluster2"):
        manifest = f"rendered/{cluster}/1-manifest/v1-secret-istio-system-cacerts.yaml"
        assert (clone / manifest).is_file()
        assert f"  {cluster}: kubectl apply -f {manifest}" in first.stdout
    assert (clone / ".pulumi-state" / ".pulumi").is_dir()  # the state stays inside the project
    ignored = subprocess.run(["git", "status", "--porcelain", "--ignored"], cwd=clone, capture_output=True, text=True)
    assert "!! .pulumi-state/" in ignored.stdout and "!! rendered/" in ignored.stdout
    assert not (home / ".pulumi").exists()  # Pulumi wrote nothing outside the project (plugins included)

    second = make_up(clone, env)
    assert second.returncode == 0, second.stdout[-3000:]
    assert "17 unchanged" in second.stdout and "created" not in second.stdout


def test_make_up_refuses_a_stack_that_reaches_a_cluster(toolchain: Toolchain, tmp_path: Path) -> None:
    clone = fresh_clone(tmp_path / "clone")
    stack = clone / "Pulumi.dev.yaml"
    stack.write_text(stack.read_text() + "  istio-ca:kubeconfig: ~/.kube/config\n")
    env = new_user_environment(toolchain, tmp_path)
    result = make_up(clone, env)
    assert result.returncode != 0
    assert "Pulumi.dev.yaml sets a kubeconfig: make up encrypts with a public development passphrase" in result.stderr
    assert not (clone / ".pulumi-state").exists()

    env["PULUMI_STACK"] = "prod"
    stack.write_text(stack.read_text().replace("  istio-ca:kubeconfig: ~/.kube/config\n", ""))
    result = make_up(clone, env)
    assert result.returncode != 0
    assert "PULUMI_STACK=prod: make up runs only the shipped 'dev' stack" in result.stderr
