"""The split layout on a shared PostgreSQL backend, driven by istio_ca.fleet (Pulumi's Automation API): the
server is started by this test run on 127.0.0.1 and stopped at its end."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.leak_audit import AUDIT
from tests.e2e.postgres import PostgresServer, postgres_server
from tests.e2e.pulumi_cli import COMMAND_TIMEOUT_SECONDS, copy_program, new_workspace
from tests.program import PROJECT_DIR
from tests.x509_checks import check_cacerts_chain

CLUSTERS = ("east", "west", "north")


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


def drive(pki_dir: Path, cluster_dir: Path, env: dict[str, str], venv: Path) -> tuple[int, str, dict[str, Any]]:
    summary = pki_dir.parent / "summary.json"
    command = [str(venv / "bin" / "python"), "-m", "istio_ca.fleet", "--pki-dir", str(pki_dir)]
    command += ["--cluster-dir", str(cluster_dir), "-j", "2", "--summary", str(summary)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_SECONDS)
    AUDIT.transcripts.append(done.stdout + done.stderr)
    assert "PRIVATE KEY" not in done.stdout + done.stderr
    return done.returncode, done.stdout, json.loads(summary.read_text())


def test_the_driver_brings_up_the_split_layout_on_postgres_then_changes_nothing(
    postgres: PostgresServer,
    pulumi_env: dict[str, str],
    split_venv: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    base = tmp_path_factory.mktemp("fleet")
    env = {**pulumi_env, "PULUMI_BACKEND_URL": postgres.url}
    pki = new_workspace(base / "pki", "prod", env, PROJECT_DIR / "examples" / "split" / "pki", virtualenv=split_venv)
    for index, name in enumerate(CLUSTERS):
        pki.run("config", "set", "--path", f"clusters[{index}].name", name)
    cluster_dir = base / "cluster"
    cluster_dir.mkdir()
    copy_program(PROJECT_DIR / "examples" / "split" / "cluster", cluster_dir)
    (cluster_dir / ".venv").symlink_to(split_venv, target_is_directory=True)
    AUDIT.plain_places.add(cluster_dir)
    AUDIT.key_directories.add(cluster_dir / "rendered")

    code, printed, summary = drive(pki.directory, cluster_dir, env, split_venv)
    assert code == 0, printed
    lines = printed.splitlines()
    assert lines[0] == "requests (round 1): 3 stack(s), 2 at a time"
    for name in CLUSTERS:  # each cluster stack made by the driver, then given its cacerts
        assert any(line.endswith(f" {name}: up, 4 created (new stack)") for line in lines), printed
        assert any(line.endswith(f" {name}: up, 2 created") for line in lines), printed
        rendered = cluster_dir / "rendered" / name
        check_cacerts_chain(_cacerts_files(rendered))
    assert [run["step"] for run in summary["runs"]] == ["requests"] * 3 + ["sign"] + ["install"] * 3
    assert summary["ok"] is True and summary["failed"] == []
    assert postgres.sql("SELECT count(*) FROM pulumi_state WHERE key LIKE '%/stacks/%.json'") == "4"

    code, printed, summary = drive(pki.directory, cluster_dir, env, split_venv)
    assert code == 0, printed
    assert sum(": up, no changes" in line for line in printed.splitlines()) == 7, printed


def _cacerts_files(rendered: Path) -> dict[str, str]:
    """The rendered cacerts Secret's files, decoded."""
    (manifest,) = [p for p in rendered.rglob("*.yaml") if "cacerts" in p.read_text()]
    documents = [d for d in yaml.safe_load_all(manifest.read_text()) if d and d.get("kind") == "Secret"]
    (secret,) = documents
    if "stringData" in secret:
        return dict(secret["stringData"])
    return {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}
