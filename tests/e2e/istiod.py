"""Istio's real istiod (`pilot-discovery`), out of cluster, against one of the suite's local API servers.

istiod runs as a plain process on 127.0.0.1 with the cluster's admin kubeconfig. Its plugged-in CA
directory (`ROOT_CA_DIR`, `/etc/cacerts` in a pod) is filled from the cluster's `cacerts` Secret the
way the kubelet projects a Secret volume, so istiod reads exactly what istio-ca wrote. What it then
does is observed from the outside only: its log, the Secrets and ConfigMaps it writes, the chain it
serves on its secure gRPC port and the workload certificates its CA service signs.

Out of cluster istiod needs no more than the flags and environment in `Istiod.command` and
`Istiod.environment`: every listener on a loopback port (ControlZ included, which otherwise takes
localhost:9876), the namespace and cluster ID, and a working directory of its own (it reads
`./etc/istio/config/mesh`, `./var/lib/istio/inject` and `./var/run/secrets/tokens/istio-token`
relative to it; none exists, so it takes the default mesh config, skips the injector and trusts the
API server's TokenReview for workload tokens).
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import re
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import grpc  # type: ignore[import-untyped]
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.e2e.leak_audit import AUDIT
from tests.e2e.local_cluster import LocalCluster, die_with_parent, free_ports
from tests.e2e.pulumi_cli import Toolchain

READY_TIMEOUT_SECONDS = 120
STOP_TIMEOUT_SECONDS = 30
CRD_TIMEOUT_SECONDS = 60
PUBLISH_TIMEOUT_SECONDS = 60
RPC_TIMEOUT_SECONDS = 30
START_ATTEMPTS = 3
"""A port free_ports found may be taken before istiod binds it: then istiod exits and starts again."""
LOG_TAIL_LINES = 80
ATTEMPT_MARKER = "=== istiod start-up attempt "

CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
CREATE_CERTIFICATE = "/istio.v1.auth.IstioCertificateService/CreateCertificate"
TOKEN_AUDIENCE = "istio-ca"
"""The audience istiod's CA asks TokenReview for (security.TokenAudiences)."""
PORTS = ("http", "grpc", "secure_grpc", "monitoring", "https")

PLUGGED_IN_CA_LINES = ("Use local CA certificate", "Added cacerts files watcher at {dir}", "Use root cert from {dir}/")
"""What istiod logs when it signs with the files of ROOT_CA_DIR (pilot/pkg/bootstrap/istio_ca.go, certcontroller.go)."""
SELF_SIGNED_CA_LINES = (
    "Use self-signed certificate as the CA certificate",
    "Use local self-signed CA certificate for testing",
    "Use roots from istio-ca-secret",
    "IstioGenerated cacerts secret found",
)
"""What istiod logs when it falls back to its own root (`istio-ca-secret`) instead."""
CA_CHOICE = re.compile(r"\b(Use [a-z]|Added cacerts files watcher|IstioGenerated )")


def apply_istio_crds(cluster: LocalCluster, crd_file: Path) -> list[str]:
    """POST every CRD of Istio's `crd-all.gen.yaml` (409: already there) and wait until all are Established."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    documents = [d for d in yaml.load_all(crd_file.read_text(), Loader=loader) if d]
    names = []
    for document in documents:
        assert document.get("kind") == "CustomResourceDefinition", f"{crd_file}: not a CRD: {document.get('kind')}"
        status, body = cluster.request("POST", CRD_PATH, document)
        assert status in (201, 409), f"{cluster.name}: creating CRD {document['metadata']['name']}: {status} {body}"
        names.append(document["metadata"]["name"])
    deadline = time.monotonic() + CRD_TIMEOUT_SECONDS
    pending = list(names)
    while pending:
        status, body = cluster.request("GET", f"{CRD_PATH}/{pending[0]}")
        conditions = {c["type"]: c["status"] for c in body.get("status", {}).get("conditions", [])}
        if status == 200 and conditions.get("Established") == "True":
            pending.pop(0)
            continue
        if time.monotonic() > deadline:
            raise TimeoutError(f"{cluster.name}: CRDs not Established after {CRD_TIMEOUT_SECONDS}s: {pending}")
        time.sleep(0.2)
    return names


def project_secret(directory: Path, files: dict[str, str]) -> None:
    """Write `files` into `directory` as the kubelet projects a Secret volume (its AtomicWriter): the
    contents in a new timestamped directory, `..data` switched to it in one rename, and each file a
    symlink `<name> -> ..data/<name>`. A reader never sees a mix of old and new files.

    Files are mode 0600 in directories of mode 0700 (the kubelet's default is 0644): they hold a key."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    data = directory / "..data"
    previous = os.readlink(data) if data.is_symlink() else None
    stamp = datetime.datetime.now(datetime.UTC).strftime("..%Y_%m_%d_%H_%M_%S.")
    version = Path(tempfile.mkdtemp(prefix=stamp, dir=directory))  # mode 0700
    for name, content in files.items():
        assert "/" not in name and not name.startswith(".."), f"not a Secret key: {name!r}"
        descriptor = os.open(version / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as stream:
            stream.write(content)
    temporary = directory / "..data_tmp"
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    temporary.symlink_to(version.name)
    os.replace(temporary, data)
    for name in files:
        link = directory / name
        if not link.is_symlink():
            link.symlink_to(Path("..data") / name)
    for entry in directory.iterdir():
        if entry.is_symlink() and not entry.name.startswith("..") and entry.name not in files:
            entry.unlink()  # a key the Secret no longer has
    if previous is not None and previous != version.name:
        for old in (directory / previous).iterdir():
            old.unlink()
        (directory / previous).rmdir()


@dataclass
class Istiod:
    """One istiod for one local cluster, signing as the plugged-in CA of `namespace`'s `cacerts`."""

    cluster: LocalCluster
    namespace: str
    toolchain: Toolchain
    workdir: Path
    settings: dict[str, str] = field(default_factory=dict)
    """istiod's own environment settings, e.g. ISTIO_MULTIROOT_MESH=true."""
    process: subprocess.Popen[bytes] | None = None
    ports: dict[str, int] = field(default_factory=dict)
    started_in: float = 0.0
    """Seconds from launching the process to its /ready answering 200."""

    @property
    def ca_dir(self) -> Path:
        return self.workdir / "cacerts"

    @property
    def log(self) -> Path:
        return self.workdir / "istiod.log"

    @property
    def host(self) -> str:
        """The name istiod's own certificate is for, and what a proxy expects of it."""
        return f"istiod.{self.namespace}.svc"

    # --- setup -------------------------------------------------------------------------------

    def install_crds(self) -> None:
        apply_istio_crds(self.cluster, self.toolchain.root / "share" / "istio" / "crd-all.gen.yaml")

    def sync_cacerts(self) -> dict[str, str]:
        """Project the cluster's current `cacerts` into ROOT_CA_DIR (again, after the Secret changed);
        returns the files projected."""
        files = self.cluster.secret_data(self.namespace, "cacerts")  # remembered by the leak audit
        project_secret(self.ca_dir, files)
        return files

    def command(self) -> list[str]:
        ports = self.ports
        return [
            str(self.toolchain.bin / "pilot-discovery"),
            "discovery",
            f"--kubeconfig={self.cluster.kubeconfig}",
            f"--httpAddr=127.0.0.1:{ports['http']}",
            f"--grpcAddr=127.0.0.1:{ports['grpc']}",
            f"--secureGRPCAddr=127.0.0.1:{ports['secure_grpc']}",
            f"--monitoringAddr=127.0.0.1:{ports['monitoring']}",
            f"--httpsAddr=127.0.0.1:{ports['https']}",
            # ControlZ listens on localhost:9876 unless told otherwise; port 0: any free one.
            "--ctrlz_address=127.0.0.1",
            "--ctrlz_port=0",
            "--domain=cluster.local",
            "--shutdownDuration=1s",
        ]

    def environment(self) -> dict[str, str]:
        """Nothing ambient (no KUBECONFIG, no KUBERNETES_SERVICE_HOST, no PILOT_*): only what is set here."""
        return {
            "PATH": os.defpath,
            "HOME": str(self.workdir),
            "TMPDIR": str(self.workdir / "tmp"),
            "POD_NAMESPACE": self.namespace,
            "POD_NAME": f"istiod-{self.cluster.name}",  # its leader-election identity
            "ROOT_CA_DIR": str(self.ca_dir),
            "CLUSTER_ID": self.cluster.name,
            "PILOT_CERT_PROVIDER": "istiod",  # the default, stated: its serving certificate comes from its CA
            **self.settings,
        }

    def start(self) -> None:
        """Launch istiod and wait until its /ready answers 200."""
        for attempt in range(1, START_ATTEMPTS + 1):
            began = time.monotonic()
            self.launch(f"{attempt}")
            if self._wait_ready():
                self.started_in = time.monotonic() - began
                return
            if "address already in use" not in self.log_text():
                break
        raise RuntimeError(f"{self.cluster.name}: istiod exited during start-up{self.log_tail()}")

    def launch(self, attempt: str) -> None:
        """Start the process on fresh loopback ports, its output appended to the log."""
        (self.workdir / "tmp").mkdir(parents=True, exist_ok=True)
        self.ports = dict(zip(PORTS, free_ports(len(PORTS)), strict=True))
        with self.log.open("ab") as stream:
            stream.write(f"{ATTEMPT_MARKER}{attempt}: {' '.join(self.command())}\n".encode())
            stream.flush()
            self.process = subprocess.Popen(
                [*die_with_parent(), *self.command()],
                cwd=self.workdir,
                env=self.environment(),
                stdout=stream,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def _wait_ready(self) -> bool:
        """True once /ready answers 200; False if istiod exited first."""
        assert self.process is not None
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.ports['http']}/ready", timeout=5) as response:
                    if response.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"{self.cluster.name}: istiod not ready after {READY_TIMEOUT_SECONDS}s{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers; always reaped."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def log_text(self) -> str:
        """What the running istiod logged: its start-up attempt's part of the log file."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return ATTEMPT_MARKER + text.rsplit(ATTEMPT_MARKER, 1)[-1] if ATTEMPT_MARKER in text else text

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        tail = "\n".join(self.log_text().splitlines()[-lines:])
        return f"\n--- last {lines} lines of {self.log} ---\n{tail}"

    @contextlib.contextmanager
    def log_on_failure(self) -> Iterator[Istiod]:
        """Any failure inside carries the tail of istiod's log."""
        try:
            yield self
        except BaseException as error:
            error.add_note(f"{self.cluster.name}: {self.log_tail()}")
            raise

    # --- observations ------------------------------------------------------------------------

    def ca_log_lines(self) -> list[str]:
        """The lines in which istiod says which CA it uses and where its roots come from."""
        return [line for line in self.log_text().splitlines() if CA_CHOICE.search(line)]

    def istio_ca_secret_exists(self) -> bool:
        """istiod's self-signed CA keeps its root in `istio-ca-secret`: a plugged-in CA never writes it."""
        return self.cluster.secret(self.namespace, "istio-ca-secret") is not None

    def served_chain(self, trusted_roots: Path) -> list[x509.Certificate]:
        """The chain istiod serves on its secure gRPC (xDS/CA) port, as `openssl s_client` sees it,
        verified by openssl against `trusted_roots` for the name `istiod.<namespace>.svc`."""
        result = subprocess.run(
            [
                "openssl",
                "s_client",
                "-connect",
                f"127.0.0.1:{self.ports['secure_grpc']}",
                "-servername",
                self.host,
                "-showcerts",
                "-CAfile",
                str(trusted_roots),
                "-verify_hostname",
                self.host,
                "-verify_return_error",
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=RPC_TIMEOUT_SECONDS,
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, f"openssl s_client failed ({result.returncode}):\n{output}"
        assert "Verify return code: 0 (ok)" in result.stdout, output
        # Only the "Certificate chain" section: what the server sent, in its order.
        section = result.stdout.split("Certificate chain", 1)[1].split("\n---\n", 1)[0]
        return x509.load_pem_x509_certificates(section.encode())

    def published_root(self, namespace: str) -> str:
        """`root-cert.pem` of the `istio-ca-root-cert` ConfigMap istiod writes into `namespace` (which
        proxies mount as their trust bundle), once it is there."""
        path = f"/api/v1/namespaces/{namespace}/configmaps/istio-ca-root-cert"
        deadline = time.monotonic() + PUBLISH_TIMEOUT_SECONDS
        while True:
            status, body = self.cluster.request("GET", path)
            if status == 200:
                return str(body["data"]["root-cert.pem"])
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.cluster.name}: no {namespace}/istio-ca-root-cert: {status} {body}")
            time.sleep(0.2)

    def service_account_token(self, namespace: str, service_account: str) -> str:
        """A token for the ServiceAccount (created if need be) from the TokenRequest API, for istiod's CA."""
        status, body = self.cluster.request(
            "POST", f"/api/v1/namespaces/{namespace}/serviceaccounts", {"metadata": {"name": service_account}}
        )
        assert status in (201, 409), body
        status, body = self.cluster.request(
            "POST",
            f"/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}/token",
            {"spec": {"audiences": [TOKEN_AUDIENCE], "expirationSeconds": 600}},
        )
        assert status == 201, body
        return str(body["status"]["token"])

    def request_certificate(self, csr_pem: bytes, token: str, trusted_roots: bytes, validity_seconds: int) -> list[str]:
        """`IstioCertificateService/CreateCertificate` as istio-agent calls it: TLS to the secure gRPC
        port trusting `trusted_roots` for `istiod.<namespace>.svc`, the workload's token as bearer.
        Returns `cert_chain`: the leaf first, the root last."""
        credentials = grpc.ssl_channel_credentials(root_certificates=trusted_roots)
        options = [("grpc.ssl_target_name_override", self.host), ("grpc.default_authority", self.host)]
        address = f"127.0.0.1:{self.ports['secure_grpc']}"
        with grpc.secure_channel(address, credentials, options=options) as channel:
            call = channel.unary_unary(CREATE_CERTIFICATE)  # bytes in, bytes out: no generated code
            response = call(
                encode_certificate_request(csr_pem, validity_seconds),
                metadata=[("authorization", f"Bearer {token}"), ("clusterid", self.cluster.name)],
                timeout=RPC_TIMEOUT_SECONDS,
            )
        return decode_certificate_response(cast(bytes, response))

    def workload_certificate(
        self, namespace: str, service_account: str, trusted_roots: bytes, validity_seconds: int = 3600
    ) -> tuple[ec.EllipticCurvePrivateKey, list[str]]:
        """A key, and the chain istiod's CA signs for a CSR with its SPIFFE identity, authenticated by
        the ServiceAccount's token."""
        key = ec.generate_private_key(ec.SECP256R1())
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([]))
            .add_extension(
                x509.SubjectAlternativeName([x509.UniformResourceIdentifier(spiffe_id(namespace, service_account))]),
                critical=True,
            )
            .sign(key, hashes.SHA256())
        )
        token = self.service_account_token(namespace, service_account)
        chain = self.request_certificate(
            csr.public_bytes(serialization.Encoding.PEM), token, trusted_roots, validity_seconds
        )
        return key, chain

    def listening_addresses(self) -> set[tuple[str, int]]:
        """(address, port) of every TCP socket istiod listens on, from /proc (Linux)."""
        assert self.process is not None
        inodes = set()
        for descriptor in Path(f"/proc/{self.process.pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(descriptor)
                if target.startswith("socket:["):
                    inodes.add(target[len("socket:[") : -1])
        listening = set()
        for table, width in (("tcp", 8), ("tcp6", 32)):
            for line in Path(f"/proc/{self.process.pid}/net/{table}").read_text().splitlines()[1:]:
                columns = line.split()
                local, state, inode = columns[1], columns[3], columns[9]
                if state == "0A" and inode in inodes:  # TCP_LISTEN
                    address, port = local.split(":")
                    assert len(address) == width
                    listening.add((_proc_address(address), int(port, 16)))
        return listening


def _proc_address(hex_address: str) -> str:
    """/proc/net/tcp{,6} addresses: 32-bit words in host (little-endian) order."""
    raw = b"".join(bytes.fromhex(hex_address[i : i + 8])[::-1] for i in range(0, len(hex_address), 8))
    return str(ipaddress.ip_address(raw))


def spiffe_id(namespace: str, service_account: str, trust_domain: str = "cluster.local") -> str:
    return f"spiffe://{trust_domain}/ns/{namespace}/sa/{service_account}"


def uri_sans(certificate: x509.Certificate) -> list[str]:
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return list(san.get_values_for_type(x509.UniformResourceIdentifier))


# --- protobuf by hand: istio.v1.auth.IstioCertificateRequest / IstioCertificateResponse ----------


def _varint(value: int) -> bytes:
    assert value >= 0
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes, offset: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, offset


def encode_certificate_request(csr_pem: bytes, validity_seconds: int) -> bytes:
    """IstioCertificateRequest{csr = 1 (string), validity_duration = 3 (int64)}."""
    return b"\x0a" + _varint(len(csr_pem)) + csr_pem + b"\x18" + _varint(validity_seconds)


def decode_certificate_response(data: bytes) -> list[str]:
    """IstioCertificateResponse{repeated string cert_chain = 1}; other fields are skipped."""
    chain: list[str] = []
    offset = 0
    while offset < len(data):
        key, offset = _read_varint(data, offset)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            _, offset = _read_varint(data, offset)
        elif wire_type == 1:
            offset += 8
        elif wire_type == 5:
            offset += 4
        elif wire_type == 2:
            length, offset = _read_varint(data, offset)
            value = data[offset : offset + length]
            offset += length
            if number == 1:
                chain.append(value.decode())
        else:
            raise ValueError(f"unexpected protobuf wire type {wire_type} at {offset}")
    assert offset == len(data), "truncated IstioCertificateResponse"
    return chain


@contextlib.contextmanager
def running_istiod(
    cluster: LocalCluster,
    namespace: str,
    toolchain: Toolchain,
    workdir: Path,
    settings: dict[str, str] | None = None,
) -> Iterator[Istiod]:
    """Istio's CRDs applied, ROOT_CA_DIR projected from `namespace`'s `cacerts`, istiod started and
    ready; stopped on the way out whatever happened, and any failure carries the tail of its log."""
    workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
    istiod = Istiod(cluster=cluster, namespace=namespace, toolchain=toolchain, workdir=workdir, settings=settings or {})
    AUDIT.plain_places.add(workdir)  # no key in istiod's log or its temporary files...
    AUDIT.key_directories.add(istiod.ca_dir)  # ...and the projected key is 0600 in 0700 directories
    try:
        istiod.install_crds()
        istiod.sync_cacerts()
        istiod.start()
        with istiod.log_on_failure():
            yield istiod
    finally:
        istiod.stop()


def load_chain(pems: list[str]) -> list[x509.Certificate]:
    """One certificate per PEM string (the CA service's cert_chain elements)."""
    certificates: list[x509.Certificate] = []
    for pem in pems:
        certificates += x509.load_pem_x509_certificates(pem.encode())
    return certificates


@contextlib.contextmanager
def prepared_istiod(
    cluster: LocalCluster,
    namespace: str,
    toolchain: Toolchain,
    workdir: Path,
    settings: dict[str, str] | None = None,
) -> Iterator[Istiod]:
    """As `running_istiod`, but with nothing projected and istiod not started: the test decides what
    ROOT_CA_DIR holds (nothing at all: istiod falls back to its self-signed CA) and when istiod starts,
    stops and starts again. Stopped on the way out whatever happened; any failure carries its log's tail."""
    workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
    istiod = Istiod(cluster=cluster, namespace=namespace, toolchain=toolchain, workdir=workdir, settings=settings or {})
    AUDIT.plain_places.add(workdir)
    AUDIT.key_directories.add(istiod.ca_dir)
    try:
        istiod.install_crds()
        with istiod.log_on_failure():
            yield istiod
    finally:
        istiod.stop()


def start_refused(istiod: Istiod, timeout_seconds: float = 60.0) -> int | None:
    """Launch istiod expecting it to refuse to start. Returns its exit status once it exited, or None
    if after `timeout_seconds` it still ran without ever being ready (it is then stopped); fails if its
    /ready answers 200. As `Istiod.start`, it is launched again on other ports if one was taken. No
    process is left either way; `istiod.log_text()` is then this launch's log."""
    status: int | None = None
    for attempt in range(1, START_ATTEMPTS + 1):
        istiod.launch(f"{attempt} (expected to be refused)")
        status = _wait_refused(istiod, timeout_seconds)
        if status is None or "address already in use" not in istiod.log_text():
            break
    return status


def _wait_refused(istiod: Istiod, timeout_seconds: float) -> int | None:
    """The exit status of the launched istiod, or None once `timeout_seconds` passed; it is stopped
    (reaped) in every case, and ready is a failure."""
    process = istiod.process
    assert process is not None
    deadline = time.monotonic() + timeout_seconds
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return process.returncode
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{istiod.ports['http']}/ready", timeout=5) as response:
                    ready = response.status == 200
            except (urllib.error.URLError, OSError):
                ready = False
            assert not ready, f"{istiod.cluster.name}: istiod started although it should refuse{istiod.log_tail()}"
            time.sleep(0.2)
        return None
    finally:
        istiod.stop()


def processes_in(directory: Path) -> list[int]:
    """Ids of the processes whose working directory is `directory` or below it (istiod runs in its
    workdir), from /proc (Linux): once a test stopped its istiod there must be none, whatever else
    (another suite's istiod) runs on the machine."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if Path(os.readlink(entry / "cwd")).is_relative_to(directory):
                    found.append(int(entry.name))
    return sorted(found)
