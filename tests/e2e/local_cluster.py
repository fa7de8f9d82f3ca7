"""A real Kubernetes API server (with its own etcd) on 127.0.0.1, for the end-to-end tests."""

from __future__ import annotations

import base64
import json
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.e2e.leak_audit import AUDIT

READY_TIMEOUT_SECONDS = 120
START_ATTEMPTS = 3
"""A port free_ports found may be taken before etcd or the API server binds it (by another process, or by a
server another test worker started at the same moment): then the cluster starts again on other ports."""
PORT_TAKEN = "address already in use"


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports, held together so none repeats."""
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


@dataclass
class LocalCluster:
    """etcd + kube-apiserver, loopback only, admin by static token."""

    name: str
    workdir: Path
    api_port: int
    token: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    api_command: list[str] = field(default_factory=list)
    """How the API server was started, to start it again after `stop_api_server`."""
    bin_dir: Path | None = None
    """Where etcd and kube-apiserver are, to launch both again on other ports until the cluster was first ready."""
    launches: int = 0
    was_ready: bool = False

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    @property
    def server_ca(self) -> Path:
        return self.workdir / "pki" / "apiserver.crt"

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        """One API call; returns the HTTP status and the decoded JSON body."""
        status, raw = self.raw_request(method, path, body)
        return status, json.loads(raw or b"{}")

    def request_patch(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """A merge patch, as `kubectl patch` makes by default."""
        status, raw = self.raw_request("PATCH", path, body, content_type="application/merge-patch+json")
        return status, json.loads(raw or b"{}")

    def raw_request(
        self, method: str, path: str, body: dict[str, Any] | None = None, content_type: str = "application/json"
    ) -> tuple[int, bytes]:
        request = urllib.request.Request(
            f"https://127.0.0.1:{self.api_port}{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": content_type},
        )
        context = ssl.create_default_context(cafile=str(self.server_ca))
        try:
            with urllib.request.urlopen(request, context=context, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def create_namespace(self, namespace: str) -> None:
        status, body = self.request("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
        assert status == 201, body

    def create_secret(self, namespace: str, name: str, data: dict[str, str], type_: str = "Opaque") -> None:
        """As `kubectl create secret generic NAME --from-file=...` makes it (its field manager included)."""
        AUDIT.remember(data)
        body = {"metadata": {"name": name}, "type": type_, "stringData": data}
        path = f"/api/v1/namespaces/{namespace}/secrets?fieldManager=kubectl-create"
        status, response = self.request("POST", path, body)
        assert status == 201, response.get("message")

    def namespace_exists(self, namespace: str) -> bool:
        status, _ = self.request("GET", f"/api/v1/namespaces/{namespace}")
        return status == 200

    def secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The Secret object, or None when it does not exist."""
        status, body = self.request("GET", f"/api/v1/namespaces/{namespace}/secrets/{name}")
        if status == 404:
            return None
        assert status == 200, body
        return body

    def secret_data(self, namespace: str, name: str) -> dict[str, str]:
        secret = self.secret(namespace, name)
        assert secret is not None, f"{self.name}: secret {namespace}/{name} does not exist"
        data = {key: base64.b64decode(value).decode() for key, value in secret.get("data", {}).items()}
        AUDIT.remember(data)
        return data

    def remember_every_secret(self) -> None:
        """Hand every key any Secret of this cluster holds to the leak audit, before the cluster goes."""
        status, body = self.request("GET", "/api/v1/secrets")
        if status == 200:
            for secret in body.get("items", []):
                AUDIT.remember(
                    {k: base64.b64decode(v).decode(errors="replace") for k, v in (secret.get("data") or {}).items()}
                )

    def stop_api_server(self) -> None:
        """The cluster goes down as a user sees it: nothing answers on its port; etcd keeps the data."""
        api_server = self.processes.pop()
        api_server.terminate()
        api_server.wait(timeout=30)

    def start_api_server(self) -> None:
        self.processes.append(launch(self.api_command, self.workdir / "apiserver.log", append=True))
        wait_ready(self)

    def stop(self) -> None:
        """Stop the API server, then its etcd (which it needs to shut down cleanly)."""
        if self.processes:
            self.remember_every_secret()
        self.terminate()

    def terminate(self) -> None:
        """Stop the processes, API server first, and reap them."""
        for process in reversed(self.processes):
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()


@contextmanager
def running_clusters(names: Iterable[str], bin_dir: Path, base: Path) -> Iterator[dict[str, LocalCluster]]:
    """API servers of these names under `base`, started together and ready; stopped whatever the tests do."""
    started: dict[str, LocalCluster] = {}
    try:
        for name in names:
            started[name] = start_cluster(name, bin_dir, base / name)
        for cluster in started.values():
            wait_ready(cluster)
        yield started
    finally:
        for cluster in started.values():
            cluster.stop()


def start_cluster(name: str, bin_dir: Path, workdir: Path) -> LocalCluster:
    """Launch etcd and kube-apiserver; call wait_ready before using the cluster."""
    workdir.mkdir(parents=True)
    (workdir / "pki").mkdir()
    cluster = LocalCluster(name=name, workdir=workdir, api_port=0, token=secrets.token_hex(24), bin_dir=bin_dir)
    (workdir / "tokens.csv").write_text(f'{cluster.token},admin,admin-uid,"system:masters"\n')
    write_service_account_keys(workdir)
    launch_servers(cluster, bin_dir)
    return cluster


def launch_servers(cluster: LocalCluster, bin_dir: Path) -> None:
    """etcd and kube-apiserver on fresh loopback ports, a fresh etcd data directory, the kubeconfig for them."""
    workdir = cluster.workdir
    etcd_client, etcd_peer, cluster.api_port = free_ports(3)
    cluster.launches += 1
    shutil.rmtree(workdir / "etcd", ignore_errors=True)  # what an attempt on a taken port left
    append = cluster.launches > 1
    try:
        cluster.processes.append(
            launch(
                [
                    str(bin_dir / "etcd"),
                    "--name=default",
                    f"--data-dir={workdir / 'etcd'}",
                    f"--listen-client-urls=http://127.0.0.1:{etcd_client}",
                    f"--advertise-client-urls=http://127.0.0.1:{etcd_client}",
                    f"--listen-peer-urls=http://127.0.0.1:{etcd_peer}",
                    f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}",
                    f"--initial-cluster=default=http://127.0.0.1:{etcd_peer}",
                    "--log-level=warn",
                ],
                workdir / "etcd.log",
                append,
            )
        )
        cluster.api_command = [
            str(bin_dir / "kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{etcd_client}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={cluster.api_port}",
            f"--cert-dir={workdir / 'pki'}",
            f"--token-auth-file={workdir / 'tokens.csv'}",
            "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={workdir / 'sa.pub'}",
            f"--service-account-signing-key-file={workdir / 'sa.key'}",
            "--service-cluster-ip-range=10.0.0.0/24",
            # No kube-controller-manager runs, so nothing would clear the
            # foregroundDeletion finalizer Pulumi's deletes ask for.
            "--enable-garbage-collector=false",
            "--enable-priority-and-fairness=false",
            "--profiling=false",
            "--disable-admission-plugins=ServiceAccount",
            "--endpoint-reconciler-type=none",
        ]
        cluster.processes.append(launch(cluster.api_command, workdir / "apiserver.log", append))
    except BaseException:
        cluster.terminate()
        raise
    write_kubeconfig(cluster)


def launch(command: list[str], log: Path, append: bool = False) -> subprocess.Popen[bytes]:
    with log.open("ab" if append else "wb") as stream:
        stream.write(f"=== {' '.join(command)}\n".encode())
        stream.flush()
        return subprocess.Popen(
            [*die_with_parent(), *command], stdout=stream, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )


def port_taken(cluster: LocalCluster) -> bool:
    """Whether etcd or the API server said, in its last launch's log, that its port was taken."""
    for name in ("etcd.log", "apiserver.log"):
        text = (cluster.workdir / name).read_text(errors="replace")
        if PORT_TAKEN in text.rsplit("\n=== ", 1)[-1]:
            return True
    return False


def die_with_parent() -> list[str]:
    """A prefix that has the kernel SIGKILL the server when the test process dies, however it dies (a
    SIGKILL'd pytest runs no `finally`). util-linux's setpriv sets the parent-death signal and execs,
    so nothing runs between fork and exec (a preexec_fn could deadlock once grpc's threads run)."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--"] if setpriv and sys.platform == "linux" else []


def write_service_account_keys(workdir: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (workdir / "sa.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    (workdir / "sa.pub").write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def write_kubeconfig(cluster: LocalCluster) -> None:
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster.name,
                "cluster": {
                    "server": f"https://127.0.0.1:{cluster.api_port}",
                    "certificate-authority": str(cluster.server_ca),
                },
            }
        ],
        "users": [{"name": "admin", "user": {"token": cluster.token}}],
        "contexts": [{"name": cluster.name, "context": {"cluster": cluster.name, "user": "admin"}}],
        "current-context": cluster.name,
    }
    cluster.kubeconfig.write_text(json.dumps(kubeconfig, indent=2))


def wait_ready(cluster: LocalCluster) -> None:
    """Until the API server answers /readyz. A new cluster one of whose servers found its port taken starts
    again on other ports (START_ATTEMPTS in all)."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        for process in cluster.processes:
            if process.poll() is not None:
                bin_dir = None if cluster.was_ready else cluster.bin_dir
                if bin_dir is not None and cluster.launches < START_ATTEMPTS and port_taken(cluster):
                    cluster.terminate()
                    launch_servers(cluster, bin_dir)
                    break
                raise RuntimeError(f"{cluster.name}: a server exited early; see {cluster.workdir}/*.log")
        if cluster.server_ca.exists():
            try:
                status, _ = cluster.raw_request("GET", "/readyz")
            except OSError:
                status = 0
            if status == 200:
                cluster.was_ready = True
                return
        time.sleep(0.2)
    raise RuntimeError(f"{cluster.name}: API server not ready after {READY_TIMEOUT_SECONDS}s; see {cluster.workdir}")
