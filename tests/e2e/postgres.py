"""A PostgreSQL server for Pulumi's postgres:// backend: Debian's `postgresql`, started on 127.0.0.1 with a data
directory of its own and stopped by whoever started it. The server refuses to run as root (CI runs as root), so
there it runs as the package's `postgres` user, from a directory that user owns."""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.local_cluster import PORT_TAKEN, START_ATTEMPTS, free_ports

DATABASE = "pulumi"
USER = "pulumi"
START_TIMEOUT_SECONDS = 60
CONNECT_TIMEOUT_SECONDS = 5
"""How long the CLI's driver (lib/pq, which honours `connect_timeout` in the URL) waits for a connection: without
it, a server that accepts connections and never answers (wedged, or stopped with SIGSTOP) holds every command
forever. A stopped server refuses at once either way."""
HELD_WRITE = "istio_ca_held_write"
HOLD_SECONDS = 600
"""How long `writes_held` keeps a write waiting at most: longer than any test waits for it."""


def binaries() -> Path:
    """The newest installed server's bin/ (`.ci/run` installs Debian's postgresql when it is missing)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parent.parent.name))
    if not found:
        raise FileNotFoundError("no PostgreSQL server: install Debian's postgresql (`.ci/run` does)")
    return found[-1].parent


@dataclass
class PostgresServer:
    """One running server; `url` is the backend URL for `pulumi login` / PULUMI_BACKEND_URL."""

    directory: Path
    port: int
    password: str
    owner: str | None
    """The user the server runs as when this process is root."""

    @property
    def url(self) -> str:
        return (
            f"postgres://{USER}:{self.password}@127.0.0.1:{self.port}/{DATABASE}"
            f"?sslmode=disable&connect_timeout={CONNECT_TIMEOUT_SECONDS}"
        )

    def table_url(self, table: str) -> str:
        """A backend of its own in the same database: Pulumi's `table` parameter names the table it keeps."""
        return f"{self.url}&table={table}"

    @property
    def data(self) -> Path:
        return self.directory / "data"

    def _run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        as_owner = ["runuser", "-u", self.owner, "--"] if self.owner else []
        return subprocess.run(
            [*as_owner, *command], capture_output=True, text=True, check=check, timeout=START_TIMEOUT_SECONDS
        )

    def start(self) -> None:
        """Start the server and wait until it accepts connections; a running server is left as it is."""
        if (self.data / "postmaster.pid").exists():
            return
        log = self.directory / "server.log"
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.directory} -c fsync=off"
        self._run(str(binaries() / "pg_ctl"), "start", "-w", "-D", str(self.data), "-l", str(log), "-o", options)

    def stop(self) -> None:
        """Stop the server now (running transactions are aborted); a stopped server is left as it is."""
        if (self.data / "postmaster.pid").exists():
            self._run(str(binaries() / "pg_ctl"), "stop", "-m", "fast", "-w", "-D", str(self.data), check=False)

    def sql(self, statement: str) -> str:
        """One statement through the server's own socket, as its superuser; the result's rows, unaligned."""
        done = self._run(
            str(binaries() / "psql"),
            "-h",
            str(self.directory),
            "-p",
            str(self.port),
            "-U",
            USER,
            "-d",
            DATABASE,
            "-At",
            "-c",
            statement,
        )
        return done.stdout.strip()

    @contextmanager
    def writes_held(self, table: str, key_suffix: str, once_it_holds: str) -> Iterator[None]:
        """Each write to the backend object whose key ends with `key_suffix` waits in the server once the object
        holds `once_it_holds` (the backend stores it as base64 in JSON): a `pulumi up` is caught between two
        checkpoints, the first one holding that text committed, for as long as a test needs. On the way out
        the waiting write is aborted (never committed) and nothing is held any more."""
        suffix, text = key_suffix.replace("'", "''"), once_it_holds.replace("'", "''")
        self.sql(
            f"CREATE FUNCTION {HELD_WRITE}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF position('{text}' IN convert_from(decode(OLD.data->>'data', 'base64'), 'UTF8')) > 0 THEN "
            f"PERFORM pg_sleep({HOLD_SECONDS}); END IF; RETURN NEW; END $$; "
            f"CREATE TRIGGER {HELD_WRITE} BEFORE UPDATE ON {table} FOR EACH ROW "
            f"WHEN (OLD.key LIKE '%{suffix}') EXECUTE FUNCTION {HELD_WRITE}()"
        )
        try:
            yield
        finally:
            # No write waits from here on, then the waiting one ends (so nothing holds the table the DROP locks).
            self.sql(
                f"CREATE OR REPLACE FUNCTION {HELD_WRITE}() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RETURN NEW; END $$"
            )
            self.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE wait_event = 'PgSleep'")
            self.sql(f"DROP TRIGGER {HELD_WRITE} ON {table}; DROP FUNCTION {HELD_WRITE}()")

    def write_held(self) -> bool:
        """Whether a write waits in `writes_held`."""
        return self.sql("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'") != "0"

    def database_bytes(self) -> int:
        """The database's size on disk: what the backend holds, with its indexes."""
        return int(self.sql(f"SELECT pg_database_size('{DATABASE}')"))


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A fresh server with one database and a password user (the postgres:// backend logs in with it), in a
    directory of its own under /tmp (a root-only pytest directory would be out of the server user's reach);
    stopped and removed on the way out, whatever happened."""
    owner = "postgres" if os.geteuid() == 0 else None
    directory = Path(tempfile.mkdtemp(prefix="istio-ca-postgres-"))
    if owner is not None:
        entry = pwd.getpwnam(owner)
        os.chown(directory, entry.pw_uid, entry.pw_gid)
    server = PostgresServer(directory=directory, port=free_ports(1)[0], password=secrets.token_hex(16), owner=owner)
    try:
        password_file = directory / "password"
        password_file.write_text(server.password)
        if owner is not None:
            os.chown(password_file, pwd.getpwnam(owner).pw_uid, -1)
        server._run(
            str(binaries() / "initdb"),
            "-D",
            str(server.data),
            "-U",
            USER,
            "--pwfile",
            str(password_file),
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--no-sync",
        )
        password_file.unlink()
        _start_on_a_free_port(server)
        _wait_accepting(server)
        server._run(str(binaries() / "createdb"), "-h", str(directory), "-p", str(server.port), "-U", USER, DATABASE)
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def _start_on_a_free_port(server: PostgresServer) -> None:
    """As the API servers do (local_cluster): a port found free may be taken before the server binds it."""
    for attempt in range(1, START_ATTEMPTS + 1):
        try:
            server.start()
            return
        except subprocess.CalledProcessError:
            log = server.directory / "server.log"
            if attempt == START_ATTEMPTS or PORT_TAKEN not in (log.read_text().lower() if log.exists() else ""):
                raise
            log.unlink()  # its next start's log says only what that start met
            server.port = free_ports(1)[0]


def _wait_accepting(server: PostgresServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", server.port)) == 0:
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"PostgreSQL did not listen on 127.0.0.1:{server.port}")
        time.sleep(0.1)
