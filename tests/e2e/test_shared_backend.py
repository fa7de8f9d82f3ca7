"""The split layout on a shared PostgreSQL backend, driven by istio_ca.fleet (Pulumi's Automation API) and by the
CLI, with the faults a shared backend adds: two runs of one stack at once, a run killed outright, the database
stopped, a cluster down under the driver. The server is started by this test run on 127.0.0.1 and stopped at its
end; each test keeps its stacks in a table of its own."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.e2e.leak_audit import AUDIT
from tests.e2e.local_cluster import LocalCluster, free_ports
from tests.e2e.postgres import PostgresServer, postgres_server
from tests.e2e.processes import reaped
from tests.e2e.pulumi_cli import COMMAND_TIMEOUT_SECONDS, Workspace, copy_program, new_workspace, printed
from tests.e2e.rotation_checks import down
from tests.e2e.split_layout import decrypted_export, key_of, keys_in
from tests.program import PROJECT_DIR
from tests.x509_checks import CacertsChain, check_cacerts_chain

CLUSTERS = ("east", "west", "north")
LOCKED = re.compile(r"error: the stack is currently locked by \d+ lock\(s\)")
"""How Pulumi's DIY backends (PostgreSQL among them) refuse a run of a stack another run holds."""
WAIT_SECONDS = 120
BACKEND_DOWN_SECONDS = 120
"""How long an `up` may take to fail once the database is gone: the DIY backend tries a checkpoint write 11 times
over about 32 s, printing nothing meanwhile."""


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@dataclass
class Fleet:
    """The split layout's two projects on one backend, laid out as the driver runs them: the PKI stack `prod`,
    and one directory of the cluster project holding a stack per cluster."""

    pki: Workspace
    cluster_dir: Path
    venv: Path

    def add(self, name: str, **config: str) -> Workspace:
        """The cluster stack `name`, made with `config` (without `kubeconfig` it renders its manifests)."""
        member = Workspace(directory=self.cluster_dir, stack=name, env=self.pki.env)
        member.run("stack", "init", "--secrets-provider", "passphrase")
        for key, value in config.items():
            member.run("config", "set", key, value)
        return member

    def drive(self) -> tuple[int, str, dict[str, Any]]:
        """`python -m istio_ca.fleet` over the whole layout: its exit code, what it printed, its summary."""
        summary = self.pki.directory.parent / "summary.json"
        command = [str(self.venv / "bin" / "python"), "-m", "istio_ca.fleet", "--pki-dir", str(self.pki.directory)]
        command += ["--cluster-dir", str(self.cluster_dir), "-j", "2", "--summary", str(summary)]
        done = subprocess.run(
            command, env=self.pki.env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_SECONDS
        )
        AUDIT.transcripts.append(done.stdout + done.stderr)
        assert "PRIVATE KEY" not in done.stdout + done.stderr
        return done.returncode, done.stdout, json.loads(summary.read_text())

    def rendered_cacerts(self, name: str) -> dict[str, str]:
        """The files of the `cacerts` Secret the cluster stack `name` rendered, decoded."""
        (manifest,) = [p for p in (self.cluster_dir / "rendered" / name).rglob("*.yaml") if "cacerts" in p.read_text()]
        documents = [d for d in yaml.safe_load_all(manifest.read_text()) if d and d.get("kind") == "Secret"]
        (secret,) = documents
        if "stringData" in secret:
            return dict(secret["stringData"])
        return {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}


def new_fleet(
    base: Path, pulumi_env: dict[str, str], backend_url: str, venv: Path, namespaces: Mapping[str, str | None]
) -> Fleet:
    """The PKI stack, its `clusters` the names in `namespaces`, each with its Istio namespace where one is given,
    and the cluster project's directory (no stack yet), on the backend `backend_url`."""
    env = {**pulumi_env, "PULUMI_BACKEND_URL": backend_url}
    pki = new_workspace(base / "pki", "prod", env, PROJECT_DIR / "examples" / "split" / "pki", virtualenv=venv)
    for index, (name, namespace) in enumerate(namespaces.items()):
        pki.run("config", "set", "--path", f"clusters[{index}].name", name)
        if namespace is not None:
            pki.run("config", "set", "--path", f"clusters[{index}].istioNamespace", namespace)
    cluster_dir = base / "cluster"
    cluster_dir.mkdir()
    copy_program(PROJECT_DIR / "examples" / "split" / "cluster", cluster_dir)
    (cluster_dir / ".venv").symlink_to(venv, target_is_directory=True)
    AUDIT.plain_places.add(cluster_dir)
    AUDIT.key_directories.add(cluster_dir / "rendered")
    return Fleet(pki=pki, cluster_dir=cluster_dir, venv=venv)


def locks(postgres: PostgresServer, table: str, stack: str) -> int:
    """How many runs hold the cluster stack `stack`: the DIY backend's lock objects, one per run."""
    return int(postgres.sql(f"SELECT count(*) FROM {table} WHERE key LIKE '%/.pulumi/locks/%/mesh-cluster/{stack}/%'"))


def wait_for(condition: str, check: Callable[[], bool], process: subprocess.Popen[str]) -> None:
    """Until `check()` holds, while `process` (a `pulumi up`) runs."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not check():
        assert process.poll() is None, f"pulumi up ended before {condition}"
        assert time.monotonic() < deadline, f"no {condition} after {WAIT_SECONDS} s"
        time.sleep(0.05)


def test_the_driver_brings_up_the_split_layout_on_postgres_then_changes_nothing(
    postgres: PostgresServer,
    pulumi_env: dict[str, str],
    split_venv: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    fleet = new_fleet(tmp_path_factory.mktemp("fleet"), pulumi_env, postgres.url, split_venv, dict.fromkeys(CLUSTERS))
    code, report, summary = fleet.drive()
    assert code == 0, report
    lines = report.splitlines()
    assert lines[0] == "requests (round 1): 3 stack(s), 2 at a time"
    for name in CLUSTERS:  # each cluster stack made by the driver, then given its cacerts
        assert any(line.endswith(f" {name}: up, 4 created (new stack)") for line in lines), report
        assert any(line.endswith(f" {name}: up, 2 created") for line in lines), report
        check_cacerts_chain(fleet.rendered_cacerts(name))
    assert [run["step"] for run in summary["runs"]] == ["requests"] * 3 + ["sign"] + ["install"] * 3
    assert summary["ok"] is True and summary["failed"] == []
    assert postgres.sql("SELECT count(*) FROM pulumi_state WHERE key LIKE '%/stacks/%.json'") == "4"
    # Each stack the driver made shares the PKI stack's passphrase salt: the PKI derives one key, not one per cluster.
    salt = yaml.safe_load((fleet.pki.directory / "Pulumi.prod.yaml").read_text())["encryptionsalt"]
    for name in CLUSTERS:
        assert yaml.safe_load((fleet.cluster_dir / f"Pulumi.{name}.yaml").read_text())["encryptionsalt"] == salt
        checkpoint = json.loads(Workspace(fleet.cluster_dir, name, fleet.pki.env).export())
        assert checkpoint["deployment"]["secrets_providers"] == {"type": "passphrase", "state": {"salt": salt}}

    code, report, summary = fleet.drive()
    assert code == 0, report
    assert sum(": up, no changes" in line for line in report.splitlines()) == 7, report


def test_two_ups_of_one_stack_never_both_proceed_while_another_stack_runs_alongside(
    postgres: PostgresServer,
    pulumi_env: dict[str, str],
    split_venv: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Two CI jobs of one cluster stack at once: the backend's lock lets one through at most (both may refuse, each
    seeing the other's lock), and a retry then runs; another cluster's stack runs at the same time undisturbed."""
    base = tmp_path_factory.mktemp("locks")
    fleet = new_fleet(base, pulumi_env, postgres.table_url("locks"), split_venv, dict.fromkeys(("east", "west")))
    east, west = fleet.add("east"), fleet.add("west")
    members = (east, east, west)
    started = [member.start("up", "--yes", "--skip-preview") for member in members]
    outputs = [member.finish(process) for member, process in zip(members, started, strict=True)]
    codes = [process.returncode for process in started]

    assert codes[2] == 0, outputs[2]
    refused = [output for code, output in zip(codes[:2], outputs[:2], strict=True) if code != 0]
    assert refused, "two `pulumi up` of one stack both ran"
    for output in refused:
        assert LOCKED.search(output), output[-3000:]
    # The state is whole: the key of the run that went through (if one did) recorded once, nothing pending.
    state = decrypted_export(east)
    assert len(keys_in(state)) == 2 - len(refused)
    assert not state["deployment"].get("pending_operations")
    east.run("preview")

    east.up()
    state = decrypted_export(east)
    assert keys_in(state) == {key_of(state, "east-key")}
    for member in (east, west):
        member.run("preview", "--expect-no-changes")
    assert locks(postgres, "locks", "east") == locks(postgres, "locks", "west") == 0


def test_a_cluster_stack_killed_mid_up_recovers_with_the_readme_commands_on_the_same_root(
    postgres: PostgresServer,
    pulumi_env: dict[str, str],
    split_venv: Path,
    clusters: dict[str, LocalCluster],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """SIGKILLed once the backend has recorded that its new key is being created (the next checkpoint write is
    held in the database, so the kill lands there every time), the stack is left locked with the create pending.
    The README's recovery commands, as written, release it; the cluster's `cacerts` keeps its root throughout."""
    cluster, namespace = clusters["cluster1"], "pg-killed"
    cluster.create_namespace(namespace)
    fleet = new_fleet(
        tmp_path_factory.mktemp("killed"), pulumi_env, postgres.table_url("killed"), split_venv, {"east": namespace}
    )
    east = fleet.add("east", kubeconfig=str(cluster.kubeconfig), istioNamespace=namespace)
    code, report, _ = fleet.drive()
    assert code == 0, report
    before = check_cacerts_chain(cluster.secret_data(namespace, "cacerts"))

    east.run("config", "set", "keyGeneration", "2")  # the next `up` makes a new key and its request
    with postgres.writes_held("killed", "/.pulumi/stacks/mesh-cluster/east.json", "::east-g2-key"):
        process = east.start("up", "--yes", "--skip-preview")
        wait_for("its write after the new key's pending create held", postgres.write_held, process)
        with reaped(process.pid):
            os.killpg(process.pid, signal.SIGKILL)
            east.finish(process, timeout=WAIT_SECONDS)
    assert process.returncode == -signal.SIGKILL
    pending = json.loads(east.export())["deployment"].get("pending_operations") or []
    assert [(op["type"], op["resource"]["urn"].split("::")[-1]) for op in pending] == [("creating", "east-g2-key")]
    assert locks(postgres, "killed", "east") == 1

    # The README's "An interrupted `pulumi up`", command for command.
    east.run("cancel", "--yes")
    east.run("refresh", "--yes", "--clear-pending-creates", "--skip-preview")
    east.up()
    assert not json.loads(east.export())["deployment"].get("pending_operations")
    east.run("preview", "--expect-no-changes")
    assert check_cacerts_chain(cluster.secret_data(namespace, "cacerts")) == before  # kept until the PKI signs

    # The recovered stack goes on: its new key's certificate, from the same root.
    code, report, _ = fleet.drive()
    assert code == 0, report
    after = check_cacerts_chain(cluster.secret_data(namespace, "cacerts"))
    assert (after.roots, after.issuer) == (before.roots, before.issuer)
    spki = (Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    assert after.intermediate.public_key().public_bytes(*spki) != before.intermediate.public_key().public_bytes(*spki)


def test_a_stopped_database_fails_each_command_with_its_reason_and_a_clean_run_follows_its_return(
    postgres: PostgresServer,
    pulumi_env: dict[str, str],
    split_venv: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """With the database down a command stops at once; an `up` it goes down under (its checkpoint write held
    in the database, so it goes down there every time) fails after the backend's write retries, never hangs,
    and its lock outlives it: `pulumi cancel` comes first once the database is back. The server is started
    again whatever happens: the module's tests share it."""
    fleet = new_fleet(
        tmp_path_factory.mktemp("stopped"), pulumi_env, postgres.table_url("stopped"), split_venv, {"south": None}
    )
    south = fleet.add("south")
    south.up()
    key = key_of(decrypted_export(south), "south-key")
    try:
        postgres.stop()
        refused = south.run("up", "--yes", "--skip-preview", check=False)
    finally:
        postgres.start()
    said = printed(refused)
    assert refused.returncode != 0
    assert "error: unable to open state database" in said and "failed to ping PostgreSQL" in said, said
    assert "connect: connection refused" in said, said
    assert postgres.password not in said  # the URL is named with its credential masked

    with postgres.writes_held("stopped", "/.pulumi/stacks/mesh-cluster/south.json", "::south-key"):
        process = south.start("up", "--yes", "--skip-preview")  # no changes: its one write is its last
        wait_for("its checkpoint write held", postgres.write_held, process)
        try:
            postgres.stop()
            output = south.finish(process, timeout=BACKEND_DOWN_SECONDS)
        finally:
            postgres.start()
    said = " ".join(output.split())
    assert process.returncode != 0
    assert "error: writing snapshot: failed to save snapshot" in said and "connection refused" in said, said
    assert "there was a problem deleting the lock" in said, said

    locked = south.run("up", "--yes", "--skip-preview", check=False)
    assert locked.returncode != 0 and LOCKED.search(printed(locked)), printed(locked)[-3000:]
    south.run("cancel", "--yes")
    south.up()
    south.run("preview", "--expect-no-changes")
    assert keys_in(decrypted_export(south)) == {key}


def test_the_driver_finishes_the_other_stacks_while_a_cluster_is_down_and_converges_once_it_is_back(
    postgres: PostgresServer,
    pulumi_env: dict[str, str],
    split_venv: Path,
    three_clusters: dict[str, LocalCluster],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A cluster down stops its own stack only: the driver names it, in its report and its summary, and the
    other clusters get their `cacerts`; once it is back, one more run brings it in on the same root."""
    on_their_own = {
        "east": three_clusters["cluster1"],
        "west": three_clusters["cluster2"],
        "south": three_clusters["cluster3"],
    }
    namespaces = {name: f"pg-fleet-{name}" for name in on_their_own}
    fleet = new_fleet(tmp_path_factory.mktemp("down"), pulumi_env, postgres.table_url("down"), split_venv, namespaces)
    for name, cluster in on_their_own.items():
        cluster.create_namespace(namespaces[name])
        fleet.add(name, kubeconfig=str(cluster.kubeconfig), istioNamespace=namespaces[name])

    def cacerts(name: str) -> CacertsChain:
        return check_cacerts_chain(on_their_own[name].secret_data(namespaces[name], "cacerts"))

    with down(on_their_own["south"]):
        code, report, summary = fleet.drive()
    assert code == 1, report
    assert summary["failed"] and all(entry.startswith("south (") for entry in summary["failed"]), summary
    assert f"failed: {', '.join(summary['failed'])}" in report.splitlines(), report
    failures = [line for line in report.splitlines() if " south: failed: " in line]
    assert failures and all(on_their_own["south"].server.removeprefix("https://") in line for line in failures)
    reached = {name: cacerts(name) for name in ("east", "west")}
    assert reached["east"].roots == reached["west"].roots
    assert on_their_own["south"].secret(namespaces["south"], "cacerts") is None

    code, report, summary = fleet.drive()
    assert code == 0, report
    assert summary["ok"] is True and summary["failed"] == []
    assert cacerts("south").roots == reached["east"].roots
    for name, chain in reached.items():
        assert cacerts(name) == chain  # not re-issued


def test_the_pki_stack_reads_more_cluster_stacks_than_the_engines_postgres_pool_holds(
    postgres: PostgresServer,
    pulumi_env: dict[str, str],
    split_venv: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Pulumi's PostgreSQL backend hangs when stack lookups hold every connection of its pool (2 x GOMAXPROCS):
    eight cluster stacks read at once did. The PKI reads them a few at a time, so its run ends."""
    names = [f"c{index}" for index in range(8)]
    fleet = new_fleet(
        tmp_path_factory.mktemp("many"), pulumi_env, postgres.table_url("many"), split_venv, dict.fromkeys(names)
    )
    for name in names:
        fleet.add(name)  # made, never run: each lookup finds its checkpoint and reads it
    fleet.pki.env["GOMAXPROCS"] = "2"  # a pool of 4 connections on any machine
    preview = fleet.pki.start("preview")
    try:
        output = fleet.pki.finish(preview, timeout=WAIT_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(preview.pid, signal.SIGKILL)  # its own process group: the engine and all it started
        preview.communicate()
        pytest.fail(f"the PKI stack's preview still ran after {WAIT_SECONDS} s: the engine's reads hang")
    assert preview.returncode == 0, output
    for name in names:
        assert f"{name}: stack organization/mesh-cluster/{name} has not run yet: run it, then this stack" in output


def test_a_server_whose_port_is_taken_before_it_binds_starts_on_another(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as holder:  # another worker's API server on the port the probe found free
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        found = iter([[taken]])
        monkeypatch.setattr("tests.e2e.postgres.free_ports", lambda count: next(found, None) or free_ports(count))
        with postgres_server() as server:
            assert server.port != taken
            assert server.sql("SELECT current_user") == "pulumi"
