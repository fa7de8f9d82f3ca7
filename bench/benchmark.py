"""istio-ca against the Makefile's openssl steps, at N clusters, on this machine, in one run.

    ISTIO_CA_TOOLCHAIN=<dir> .venv/bin/python -m bench.benchmark [--quick] [--json FILE] [--profile]

Measures, each the median of `--runs` runs (min and max beside it):
- the baseline: Makefile.selfsigned.mk's steps for the same clusters, done with openssl serially as the
  Makefile does (per key `openssl genrsa 4096`, then `req` and `x509 -req` with its extensions);
- a cold `pulumi up` of a new stack, RSA 4096 and ECDSA P-256, in render mode and against one local
  API server (one namespace per cluster entry);
- an unchanged `pulumi preview` and an unchanged `pulumi up`, in both modes;
- for each pulumi command, its whole process tree (the CLI and engine, the language host and program,
  every provider process): peak summed PSS and RSS, the drop in MemAvailable, CPU time per process kind;
- the floor key generation sets: N + 1 RSA 4096 keys made by Go as the tls provider makes them
  (crypto/rsa, built by the same Go) on every core, and at N = 10 key for key against `openssl genrsa`;
- the same resources per cluster wired plainly, with none of istio-ca's checks (bench/plain_wiring);
- provider start-up: from exec until the provider serves, and its memory then;
- at the largest N, a cold up with each setting of ENVIRONMENT_VARIANTS (once).
`--quick` is one run at N = 1 and 50, without the variants; the full run is three at N = 1, 10 and 50;
`--sizes` and `--runs` change either. `--profile` also runs the program under py-spy (cold ups at N = 1
and the largest N) and prints, per added cluster, what its CPU time went to.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tests.e2e.local_cluster import LocalCluster, start_cluster, wait_ready
from tests.e2e.processes import descendants, kill_tree
from tests.e2e.pulumi_cli import Toolchain, Workspace, new_workspace, scratch_environment
from tests.makefile import makefile_commands

SAMPLE_SECONDS = 0.1
PSS_EVERY = 5
"""Reading smaps_rollup walks a process's page tables: PSS is sampled every 5th tick (0.5 s) only."""
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
RSA: dict[str, Any] = {"keyAlgorithm": "RSA", "keySize": 4096}
ECDSA: dict[str, Any] = {"keyAlgorithm": "ECDSA", "keySize": 256}
ENVIRONMENT_VARIANTS: dict[str, dict[str, str]] = {
    "PULUMI_SKIP_CHECKPOINTS=true": {"PULUMI_SKIP_CHECKPOINTS": "true"},
    "GOGC=50": {"GOGC": "50"},
}
"""Settings of the environment tried on a cold up at the largest N: the engine's checkpoints, and Go's GC
(every provider inherits the CLI's environment)."""
BASELINE = "openssl baseline (RSA 4096)"
GO_KEYS_ALL_CORES = f"Go RSA 4096 keys, {os.cpu_count()} goroutines"
GO_KEYS = "Go RSA 4096 keys, serial"
OPENSSL_KEYS = "openssl genrsa 4096, serial"
KEY_SPEED_CLUSTERS = 10
"""Where Go's and openssl's key generation are compared key for key (N + 1 keys each)."""
PLAIN = "plain wiring, cold up, ECDSA P-256"
PLAIN_PROGRAM = Path(__file__).parent / "plain_wiring"
PROFILE_RATE = 250
DEFAULT_SIZES = {False: [1, KEY_SPEED_CLUSTERS, 50], True: [1, 50]}
"""The cluster counts of a full run and of a quick one (--quick)."""
KINDS = {
    "pulumi-language-python-exec": "program",
    "pulumi-language-python": "language host",
    "pulumi-resource-tls": "tls provider",
    "pulumi-resource-kubernetes": "kubernetes provider",
    "pulumi": "engine",
}
"""Process kinds by executable (the program by its script: it runs as `python …/pulumi-language-python-exec`)."""
BYTES_PER_MB = 2**20
LIMITS = {
    "cold up RSA / openssl": 0.55,
    "unchanged preview N=max / N=1": 3.0,
    "peak PSS at N=max (MB)": 1536.0,
    "program CPU per cluster (ms)": 10.0,
}


@dataclass
class Sample:
    """One measured command: wall time, its process tree's memory (bytes) and CPU time by process kind."""

    seconds: float
    peak_rss: int = 0
    peak_pss: int = 0
    available_drop: int = 0
    cpu: dict[str, float] = field(default_factory=dict)
    """CPU seconds (user + system) per process kind, summed over that kind's processes."""
    pss: dict[str, int] = field(default_factory=dict)
    """Peak summed PSS per process kind."""
    processes: dict[str, int] = field(default_factory=dict)
    """The most processes of each kind alive at once."""
    sampler_cpu: float = 0.0
    """CPU seconds the sampling itself took (it shares the machine with what it measures)."""
    peak_stack_pss: int = 0
    """The largest summed PSS of one `pulumi` command's tree (the engine, its language host, program and
    providers): one stack's run, where a driver runs several at once."""
    finished: bool = True
    """False when the command was stopped at its time limit (`seconds` is then that limit)."""
    other_cpu: float = 0.0
    """CPU seconds the rest of the machine used meanwhile: what else competed with the measured command."""


@dataclass
class Figure:
    """A measurement's runs, and their median, min and max."""

    name: str
    clusters: int
    samples: list[Sample] = field(default_factory=list)

    def stat(self, value: str, kind: str | None = None) -> tuple[float, float, float]:
        """Median, min and max of a Sample attribute (of one process kind's entry for cpu/pss/processes)."""
        values = [float(getattr(s, value) if kind is None else getattr(s, value).get(kind, 0)) for s in self.samples]
        return statistics.median(values), min(values), max(values)

    def median(self, value: str, kind: str | None = None) -> float:
        return self.stat(value, kind)[0]


class ProcessTree:
    """The live descendants of one process, by kind, read from /proc."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.kinds: dict[int, str] = {}

    def members(self) -> list[int]:
        return descendants(self.root)

    def kind(self, pid: int) -> str:
        if pid not in self.kinds:
            arguments = _read(f"/proc/{pid}/cmdline").split("\0")
            names = [Path(argument).name for argument in arguments[:2]]
            kind = next((KINDS[n] for n in reversed(names) if n in KINDS), "other")
            if kind == "other":  # maybe forked and not yet exec'd (it reads as its parent): look again next time
                return kind
            self.kinds[pid] = kind
        return self.kinds[pid]

    def engine_of(self, pid: int, parents: dict[int, int]) -> int:
        """The outermost `pulumi` process (one stack's command) that `pid` runs under, itself included; 0 for
        none. Outermost: a `pulumi` command may start others (e.g. the language host asks the CLI)."""
        engine = 0
        while pid in parents:
            if self.kind(pid) == "engine":
                engine = pid
            pid = parents[pid]
        return engine


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as stream:
            return stream.read()
    except OSError:
        return ""


def _field_kilobytes(text: str, key: str) -> int:
    for line in text.splitlines():
        if line.startswith(key):
            return int(line.split()[1]) * 1024
    return 0


def _machine_busy() -> float:
    """CPU seconds every CPU has spent busy since boot (/proc/stat: all but idle and iowait)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = _read("/proc/stat").split()[1:9]
    return sum(int(v) for v in (user, nice, system, irq, softirq, steal)) / CLOCK_TICKS


def _available() -> int:
    return _field_kilobytes(_read("/proc/meminfo"), "MemAvailable:")


def measure(command: Sequence[str], cwd: Path, env: dict[str, str], limit: float | None = None) -> Sample:
    """Run a command; sample its process tree's memory and CPU, and the machine's MemAvailable, meanwhile.
    With `limit`, a command still running after that many seconds is stopped (its whole tree) and the
    sample says it did not finish."""
    available_before = _available()
    lowest_available = available_before
    peak_rss = peak_pss = peak_stack_pss = 0
    pss_by: Counter[str] = Counter()
    alive_by: Counter[str] = Counter()
    ticks: dict[int, int] = {}
    started, busy_before = time.perf_counter(), _machine_busy()
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    tree = ProcessTree(process.pid)
    done = threading.Event()
    sampler_cpu = 0.0

    def sample() -> None:
        nonlocal lowest_available, peak_rss, peak_pss, peak_stack_pss, sampler_cpu
        tick = 0
        while not done.is_set():
            members = tree.members()
            rss = 0
            alive: Counter[str] = Counter()
            parents: dict[int, int] = {}
            for pid in members:
                stat = _read(f"/proc/{pid}/stat").rsplit(")", 1)
                if len(stat) < 2:
                    continue
                fields = stat[1].split()
                parents[pid] = int(fields[1])
                ticks[pid] = max(ticks.get(pid, 0), int(fields[11]) + int(fields[12]))  # utime + stime
                rss += int(fields[21]) * PAGE_BYTES
                alive[tree.kind(pid)] += 1
            peak_rss = max(peak_rss, rss)
            for kind, count in alive.items():
                alive_by[kind] = max(alive_by[kind], count)
            if tick % PSS_EVERY == 0:
                by: Counter[str] = Counter()
                stacks: Counter[int] = Counter()
                for pid in members:
                    pss = _field_kilobytes(_read(f"/proc/{pid}/smaps_rollup"), "Pss:")
                    by[tree.kind(pid)] += pss
                    stacks[tree.engine_of(pid, parents)] += pss
                peak_pss = max(peak_pss, sum(by.values()))
                peak_stack_pss = max([peak_stack_pss, *(pss for engine, pss in stacks.items() if engine)])
                for kind, pss in by.items():
                    pss_by[kind] = max(pss_by[kind], pss)
            lowest_available = min(lowest_available, _available())
            tick += 1
            done.wait(SAMPLE_SECONDS)
        sampler_cpu = time.thread_time()

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    finished = True
    try:
        output, _ = process.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        kill_tree(process.pid)
        output, _ = process.communicate()
        finished = False
    except BaseException:  # the benchmark itself stopped: the command's processes would outlive it
        kill_tree(process.pid)
        raise
    seconds, busy = time.perf_counter() - started, _machine_busy() - busy_before
    done.set()
    sampler.join()
    if finished and process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{output.decode()[-2000:]}")
    cpu: dict[str, float] = {}
    for pid, used in ticks.items():
        cpu[tree.kind(pid)] = cpu.get(tree.kind(pid), 0.0) + used / CLOCK_TICKS
    return Sample(
        seconds=seconds,
        peak_rss=peak_rss,
        peak_pss=peak_pss,
        available_drop=available_before - lowest_available,
        cpu=cpu,
        pss=dict(pss_by),
        processes=dict(alive_by),
        sampler_cpu=sampler_cpu,
        peak_stack_pss=peak_stack_pss,
        finished=finished,
        other_cpu=max(0.0, busy - sum(cpu.values()) - sampler_cpu),
    )


def openssl_baseline(clusters: int, directory: Path) -> Sample:
    """The Makefile's `root-ca` and `<cluster>-cacerts` targets for N clusters, with openssl, serially."""
    directory.mkdir(parents=True)
    names = cluster_names(clusters)
    commands = makefile_commands(directory, {name: directory / name for name in names}, key_bits=4096)
    started = time.perf_counter()
    for args, cwd in commands:
        subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)
    return Sample(time.perf_counter() - started)


def openssl_keys(keys: int, directory: Path) -> Sample:
    """`openssl genrsa 4096`, `keys` times, serially: the baseline's key generation alone."""
    directory.mkdir(parents=True)
    started = time.perf_counter()
    for index in range(keys):
        subprocess.run(
            ["openssl", "genrsa", "-out", f"key-{index}.pem", "4096"], cwd=directory, check=True, capture_output=True
        )
    return Sample(time.perf_counter() - started)


def go_keys(keygen: Path, keys: int, workers: int) -> Sample:
    """Go's RSA 4096 key generation, as the tls provider does it, `keys` keys on `workers` goroutines."""
    result = subprocess.run(
        [str(keygen), "-keys", str(keys), "-workers", str(workers)], check=True, capture_output=True, text=True
    )
    return Sample(float(result.stdout))


def build_keygen(directory: Path) -> Path:
    binary = directory / "keygen"
    source = Path(__file__).parent / "keygen" / "main.go"
    env = {**os.environ, "GOTOOLCHAIN": "local"}
    subprocess.run(["go", "build", "-o", str(binary), str(source)], check=True, env=env, capture_output=True)
    return binary


def provider_start(binary: Path, env: dict[str, str]) -> Sample:
    """From exec until the provider prints the port it serves on, and its memory then."""
    started = time.perf_counter()
    # The engine address is not dialled until the provider is configured.
    process = subprocess.Popen([str(binary), "127.0.0.1:1"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    assert process.stdout is not None
    port = process.stdout.readline()
    seconds = time.perf_counter() - started
    rss = _field_kilobytes(_read(f"/proc/{process.pid}/status"), "VmRSS:")
    pss = _field_kilobytes(_read(f"/proc/{process.pid}/smaps_rollup"), "Pss:")
    process.kill()
    process.wait()
    if not port.strip().isdigit():
        raise RuntimeError(f"{binary.name} did not start")
    return Sample(seconds, peak_rss=rss, peak_pss=pss)


def cluster_names(clusters: int) -> list[str]:
    return [f"c{index:02d}" for index in range(clusters)]


def pulumi(workspace: Workspace, *args: str, env: dict[str, str] | None = None, limit: float | None = None) -> Sample:
    command = ["pulumi", *args, "--stack", workspace.stack, "--non-interactive", "--color", "never"]
    return measure(command, workspace.directory, workspace.env | (env or {}), limit=limit)


@contextmanager
def api_server(toolchain: Toolchain, directory: Path) -> Iterator[LocalCluster]:
    cluster = start_cluster("bench", toolchain.bin, directory)
    try:
        wait_ready(cluster)
        yield cluster
    finally:
        cluster.stop()


class Benchmark:
    """The runs of one benchmark, in one scratch directory, recorded as figures."""

    def __init__(self, toolchain: Toolchain, base: Path, cluster: LocalCluster) -> None:
        self.toolchain = toolchain
        self.base = base
        self.cluster = cluster
        self.env = scratch_environment(toolchain, base / "pulumi")
        self.keygen = build_keygen(base)
        self.figures: dict[tuple[str, int], Figure] = {}

    def record(self, name: str, clusters: int, sample: Sample) -> None:
        self.figures.setdefault((name, clusters), Figure(name, clusters)).samples.append(sample)

    def stack(self, stack: str, clusters: int, keys: dict[str, Any], applied: bool) -> Workspace:
        """A new stack of N clusters: rendered, or each in its own namespace of the one API server."""
        workspace = new_workspace(self.base / stack / "project", stack, self.env)
        entries: list[dict[str, Any]] = [{"name": name} for name in cluster_names(clusters)]
        if applied:
            for entry in entries:
                entry["istioNamespace"] = f"{stack}-{entry['name']}"
                self.cluster.create_namespace(entry["istioNamespace"])
        config: dict[str, Any] = {"clusters": entries, "root": keys, "intermediate": keys}
        if applied:
            config["kubeconfig"] = str(self.cluster.kubeconfig)
        workspace.write_config(config)
        return workspace

    def run(self, attempt: int, clusters: int) -> None:
        """Every figure at N clusters, once."""
        self.record(BASELINE, clusters, openssl_baseline(clusters, self.base / f"openssl-{attempt}-{clusters}"))
        cores = os.cpu_count() or 1
        self.record(GO_KEYS_ALL_CORES, clusters, go_keys(self.keygen, clusters + 1, cores))
        if clusters == KEY_SPEED_CLUSTERS:
            keys = clusters + 1
            self.record(OPENSSL_KEYS, clusters, openssl_keys(keys, self.base / f"genrsa-{attempt}-{clusters}"))
            self.record(GO_KEYS, clusters, go_keys(self.keygen, keys, 1))
        for mode, applied in (("render", False), ("API server", True)):
            for label, keys_of in (("RSA 4096", RSA), ("ECDSA P-256", ECDSA)):
                name = f"b{attempt}-{clusters}-{'api' if applied else 'render'}-{label.split()[0].lower()}"
                workspace = self.stack(name, clusters, keys_of, applied)
                self.record(f"cold up, {label}, {mode}", clusters, pulumi(workspace, "up", "--yes", "--skip-preview"))
                if keys_of is RSA:
                    self.record(
                        f"unchanged preview, {mode}", clusters, pulumi(workspace, "preview", "--expect-no-changes")
                    )
                    self.record(f"unchanged up, {mode}", clusters, pulumi(workspace, "up", "--yes", "--skip-preview"))
        stack = f"plain-{attempt}-{clusters}"
        plain = new_workspace(self.base / stack / "project", stack, self.env, source=PLAIN_PROGRAM)
        plain.run("config", "set", "clusters", str(clusters))
        self.record(PLAIN, clusters, pulumi(plain, "up", "--yes", "--skip-preview"))

    def variants(self, clusters: int) -> None:
        """The cold up, RSA 4096, render, with each setting of ENVIRONMENT_VARIANTS, once."""
        for setting, variables in ENVIRONMENT_VARIANTS.items():
            workspace = self.stack(f"variant-{len(self.figures)}", clusters, RSA, applied=False)
            sample = pulumi(workspace, "up", "--yes", "--skip-preview", env=variables)
            self.record(f"cold up, RSA 4096, render, {setting}", clusters, sample)

    def provider_starts(self, runs: int) -> None:
        for name in ("tls", "kubernetes"):
            for _ in range(runs):
                self.record(f"{name} provider start", 0, provider_start(self.toolchain.provider(name), self.env))

    def profile(self, clusters: int) -> str:
        """py-spy's view of the program process (only while it holds the GIL) during a cold up at N and
        at 1: per cluster, what its CPU time goes to."""
        py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent))
        if py_spy is None:
            raise RuntimeError("py-spy is not installed (requirements-dev.txt)")
        shares = {}
        for count in (1, clusters):
            workspace = self.stack(f"profile-{count}", count, ECDSA, applied=False)
            raw = self.base / f"profile-{count}.txt"
            command = ["pulumi", "up", "--yes", "--skip-preview", "--stack", workspace.stack, "--non-interactive"]
            running = subprocess.Popen(command, cwd=workspace.directory, env=workspace.env, stdout=subprocess.DEVNULL)
            program = wait_for_program(running)
            spy = [py_spy, "record", "--pid", str(program), "--gil", "--rate", str(PROFILE_RATE), "--format", "raw"]
            subprocess.run([*spy, "--output", str(raw)], check=True, capture_output=True)
            if running.wait() != 0:
                raise RuntimeError("the profiled pulumi up failed")
            shares[count] = attribute_samples(raw.read_text())
        added = clusters - 1
        lines = [f"program CPU by what runs it (py-spy, GIL held, {PROFILE_RATE} Hz), ms per added cluster:"]
        for part in sorted(set(shares[1]) | set(shares[clusters])):
            per = (shares[clusters].get(part, 0) - shares[1].get(part, 0)) / PROFILE_RATE / added * 1000
            lines.append(f"  {part}: {per:.1f}")
        return "\n".join(lines)


def wait_for_program(running: subprocess.Popen[bytes]) -> int:
    """The pid of the Python program under a pulumi command, once it runs."""
    tree = ProcessTree(running.pid)
    while running.poll() is None:
        for pid in tree.members():
            if tree.kind(pid) == "program":
                return pid
        time.sleep(0.005)
    raise RuntimeError("pulumi ended before its program started")


PARTS = (
    ("imports", ("_find_and_load",)),
    ("istio-ca", ("istio_ca/", "__main__.py", "stack_config.py")),
    ("Pulumi SDK and gRPC", ("pulumi/", "pulumi_tls/", "pulumi_kubernetes/", "grpc/", "google/")),
    ("libraries", ("cryptography/", "kubernetes/", "yaml/", "urllib3/")),
)
"""What a profiled sample is charged to: its innermost frame from one of these (imports: any)."""


def attribute_samples(raw: str) -> Counter[str]:
    """py-spy's raw (collapsed-stack) samples, by PARTS."""
    parts: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = [frame.rsplit(" (", 1)[-1] for frame in stack.split(";")]
        part = "Python runtime (asyncio, threads)"
        if any(frame.startswith(PARTS[0][1]) for frame in stack.split(";")):
            part = PARTS[0][0]
        else:
            for frame in reversed(frames):
                found = next((name for name, prefixes in PARTS[1:] if frame.startswith(prefixes)), None)
                if found:
                    part = found
                    break
        parts[part] += int(count)
    return parts


def run(sizes: Sequence[int], runs: int, variants: bool, profile: bool) -> tuple[list[Figure], str]:
    toolchain = Toolchain(Path(os.environ["ISTIO_CA_TOOLCHAIN"]))
    profiled = ""
    with tempfile.TemporaryDirectory(prefix="istio-ca-bench-") as scratch:
        base = Path(scratch)
        with api_server(toolchain, base / "cluster") as cluster:
            bench = Benchmark(toolchain, base, cluster)
            bench.provider_starts(5)
            for attempt in range(runs):
                for clusters in sizes:
                    bench.run(attempt, clusters)
            if variants:
                bench.variants(sizes[-1])
            if profile:
                profiled = bench.profile(sizes[-1])
    return list(bench.figures.values()), profiled


def table(figures: list[Figure]) -> str:
    header = ("measurement", "N", "median s", "min", "max", "PSS MB", "RSS MB", "avail↓ MB", "program CPU s")
    row_format = "{:<40} {:>3} {:>8} {:>6} {:>6} {:>7} {:>7} {:>9} {:>13}"
    lines = [row_format.format(*header)]
    for figure in figures:
        seconds, low, high = figure.stat("seconds")
        memory = [figure.median(value) / BYTES_PER_MB for value in ("peak_pss", "peak_rss", "available_drop")]
        program = figure.median("cpu", "program")
        cells = [f"{seconds:.2f}", f"{low:.2f}", f"{high:.2f}", *(f"{m:.0f}" if m else "" for m in memory)]
        lines.append(row_format.format(figure.name, figure.clusters or "", *cells, f"{program:.2f}" if program else ""))
    return "\n".join(lines)


def breakdown(figures: list[Figure]) -> str:
    """Per process kind, at the largest N: CPU time, peak PSS, processes alive at once."""
    largest = max(f.clusters for f in figures)
    lines = [f"by process kind at N={largest}: CPU s / peak PSS MB / processes"]
    for figure in figures:
        if figure.clusters != largest or not figure.samples[0].cpu:
            continue
        kinds = sorted({kind for sample in figure.samples for kind in sample.cpu})
        cells = [
            f"{kind} {figure.median('cpu', kind):.1f}/{figure.median('pss', kind) / BYTES_PER_MB:.0f}/"
            f"{figure.median('processes', kind):.0f}"
            for kind in kinds
        ]
        sampler = figure.median("sampler_cpu")
        lines.append(f"  {figure.name}: " + ", ".join(cells) + f" (sampler {sampler:.1f} s)")
    return "\n".join(lines)


def ratios(figures: list[Figure]) -> tuple[str, dict[str, float]]:
    """The ratios and per-cluster costs, and each target's figure."""
    by = {(f.name, f.clusters): f for f in figures}
    sizes = sorted({f.clusters for f in figures if f.clusters})
    smallest, largest = sizes[0], sizes[-1]
    lines: list[str] = []
    targets: dict[str, float] = {}

    def seconds(name: str, clusters: int) -> float:
        return by[(name, clusters)].median("seconds")

    if (GO_KEYS, KEY_SPEED_CLUSTERS) in by:
        speed = seconds(GO_KEYS, KEY_SPEED_CLUSTERS) / seconds(OPENSSL_KEYS, KEY_SPEED_CLUSTERS)
        lines.append(f"Go's RSA 4096 key generation / openssl genrsa, key for key, serial: {speed:.2f}x")
    for clusters in sizes:
        baseline = seconds(BASELINE, clusters)
        floor = seconds(GO_KEYS_ALL_CORES, clusters)
        lines.append(f"N={clusters}: key-generation floor (Go, every core) / openssl baseline: {floor / baseline:.2f}x")
        for mode in ("render", "API server"):
            cold = seconds(f"cold up, RSA 4096, {mode}", clusters)
            lines.append(
                f"N={clusters}: cold up RSA 4096, {mode} / openssl baseline: {cold / baseline:.2f}x "
                f"({cold / floor:.2f}x the floor)"
            )
            if clusters > 1:
                targets[f"cold up RSA / openssl (N={clusters}, {mode})"] = cold / baseline
    for setting in ENVIRONMENT_VARIANTS:
        variant = by.get((f"cold up, RSA 4096, render, {setting}", largest))
        if variant is not None:
            lines.append(
                f"N={largest}: cold up RSA 4096, render, {setting} / openssl baseline: "
                f"{variant.median('seconds') / seconds(BASELINE, largest):.2f}x, peak PSS "
                f"{variant.median('peak_pss') / BYTES_PER_MB:.0f} MB"
            )
    for mode in ("render", "API server"):
        ratio = seconds(f"unchanged preview, {mode}", largest) / seconds(f"unchanged preview, {mode}", smallest)
        lines.append(f"unchanged preview, {mode}, N={largest} / N={smallest}: {ratio:.2f}x")
        targets[f"unchanged preview N=max / N=1 ({mode})"] = ratio
    defaults = [f for f in figures if f.clusters == largest and f.samples[0].cpu and "=" not in f.name]
    targets["peak PSS at N=max (MB)"] = max(f.median("peak_pss") for f in defaults) / BYTES_PER_MB
    added = largest - smallest
    for name in ("cold up, RSA 4096, render", "cold up, RSA 4096, API server", "unchanged preview, render", PLAIN):
        low, high = by[(name, smallest)], by[(name, largest)]
        per = {value: (high.median(value) - low.median(value)) / added for value in ("seconds", "peak_pss")}
        program = (high.median("cpu", "program") - low.median("cpu", "program")) / added * 1000
        lines.append(
            f"per added cluster, {name}: {per['seconds'] * 1000:.0f} ms wall, {per['peak_pss'] / BYTES_PER_MB:.1f} MB "
            f"peak PSS, program CPU {program:.1f} ms"
        )
        if name != PLAIN:
            targets[f"program CPU per cluster (ms), {name}"] = program
    return "\n".join(lines), targets


def verdicts(targets: dict[str, float]) -> str:
    lines = ["targets:"]
    for name, value in targets.items():
        limit = next(limit for key, limit in LIMITS.items() if name.startswith(key.split(" (")[0]))
        lines.append(f"  {name}: {value:.2f} (at most {limit:g}) {'met' if value <= limit else 'MISSED'}")
    return "\n".join(lines)


def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one run at N = 1 and 50")
    parser.add_argument("--runs", type=int, help="runs per figure (default 3; 1 with --quick)")
    parser.add_argument(
        "--sizes", help="the cluster counts, comma-separated, ascending from 1 (default 1,10,50; 1,50 with --quick)"
    )
    parser.add_argument("--json", type=Path, help="also write every sample here, as JSON")
    parser.add_argument("--profile", action="store_true", help="also profile the program with py-spy")
    options = parser.parse_args(argv)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    sizes = [int(size) for size in options.sizes.split(",")] if options.sizes else DEFAULT_SIZES[options.quick]
    if sizes[0] != 1 or sorted(set(sizes)) != sizes or len(sizes) < 2:
        parser.error("--sizes: at least two ascending cluster counts, the first 1")
    runs = options.runs or (1 if options.quick else 3)
    if runs < 1:
        parser.error("--runs: at least 1")
    figures, profiled = run(sizes, runs, variants=not options.quick, profile=options.profile)
    summary, targets = ratios(figures)
    memory = _field_kilobytes(_read("/proc/meminfo"), "MemTotal:") // BYTES_PER_MB
    machine = f"{platform.machine()}, {os.cpu_count()} cores, {memory} MB, {platform.platform()}"
    print(f"istio-ca benchmark, {started}, {machine}")
    print(table(figures))
    print(breakdown(figures))
    print(summary)
    print(verdicts(targets))
    if profiled:
        print(profiled)
    if options.json:
        document: dict[str, Any] = {
            "started": started,
            "machine": machine,
            "targets": targets,
            "figures": [
                {"name": f.name, "clusters": f.clusters, "samples": [asdict(s) for s in f.samples]} for f in figures
            ],
        }
        options.json.write_text(json.dumps(document, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
