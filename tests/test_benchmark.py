"""The benchmark's parts measure what they say: the baseline is the Makefile's work, `measure` sees the
whole process tree, and the report holds each figure against its target. No timing is asserted."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from bench import benchmark
from bench.benchmark import (
    BASELINE,
    GO_KEYS_ALL_CORES,
    PLAIN,
    Figure,
    Sample,
    attribute_samples,
    build_keygen,
    go_keys,
    measure,
    openssl_baseline,
    ratios,
    verdicts,
)
from bench.fleet import state_breakdown
from istio_ca.profiles import INTERMEDIATE_CA, ROOT_CA
from tests.x509_checks import check_path_length, expected_extensions


def test_the_baseline_issues_what_the_makefile_issues_for_each_cluster(tmp_path: Path) -> None:
    sample = openssl_baseline(2, tmp_path / "openssl")
    assert sample.seconds > 0
    root = x509.load_pem_x509_certificate((tmp_path / "openssl" / "root-cert.pem").read_bytes())
    assert {ext.oid for ext in root.extensions} == expected_extensions(ROOT_CA)
    for name in ("c00", "c01"):
        cert = x509.load_pem_x509_certificate((tmp_path / "openssl" / name / "ca-cert.pem").read_bytes())
        cert.verify_directly_issued_by(root)
        assert {ext.oid for ext in cert.extensions} == expected_extensions(INTERMEDIATE_CA)
        check_path_length(cert, INTERMEDIATE_CA)
        assert cert.subject.get_attributes_for_oid(NameOID.LOCALITY_NAME)[0].value == name
        key = cert.public_key()
        assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 4096


GRANDCHILD = (
    'import time; buffer = bytearray(b"x" * 64 * 2**20); end = time.process_time() + 0.6\n'
    "while time.process_time() < end: buffer[0] = 1"
)


def test_measure_sees_the_cpu_and_memory_of_the_whole_process_tree(tmp_path: Path) -> None:
    parent = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {GRANDCHILD!r}], check=True)"
    sample = measure([sys.executable, "-c", parent], tmp_path, {})
    assert sample.seconds >= 0.6
    assert sample.cpu["other"] >= 0.4  # the grandchild's, read before it exited
    assert sample.peak_rss >= 64 * 2**20 and sample.peak_pss >= 64 * 2**20
    assert sample.processes["other"] == 2


def test_a_command_past_its_limit_is_stopped_with_a_child_in_a_process_group_of_its_own(tmp_path: Path) -> None:
    # As the CLI starts its plugins: in their own process group, which killing the command's group would miss.
    child = tmp_path / "child.pid"
    parent = (
        "import os, subprocess, sys, time\n"
        "plugin = subprocess.Popen(['sleep', '300'], process_group=0)\n"
        f"open({str(child)!r}, 'w').write(str(plugin.pid)); time.sleep(300)"
    )
    sample = measure([sys.executable, "-c", parent], tmp_path, {}, limit=1.0)
    assert sample.finished is False and sample.seconds < 60
    pid = int(child.read_text())
    with pytest.raises(ProcessLookupError):
        for _ in range(100):  # gone once its parent, now init, has reaped it
            os.kill(pid, 0)
            time.sleep(0.05)


def test_a_failing_command_is_an_error_with_its_output(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="went wrong"):
        measure([sys.executable, "-c", "import sys; sys.exit('went wrong')"], tmp_path, {})


def test_go_key_generation_runs_as_the_tls_provider_generates_keys(tmp_path: Path) -> None:
    assert go_keys(build_keygen(tmp_path), keys=2, workers=2).seconds > 0


def figure(name: str, clusters: int, seconds: float, pss: int = 0, program: float = 0.0) -> Figure:
    return Figure(name, clusters, [Sample(seconds, peak_pss=pss * 2**20, cpu={"program": program})])


def test_the_report_holds_each_figure_against_its_target() -> None:
    figures = []
    for clusters, scale in ((1, 1.0), (50, 50.0)):
        figures += [
            figure(BASELINE, clusters, 2.0 * scale),
            figure(GO_KEYS_ALL_CORES, clusters, 0.5 * scale),
            figure("cold up, RSA 4096, render", clusters, 1.0 * scale, pss=400, program=1.0 + (scale - 1) * 0.005),
            figure("cold up, RSA 4096, API server", clusters, 1.2 * scale, pss=1600, program=1.0 + (scale - 1) * 0.02),
            figure("unchanged preview, render", clusters, 2.0 if scale == 1 else 5.0, program=1.0),
            figure("unchanged preview, API server", clusters, 2.0 if scale == 1 else 7.0, program=1.0),
            figure(PLAIN, clusters, 1.0, program=1.0),
        ]
    summary, targets = ratios(figures)
    assert targets["cold up RSA / openssl (N=50, render)"] == pytest.approx(0.5)
    assert targets["cold up RSA / openssl (N=50, API server)"] == pytest.approx(0.6)
    assert targets["unchanged preview N=max / N=1 (render)"] == pytest.approx(2.5)
    assert targets["peak PSS at N=max (MB)"] == pytest.approx(1600)
    assert targets["program CPU per cluster (ms), cold up, RSA 4096, render"] == pytest.approx(5.0)
    assert "N=50: cold up RSA 4096, render / openssl baseline: 0.50x (2.00x the floor)" in summary
    report = verdicts(targets).splitlines()
    assert "  cold up RSA / openssl (N=50, render): 0.50 (at most 0.55) met" in report
    assert "  cold up RSA / openssl (N=50, API server): 0.60 (at most 0.55) MISSED" in report
    assert "  unchanged preview N=max / N=1 (API server): 3.50 (at most 3) MISSED" in report
    assert "  peak PSS at N=max (MB): 1600.00 (at most 1536) MISSED" in report
    assert "  program CPU per cluster (ms), cold up, RSA 4096, API server: 20.00 (at most 10) MISSED" in report


def test_a_profiled_sample_is_charged_to_its_innermost_known_frame() -> None:
    raw = "\n".join(
        [
            "run (pulumi-language-python-exec:1);__init__ (istio_ca/mesh_ca.py:9);all (pulumi/output.py:3) 5",
            "run (pulumi-language-python-exec:1);__init__ (istio_ca/mesh_ca.py:9);judge (istio_ca/cacerts.py:2) 3",
            "run (x:1);_find_and_load (<frozen importlib._bootstrap>:1) 2",
            "_run_once (asyncio/base_events.py:1) 1",
        ]
    )
    assert attribute_samples(raw) == {
        "Pulumi SDK and gRPC": 5,
        "istio-ca": 3,
        "imports": 2,
        "Python runtime (asyncio, threads)": 1,
    }


def test_the_state_breakdown_counts_each_holders_bytes_and_every_copy_of_a_certificate() -> None:
    certificate = "-----BEGIN CERTIFICATE-----\nMIIB4jCCAYigAwIBAgIQJ25pvQfncjo1\nMIIBhDCC\n-----END CERTIFICATE-----\n"
    signed = {
        "type": "tls:index/locallySignedCert:LocallySignedCert",
        "inputs": {"certRequestPem": "csr"},
        "outputs": {"certPem": certificate, "certRequestPem": "csr"},
        "stackTrace": [{"sourcePosition": "project:///__main__.py#27"}],
    }
    component = {"type": "istio-ca:index:MeshPKI", "outputs": {"clusters": {"east": {"certPem": certificate}}}}
    stack = {"type": "pulumi:pulumi:Stack", "outputs": {"istioCaPki": {"east": certificate + certificate}}}
    export = json.dumps({"version": 3, "deployment": {"resources": [stack, component, signed]}}, indent=4)
    parts, copies = state_breakdown(export)
    assert copies == 4
    compact = len(json.dumps(signed["outputs"], separators=(",", ":")))
    assert parts["the intermediates' certificates: outputs"] == compact
    assert parts["the intermediates' certificates: source positions"] == len(
        '[{"sourcePosition":"project:///__main__.py#27"}]'
    )
    assert parts["the MeshPKI component: outputs"] == len(json.dumps(component["outputs"], separators=(",", ":")))
    assert set(parts) == {
        "the stack: other fields",
        "the stack: outputs",
        "the MeshPKI component: other fields",
        "the MeshPKI component: outputs",
        "the intermediates' certificates: other fields",
        "the intermediates' certificates: inputs",
        "the intermediates' certificates: outputs",
        "the intermediates' certificates: source positions",
    }


def test_a_process_seen_before_its_exec_is_known_by_what_it_execs(monkeypatch: pytest.MonkeyPatch) -> None:
    # Between fork and exec a child reads as its parent (here the benchmark's Python); after, as the CLI.
    cmdlines = iter([f"{sys.executable}\0-m\0bench.fleet\0", "/opt/toolchain/pulumi\0up\0--yes\0"])
    monkeypatch.setattr(benchmark, "_read", lambda path: next(cmdlines) if path.endswith("/cmdline") else "")
    tree = benchmark.ProcessTree(root=4242)
    assert tree.kind(4242) == "other"
    assert tree.kind(4242) == "engine"
    assert tree.kind(4242) == "engine"  # known from then on, after it exits too
