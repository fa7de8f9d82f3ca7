"""The split layout at scale against one stack, in render mode, on a PostgreSQL backend this run starts.

    ISTIO_CA_TOOLCHAIN=<dir> .venv/bin/python -m bench.fleet [--quick] [--json FILE]

The full run (a couple of hours on 2 cores), one run of each:
- N=2, 50, 200: the split layout through the driver (`python -m istio_ca.fleet`) at K=4 on PostgreSQL: a cold
  bring-up and an unchanged round; at N=50 also a renewal round (every intermediate near its end), K=1 and
  K=2, K=4 on the file backend, and a cold bring-up with RSA 4096 keys;
- each N: one cluster stack's unchanged `up` and the PKI stack's unchanged `preview`, run alone;
- N=50 and 200: one stack of N clusters on PostgreSQL: a cold `up` (ECDSA; at N=50 also RSA 4096), an
  unchanged `preview` and `up`, at N=50 a renewal `up`. A command still running after 30 minutes is stopped
  and reported as such.
`--quick` does the same at N=2 and 10 only, without K=1 and K=2 (about 7 minutes).

For each: wall time, the peak PSS of the largest single stack's process tree (the `pulumi` command and all
under it) and of the whole run, the backend's size (the database, or the file tree), the WAL a round wrote
on PostgreSQL, each kind of stack's median time in a round, the PKI stack's state per cluster. Then each
target against its figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from bench.benchmark import BYTES_PER_MB, ECDSA, RSA, Sample, measure, pulumi
from tests.e2e.postgres import PostgresServer, postgres_server
from tests.e2e.pulumi_cli import Toolchain, Workspace, copy_program, new_workspace, scratch_environment
from tests.e2e.stacks import age_certificates
from tests.installed import install_checkout
from tests.program import PROJECT_DIR

SPLIT = PROJECT_DIR / "examples" / "split"
SINGLE_LIMIT_SECONDS = 30 * 60
FULL_SIZES = (2, 50, 200)
QUICK_SIZES = (2, 10)
TARGETS = {
    "split cold bring-up K=4 / one stack's cold up, at N=max": 1.0,
    "a cluster stack's unchanged up, N=max / N=2": 1.2,
    "the PKI stack's unchanged preview at N=max (s)": 25.0,
    "largest stack process tree in the split layout (MB PSS)": 1536.0,
}


@dataclass
class Run:
    """One layout at N clusters: its rounds (or commands) as measured, and what its backend holds after."""

    layout: str
    clusters: int
    backend: str
    keys: str
    parallel: int = 0
    rounds: dict[str, Sample] = field(default_factory=dict)
    stack_seconds: dict[str, dict[str, float]] = field(default_factory=dict)
    """Per round: the median seconds of a cluster stack's `up` (requests, install) and the PKI's (sign)."""
    wal_bytes: dict[str, int] = field(default_factory=dict)
    backend_bytes: int = 0
    pki_state_bytes: int = 0
    pki_state_parts: dict[str, int] = field(default_factory=dict)
    """The PKI stack's checkpoint as the backend stores it (compact JSON), by what holds the bytes."""
    certificate_copies: int = 0
    """How many times the PKI stack's checkpoint holds one cluster's intermediate certificate."""
    cluster_state_bytes: int = 0

    @property
    def label(self) -> str:
        driver = f", K={self.parallel}" if self.parallel else ""
        return f"{self.layout}{driver}, {self.backend}, {self.keys}"


class Backend:
    """Where the stacks of one run live: a fresh PostgreSQL database, or a fresh directory (file backend)."""

    def __init__(self, server: PostgresServer | None, directory: Path, name: str) -> None:
        self.server, self.directory, self.name = server, directory, name
        if server is not None:
            server.sql(f"CREATE DATABASE {name}")
        else:
            directory.mkdir(parents=True)

    @property
    def kind(self) -> str:
        return "PostgreSQL" if self.server else "file"

    @property
    def url(self) -> str:
        if self.server is None:
            return self.directory.as_uri()
        return self.server.url.replace("/pulumi?", f"/{self.name}?")

    def _sql(self, statement: str) -> str:
        assert self.server is not None
        return self.server.sql(statement)

    def size(self) -> int:
        if self.server is None:
            return sum(path.stat().st_size for path in self.directory.rglob("*") if path.is_file())
        return int(self._sql(f"SELECT pg_database_size('{self.name}')"))

    def wal_position(self) -> str | None:
        return self._sql("SELECT pg_current_wal_lsn()") if self.server else None

    def wal_since(self, position: str | None) -> int:
        if position is None:
            return 0
        return int(float(self._sql(f"SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '{position}')")))


class Bench:
    def __init__(self, toolchain: Toolchain, base: Path, server: PostgresServer) -> None:
        self.base, self.server = base, server
        self.env = scratch_environment(toolchain, base / "pulumi")
        self.venv = install_checkout(base / "install", "examples/split/pki")
        self.runs: list[Run] = []

    def backend(self, label: str, kind: str) -> Backend:
        name = f"b{len(self.runs)}_{label}".lower()
        return Backend(self.server if kind == "PostgreSQL" else None, self.base / "file-backends" / name, name)

    def set_keys(self, directory: Path, keys: dict[str, Any]) -> None:
        """The copied example's key settings made `keys` (its own are ECDSA P-256)."""
        if keys is ECDSA:
            return
        main = directory / "__main__.py"
        ecdsa = '{"keyAlgorithm": "ECDSA"}'
        if ecdsa not in main.read_text():
            raise RuntimeError(f"{main} no longer sets {ecdsa}: update bench/fleet.py")
        main.write_text(main.read_text().replace(ecdsa, json.dumps(keys)))

    def split(self, clusters: int, parallel: int, kind: str, keys: dict[str, Any], rounds: Sequence[str]) -> Run:
        """The split layout brought up by the driver, then the other `rounds` (unchanged, renewal)."""
        key_label = _key_label(keys)
        run = Run("split", clusters, kind, key_label, parallel)
        backend = self.backend(f"split{clusters}k{parallel}{kind[:4]}{key_label[:3]}", kind)
        env = {**self.env, "PULUMI_BACKEND_URL": backend.url}
        home = self.base / f"run-{len(self.runs)}"
        pki = new_workspace(home / "pki", "prod", env, SPLIT / "pki", virtualenv=self.venv)
        pki_dir, cluster_dir = pki.directory, home / "cluster"
        cluster_dir.mkdir()
        copy_program(SPLIT / "cluster", cluster_dir)
        (cluster_dir / ".venv").symlink_to(self.venv, target_is_directory=True)
        self.set_keys(pki_dir, keys)
        self.set_keys(cluster_dir, keys)
        names = [f"c{index:03d}" for index in range(clusters)]
        stack_file = pki_dir / "Pulumi.prod.yaml"  # one write, not N `pulumi config set` runs
        document = yaml.safe_load(stack_file.read_text()) or {}
        document["config"] = {"mesh-pki:clusters": [{"name": name} for name in names]}
        stack_file.write_text(yaml.safe_dump(document))
        for round_name in ("cold bring-up", *rounds):
            if round_name == "renewal":
                age_certificates(pki, 1, *names)
            summary = home / f"{round_name}.json"
            command = [str(self.venv / "bin" / "python"), "-m", "istio_ca.fleet", "--pki-dir", str(pki_dir)]
            command += ["--cluster-dir", str(cluster_dir), "-j", str(parallel), "--summary", str(summary)]
            wal = backend.wal_position()
            run.rounds[round_name] = measure(command, home, env)
            run.wal_bytes[round_name] = backend.wal_since(wal)
            run.stack_seconds[round_name] = _median_seconds(json.loads(summary.read_text()))
        run.backend_bytes = backend.size()
        export = pki.export()
        run.pki_state_bytes = len(export)
        run.pki_state_parts, run.certificate_copies = state_breakdown(export)
        member = Workspace(cluster_dir, names[-1], env)
        run.cluster_state_bytes = len(member.export())
        if rounds:  # each kind of stack's unchanged run, alone on the machine: the median of three
            up, preview = ("up", "--yes", "--skip-preview"), ("preview", "--expect-no-changes")
            run.rounds["one cluster stack's unchanged up"] = median_of(3, partial(pulumi, member, *up))
            run.rounds["the PKI stack's unchanged preview"] = median_of(3, partial(pulumi, pki, *preview))
        self.runs.append(run)
        return run

    def single(self, clusters: int, keys: dict[str, Any], rounds: Sequence[str]) -> Run:
        """One stack of N clusters (this checkout's program), on PostgreSQL."""
        run = Run("one stack", clusters, "PostgreSQL", _key_label(keys))
        backend = self.backend(f"single{clusters}{run.keys[:3]}", "PostgreSQL")
        env = {**self.env, "PULUMI_BACKEND_URL": backend.url}
        workspace = new_workspace(self.base / f"run-{len(self.runs)}" / "project", "mesh", env)
        names = [f"c{index:03d}" for index in range(clusters)]
        workspace.write_config({"clusters": [{"name": n} for n in names], "root": keys, "intermediate": keys})
        commands = {
            "cold bring-up": ("up", "--yes", "--skip-preview"),
            "unchanged preview": ("preview", "--expect-no-changes"),
            "unchanged round": ("up", "--yes", "--skip-preview"),
            "renewal": ("up", "--yes", "--skip-preview"),
        }
        for round_name in ("cold bring-up", *rounds):
            if round_name == "renewal":
                age_certificates(workspace, 1, *names)
            wal = backend.wal_position()
            run.rounds[round_name] = pulumi(workspace, *commands[round_name], limit=SINGLE_LIMIT_SECONDS)
            run.wal_bytes[round_name] = backend.wal_since(wal)
            if not run.rounds[round_name].finished:
                break
        run.backend_bytes = backend.size()
        self.runs.append(run)
        return run


STATE_HOLDERS = {
    "tls:index/locallySignedCert:LocallySignedCert": "the intermediates' certificates",
    "istio-ca:index:MeshPKI": "the MeshPKI component",
    "pulumi:pulumi:Stack": "the stack",
}
STATE_FIELDS = {"inputs": "inputs", "outputs": "outputs", "stackTrace": "source positions"}


def state_breakdown(export: str) -> tuple[dict[str, int], int]:
    """A checkpoint's bytes as its backend stores them (compact JSON) by resource kind and field, and how many
    times it holds its first intermediate certificate."""
    resources = json.loads(export)["deployment"]["resources"]
    parts: Counter[str] = Counter()
    for resource in resources:
        holder = STATE_HOLDERS.get(resource["type"], "the root and the rest")
        for key, value in resource.items():
            parts[f"{holder}: {STATE_FIELDS.get(key, 'other fields')}"] += len(json.dumps(value, separators=(",", ":")))
    certificates = [r for r in resources if r["type"] in STATE_HOLDERS and "certPem" in (r.get("outputs") or {})]
    if not certificates:
        return dict(parts), 0
    body = certificates[0]["outputs"]["certPem"].splitlines()[1]  # a line of base64 no other certificate shares
    return dict(parts), export.count(body)


def median_of(times: int, run: Callable[[], Sample]) -> Sample:
    """The run of median time among `times` runs: one run of a few seconds varies by a third here."""
    samples = sorted((run() for _ in range(times)), key=lambda sample: sample.seconds)
    return samples[times // 2]


def _key_label(keys: dict[str, Any]) -> str:
    return "RSA 4096" if keys is RSA else "ECDSA P-256"


def _median_seconds(summary: dict[str, Any]) -> dict[str, float]:
    by_step: dict[str, list[float]] = {}
    for stack_run in summary["runs"]:
        by_step.setdefault(stack_run["step"], []).append(stack_run["seconds"])
    if not summary["ok"]:
        raise RuntimeError(f"the driver failed: {summary['failed']}")
    return {step: statistics.median(seconds) for step, seconds in by_step.items()}


@contextmanager
def bench(toolchain: Toolchain) -> Iterator[Bench]:
    with tempfile.TemporaryDirectory(prefix="istio-ca-fleet-bench-") as scratch, postgres_server() as server:
        yield Bench(toolchain, Path(scratch), server)


UNCHANGED = ("unchanged round",)
WITH_RENEWAL = ("unchanged round", "renewal")


def plan(b: Bench, sizes: Sequence[int], quick: bool) -> list[Callable[[], Run]]:
    """What to run, smallest first: every layout at the middle size, the K=4 split layout and one stack at each
    size, the split layout alone at the smallest (the cluster stacks' reference)."""
    smallest, middle = sizes[0], sizes[1]
    steps: list[Callable[[], Run]] = [partial(b.split, smallest, 4, "PostgreSQL", ECDSA, UNCHANGED)]
    for size in sizes[1:]:
        at_middle = size == middle
        # Beyond the middle size one stack's rounds run for many minutes each: its cold up and a preview suffice.
        single_rounds = ("unchanged preview", *WITH_RENEWAL) if at_middle else ("unchanged preview",)
        steps.append(partial(b.split, size, 4, "PostgreSQL", ECDSA, WITH_RENEWAL if at_middle else UNCHANGED))
        steps.append(partial(b.single, size, ECDSA, single_rounds))
        if at_middle:
            steps.append(partial(b.split, size, 4, "file", ECDSA, UNCHANGED))
            if not quick:
                steps.append(partial(b.split, size, 2, "PostgreSQL", ECDSA, UNCHANGED))
                steps.append(partial(b.split, size, 1, "PostgreSQL", ECDSA, UNCHANGED))
            steps.append(partial(b.split, size, 4, "PostgreSQL", RSA, ()))
            steps.append(partial(b.single, size, RSA, ()))
    return steps


def describe(run: Run) -> str:
    """One run's figures, a line per round."""
    lines = [f"{run.label}, N={run.clusters}:"]
    for name, sample in run.rounds.items():
        seconds = f"{sample.seconds:8.1f} s" + ("" if sample.finished else " (stopped: not finished)")
        stack_mb, run_mb = sample.peak_stack_pss / BYTES_PER_MB, sample.peak_pss / BYTES_PER_MB
        memory = f"largest stack {stack_mb:6.0f} MB, run {run_mb:6.0f} MB"
        stacks = run.stack_seconds.get(name)
        per_stack = ", ".join(f"{step} {value:.1f} s" for step, value in stacks.items()) if stacks else ""
        wal = f", WAL {run.wal_bytes[name] / BYTES_PER_MB:.1f} MB" if run.wal_bytes.get(name) else ""
        wal += f", other CPU {sample.other_cpu:.0f} s" if sample.other_cpu >= 1 else ""
        lines.append(f"  {name:<36} {seconds}  PSS {memory}{wal}" + (f"  (median {per_stack})" if per_stack else ""))
    states = f", PKI state {run.pki_state_bytes} bytes" if run.pki_state_bytes else ""
    states += f", a cluster stack's {run.cluster_state_bytes} bytes" if run.cluster_state_bytes else ""
    if run.pki_state_parts:
        parts = sorted(run.pki_state_parts.items(), key=lambda part: -part[1])
        per_cluster = ", ".join(f"{part} {size / run.clusters / 1024:.2f}" for part, size in parts)
        states += f"\n  PKI state per cluster (KB, compact JSON): {per_cluster}"
        states += f"; one intermediate certificate held {run.certificate_copies} times"
    lines.append(f"  backend {run.backend_bytes / BYTES_PER_MB:.1f} MB{states}")
    return "\n".join(lines)


def _find(runs: list[Run], layout: str, clusters: int, parallel: int = 0, backend: str = "PostgreSQL") -> Run | None:
    found = [
        r
        for r in runs
        if (r.layout, r.clusters, r.parallel, r.backend, r.keys) == (layout, clusters, parallel, backend, "ECDSA P-256")
    ]
    return found[0] if found else None


def targets(runs: list[Run], sizes: Sequence[int]) -> dict[str, float]:
    """Each target's figure, from the runs at the smallest and the largest N."""
    smallest, largest = sizes[0], sizes[-1]
    split, reference = _find(runs, "split", largest, 4), _find(runs, "split", smallest, 4)
    single = _find(runs, "one stack", largest)
    figures: dict[str, float] = {}
    if split and single:
        cold = single.rounds["cold bring-up"]
        # A single stack stopped at its limit took at least that long: the ratio is then an upper bound.
        figures["split cold bring-up K=4 / one stack's cold up, at N=max"] = (
            split.rounds["cold bring-up"].seconds / cold.seconds
        )
    alone = "one cluster stack's unchanged up"
    if split and reference:
        figures["a cluster stack's unchanged up, N=max / N=2"] = (
            split.rounds[alone].seconds / reference.rounds[alone].seconds
        )
    if split:
        figures["the PKI stack's unchanged preview at N=max (s)"] = split.rounds[
            "the PKI stack's unchanged preview"
        ].seconds
    split_runs = [r for r in runs if r.layout == "split"]
    figures["largest stack process tree in the split layout (MB PSS)"] = (
        max(s.peak_stack_pss for r in split_runs for s in r.rounds.values()) / BYTES_PER_MB
    )
    return figures


def verdicts(figures: dict[str, float], sizes: Sequence[int]) -> str:
    lines = [f"targets (N=max is {sizes[-1]}, the reference N=2 is {sizes[0]}):"]
    for name, limit in TARGETS.items():
        value = figures.get(name)
        if value is None:
            lines.append(f"  {name}: not measured")
            continue
        lines.append(f"  {name}: {value:.2f} (at most {limit:g}) {'met' if value <= limit else 'MISSED'}")
    return "\n".join(lines)


def pki_state_per_cluster(runs: list[Run]) -> str:
    """What the PKI stack's state grows by per cluster, from its size at two N."""
    pki = sorted((r.clusters, r.pki_state_bytes) for r in runs if r.layout == "split" and r.keys == "ECDSA P-256")
    (low_n, low), (high_n, high) = pki[0], pki[-1]
    per = (high - low) / (high_n - low_n)
    return f"PKI stack state: {low} bytes at N={low_n}, {high} at N={high_n}: {per / 1024:.1f} KB per cluster"


def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"N = {', '.join(map(str, QUICK_SIZES))} only")
    parser.add_argument("--json", type=Path, help="also write every run here, as JSON")
    options = parser.parse_args(argv)
    sizes = QUICK_SIZES if options.quick else FULL_SIZES
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    memory = int(Path("/proc/meminfo").read_text().split()[1]) // 1024
    machine = f"{platform.machine()}, {os.cpu_count()} cores, {memory} MB, {platform.platform()}"
    print(f"istio-ca fleet benchmark, {started}, {machine}", flush=True)
    toolchain = Toolchain(Path(os.environ["ISTIO_CA_TOOLCHAIN"]))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stopped: still stop the server, remove the files
    with bench(toolchain) as b:
        for step in plan(b, sizes, options.quick):
            began = time.monotonic()
            run = step()
            print(f"-- done in {time.monotonic() - began:.0f} s", flush=True)
            print(describe(run), flush=True)
            if options.json:
                document = {"started": started, "machine": machine, "runs": [asdict(r) for r in b.runs]}
                options.json.write_text(json.dumps(document, indent=1) + "\n")
        runs = b.runs
    print(pki_state_per_cluster(runs))
    print(verdicts(targets(runs, sizes), sizes))


if __name__ == "__main__":
    main(sys.argv[1:])
