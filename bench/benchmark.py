"""istio-ca against the Makefile's openssl steps, at N clusters, on this machine, in one run.

    ISTIO_CA_TOOLCHAIN=<dir> .venv/bin/python -m bench.benchmark [--quick] [--json FILE]

Measures, each the median of `--runs` runs (min and max beside it):
- the baseline: Makefile.selfsigned.mk's steps for the same clusters, done with openssl serially as the
  Makefile does (per key `openssl genrsa 4096`, then `req` and `x509 -req` with its extensions);
- a cold `pulumi up` of a new stack in render mode, RSA 4096 and ECDSA P-256;
- an unchanged `pulumi preview` and an unchanged `pulumi up`;
- for each pulumi command, the memory of its whole process tree (the CLI, the language host and program,
  every provider process): peak summed RSS, peak summed PSS, and the drop in MemAvailable.
`--quick` runs N = 1 and 10 once; the full run N = 1, 10 and 50, three times each.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tests.e2e.pulumi_cli import Toolchain, Workspace, install_providers, new_workspace, offline_environment
from tests.makefile import INTERMEDIATE_CONF, ROOT_CA_CONF

SAMPLE_SECONDS = 0.05
RSA: dict[str, Any] = {"keyAlgorithm": "RSA", "keySize": 4096}
ECDSA: dict[str, Any] = {"keyAlgorithm": "ECDSA", "keySize": 256}


@dataclass
class Sample:
    """One measured command: wall time, and its process tree's memory (bytes)."""

    seconds: float
    peak_rss: int = 0
    peak_pss: int = 0
    available_drop: int = 0


@dataclass
class Figure:
    """A measurement's runs, and their median, min and max."""

    name: str
    clusters: int
    samples: list[Sample] = field(default_factory=list)

    def stat(self, attribute: str) -> tuple[float, float, float]:
        values = [float(getattr(sample, attribute)) for sample in self.samples]
        return statistics.median(values), min(values), max(values)


def _children(pid: int) -> list[int]:
    """Every live descendant of `pid`, from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as stream:
                fields = stream.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(parents.get(current, []))
    return found


def _kilobytes(path: str, key: str) -> int:
    try:
        with open(path, encoding="utf-8") as stream:
            for line in stream:
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def measure(command: Sequence[str], cwd: Path, env: dict[str, str]) -> Sample:
    """Run a command; sample its process tree's RSS and PSS and the machine's MemAvailable meanwhile."""
    available_before = _kilobytes("/proc/meminfo", "MemAvailable:")
    peaks = {"rss": 0, "pss": 0, "available": available_before}
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            tree = _children(process.pid)
            peaks["rss"] = max(peaks["rss"], sum(_kilobytes(f"/proc/{p}/status", "VmRSS:") for p in tree))
            peaks["pss"] = max(peaks["pss"], sum(_kilobytes(f"/proc/{p}/smaps_rollup", "Pss:") for p in tree))
            peaks["available"] = min(peaks["available"], _kilobytes("/proc/meminfo", "MemAvailable:"))
            done.wait(SAMPLE_SECONDS)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = process.communicate()
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{output.decode()[-2000:]}")
    return Sample(seconds, peaks["rss"], peaks["pss"], available_before - peaks["available"])


def openssl_baseline(clusters: int, directory: Path) -> Sample:
    """The Makefile's `root-ca` and `<cluster>-cacerts` targets for N clusters, with openssl, serially."""
    directory.mkdir(parents=True)
    (directory / "root-ca.conf").write_text(ROOT_CA_CONF)
    steps: list[tuple[list[str], Path]] = [
        (["genrsa", "-out", "root-key.pem", "4096"], directory),
        (
            ["req", "-sha256", "-new", "-key", "root-key.pem", "-config", "root-ca.conf", "-out", "root-cert.csr"],
            directory,
        ),
        (
            [
                "x509",
                "-req",
                "-sha256",
                "-days",
                "3650",
                "-signkey",
                "root-key.pem",
                "-extensions",
                "req_ext",
                "-extfile",
                "root-ca.conf",
                "-in",
                "root-cert.csr",
                "-out",
                "root-cert.pem",
            ],
            directory,
        ),
    ]
    for index in range(clusters):
        name = f"c{index:02d}"
        out = directory / name
        out.mkdir()
        (out / "intermediate.conf").write_text(INTERMEDIATE_CONF.replace("L = cluster1", f"L = {name}"))
        steps += [
            (["genrsa", "-out", "ca-key.pem", "4096"], out),
            (["req", "-new", "-config", "intermediate.conf", "-key", "ca-key.pem", "-out", "cluster-ca.csr"], out),
            (
                [
                    "x509",
                    "-req",
                    "-sha256",
                    "-days",
                    "730",
                    "-CA",
                    "../root-cert.pem",
                    "-CAkey",
                    "../root-key.pem",
                    "-CAcreateserial",
                    "-extensions",
                    "req_ext",
                    "-extfile",
                    "intermediate.conf",
                    "-in",
                    "cluster-ca.csr",
                    "-out",
                    "ca-cert.pem",
                ],
                out,
            ),
        ]
    started = time.perf_counter()
    for args, cwd in steps:
        subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)
    return Sample(time.perf_counter() - started)


def pulumi(workspace: Workspace, *args: str) -> Sample:
    command = ["pulumi", *args, "--stack", workspace.stack, "--non-interactive", "--color", "never"]
    return measure(command, workspace.directory, workspace.env)


def run(quick: bool, runs: int) -> list[Figure]:
    toolchain = Toolchain(Path(os.environ["ISTIO_CA_TOOLCHAIN"]))
    sizes = (1, 10) if quick else (1, 10, 50)
    figures: dict[tuple[str, int], Figure] = {}

    def record(name: str, clusters: int, sample: Sample) -> None:
        figures.setdefault((name, clusters), Figure(name, clusters)).samples.append(sample)

    with tempfile.TemporaryDirectory(prefix="istio-ca-bench-") as scratch:
        base = Path(scratch)
        for directory in ("state", "home", "tmp"):
            (base / directory).mkdir()
        env = offline_environment(toolchain, pulumi_home=base / "home", backend=base / "state", temporary=base / "tmp")
        install_providers(toolchain, env)
        for attempt in range(1 if quick else runs):
            for clusters in sizes:
                baseline = openssl_baseline(clusters, base / f"openssl-{attempt}-{clusters}")
                record("openssl baseline (RSA 4096)", clusters, baseline)
                for label, keys in (("RSA 4096", RSA), ("ECDSA P-256", ECDSA)):
                    stack = f"b{attempt}-{clusters}-{label.split()[0].lower()}"
                    workspace = new_workspace(base / stack / "project", stack, env)
                    entries = [{"name": f"c{index:02d}"} for index in range(clusters)]
                    workspace.write_config({"clusters": entries, "root": keys, "intermediate": keys})
                    record(f"cold up ({label})", clusters, pulumi(workspace, "up", "--yes", "--skip-preview"))
                    if keys is RSA:
                        record("unchanged preview", clusters, pulumi(workspace, "preview", "--expect-no-changes"))
                        record("unchanged up", clusters, pulumi(workspace, "up", "--yes", "--skip-preview"))
    return list(figures.values())


def table(figures: list[Figure]) -> str:
    header = ("measurement", "N", "median s", "min", "max", "peak PSS MB", "peak RSS MB", "avail drop MB")
    lines = ["{:<30} {:>3} {:>9} {:>7} {:>7} {:>12} {:>12} {:>14}".format(*header)]
    for figure in figures:
        seconds, low, high = figure.stat("seconds")
        pss, rss, drop = (figure.stat(a)[0] / 2**20 for a in ("peak_pss", "peak_rss", "available_drop"))
        row = (figure.name, figure.clusters, seconds, low, high, pss, rss, drop)
        lines.append("{:<30} {:>3} {:>9.2f} {:>7.2f} {:>7.2f} {:>12.0f} {:>12.0f} {:>14.0f}".format(*row))
    baseline = {f.clusters: f.stat("seconds")[0] for f in figures if f.name.startswith("openssl")}
    for figure in figures:
        if figure.name == "cold up (RSA 4096)":
            ratio = figure.stat("seconds")[0] / baseline[figure.clusters]
            lines.append(f"cold up RSA 4096 / openssl baseline at N={figure.clusters}: {ratio:.2f}x")
    previews = {f.clusters: f.stat("seconds")[0] for f in figures if f.name == "unchanged preview"}
    for clusters, seconds in sorted(previews.items()):
        lines.append(f"unchanged preview at N={clusters} / at N=1: {seconds / previews[1]:.2f}x")
    return "\n".join(lines)


def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 1 and 10, one run each")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure in a full run (default 3)")
    parser.add_argument("--json", type=Path, help="also write every sample here, as JSON")
    options = parser.parse_args(argv)
    figures = run(options.quick, options.runs)
    print(table(figures))
    if options.json:
        document: dict[str, Any] = {
            "machine": {"cpus": os.cpu_count(), "platform": sys.platform},
            "figures": [
                {"name": f.name, "clusters": f.clusters, "samples": [asdict(s) for s in f.samples]} for f in figures
            ],
        }
        options.json.write_text(json.dumps(document, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
