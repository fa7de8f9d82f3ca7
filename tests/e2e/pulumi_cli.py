"""The real `pulumi` CLI, offline: local file backend, passphrase secrets, plugins from the toolchain."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, cast

import yaml

from tests.e2e.leak_audit import AUDIT
from tests.program import PROJECT_DIR

PROJECT_FILES = ("Pulumi.yaml", "Pulumi.dev.yaml", "requirements.txt", "components", "istio_ca")
"""The program's files besides its top-level modules (`*.py`, which differ between versions)."""
PASSPHRASE = "e2e-only-passphrase"
COMMAND_TIMEOUT_SECONDS = 600


@dataclass(frozen=True)
class Toolchain:
    """The directory toolchain/build.sh assembles: bin/ and providers/."""

    root: Path

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    def provider(self, name: str) -> Path:
        return self.root / "providers" / f"pulumi-resource-{name}"


def plugin_version(package: str) -> str:
    """The provider version the installed Python SDK asks the engine for."""
    manifest = json.loads((resources.files(package) / "pulumi-plugin.json").read_text())
    return str(manifest["version"])


def offline_environment(toolchain: Toolchain, pulumi_home: Path, backend: Path, temporary: Path) -> dict[str, str]:
    """The environment of every CLI run: nothing ambient, nothing from the network."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_") and k != "KUBECONFIG"}
    env.update(
        PATH=f"{toolchain.bin}{os.pathsep}{env.get('PATH', '')}",
        TMPDIR=str(temporary),  # the kubernetes provider leaves kubeconfig copies there
        PULUMI_HOME=str(pulumi_home),
        PULUMI_BACKEND_URL=backend.as_uri(),
        PULUMI_CONFIG_PASSPHRASE=PASSPHRASE,
        PULUMI_SKIP_UPDATE_CHECK="true",
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="true",
        PULUMI_IGNORE_AMBIENT_PLUGINS="true",
        PULUMI_DISABLE_REGISTRY_RESOLVE="true",
        PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK="true",
    )
    return env


def scratch_environment(toolchain: Toolchain, base: Path) -> dict[str, str]:
    """The offline environment with its backend, PULUMI_HOME (holding the toolchain's providers) and
    TMPDIR in `base/state`, `base/home` and `base/tmp`."""
    for directory in ("state", "home", "tmp"):
        (base / directory).mkdir(parents=True)
    env = offline_environment(toolchain, pulumi_home=base / "home", backend=base / "state", temporary=base / "tmp")
    install_providers(toolchain, env)
    return env


def install_providers(toolchain: Toolchain, env: dict[str, str]) -> None:
    """Put the built provider plugins into PULUMI_HOME under the versions the SDKs ask for."""
    for name, package in (("tls", "pulumi_tls"), ("kubernetes", "pulumi_kubernetes")):
        binary = toolchain.provider(name)
        if not binary.is_file():
            raise FileNotFoundError(f"{binary} is missing: run `make tools`")
        result = subprocess.run(
            ["pulumi", "plugin", "install", "resource", name, plugin_version(package), "--file", str(binary)],
            cwd=env["PULUMI_HOME"],  # outside any project, so no Pulumi.yaml is read
            env=env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
        )
        assert result.returncode == 0, f"installing the {name} plugin failed:\n{result.stdout}{result.stderr}"


@dataclass
class Workspace:
    """A copy of the project with one stack, driven through the CLI."""

    directory: Path
    stack: str
    env: dict[str, str]
    transcripts: list[str] = field(default_factory=list)
    """Everything every command printed, for the no-key-in-output checks."""

    def run(self, *args: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """One CLI command; `stdin` (e.g. a secret config value) is never recorded."""
        result = subprocess.run(
            self._command(args),
            cwd=self.directory,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
        )
        AUDIT.remember(stdin)
        transcript = self._record(" ".join(args), f"{result.stdout}\n{result.stderr}")
        if check and result.returncode != 0:
            raise AssertionError(f"pulumi {' '.join(args)} failed ({result.returncode}):\n{transcript[-4000:]}")
        return result

    def start(self, *args: str) -> subprocess.Popen[str]:
        """One CLI command in the background, in its own process group as a terminal runs it; `finish` waits."""
        return subprocess.Popen(
            self._command(args),
            cwd=self.directory,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

    def finish(self, process: subprocess.Popen[str], timeout: float = COMMAND_TIMEOUT_SECONDS) -> str:
        """Everything a command `start` began printed, once it ended, recorded and checked as `run` does."""
        output, _ = process.communicate(timeout=timeout)
        self._record(" ".join(cast(list[str], process.args)[1:]), output)
        return output

    def _command(self, args: tuple[str, ...]) -> list[str]:
        return ["pulumi", *args, "--stack", self.stack, "--non-interactive", "--color", "never"]

    def _record(self, command: str, output: str) -> str:
        transcript = f"$ pulumi {command}\n{output}"
        self.transcripts.append(transcript)
        AUDIT.transcripts.append(transcript)
        # Checked here, for every command, so no test can forget it.
        assert "PRIVATE KEY" not in transcript, "a private key reached the CLI output"
        return transcript

    def config(self) -> dict[str, Any]:
        """The stack's `istio-ca:` config as written (secrets still encrypted)."""
        document = yaml.safe_load((self.directory / f"Pulumi.{self.stack}.yaml").read_text())
        return {key.removeprefix("istio-ca:"): value for key, value in document["config"].items()}

    def write_config(self, config: dict[str, Any]) -> None:
        """Replace the stack's `istio-ca:` config (the secrets salt is kept)."""
        path = self.directory / f"Pulumi.{self.stack}.yaml"
        document = yaml.safe_load(path.read_text()) if path.exists() else {}
        document["config"] = {f"istio-ca:{key}": value for key, value in config.items()}
        path.write_text(yaml.safe_dump(document))

    def up(self) -> subprocess.CompletedProcess[str]:
        return self.run("up", "--yes", "--skip-preview")

    def destroy(self) -> None:
        """What the README says: release the roots' protection on purpose, then destroy (cacerts stay)."""
        self.run("state", "unprotect", "--all", "--yes")
        self.run("destroy", "--yes", "--skip-preview")

    def preview_steps(self, *args: str) -> dict[str, str]:
        """Planned operation per resource name, from `pulumi preview --json`."""
        result = self.run("preview", "--json", "--diff", *args)
        steps = json.loads(result.stdout).get("steps", [])
        return {step["urn"].split("::")[-1]: step["op"] for step in steps}

    def planned_changes(self, *args: str) -> dict[str, str]:
        """The steps of a preview that change something (not `same`, `read` or `refresh`), by resource name."""
        return {name: op for name, op in self.preview_steps(*args).items() if op not in ("same", "read", "refresh")}

    def outputs(self) -> dict[str, Any]:
        return dict(json.loads(self.run("stack", "output", "--json").stdout))

    def secret_outputs(self) -> dict[str, Any]:
        """Stack outputs with secrets shown; kept out of the transcripts and never printed."""
        result = subprocess.run(
            ["pulumi", "stack", "output", "--json", "--show-secrets", "--stack", self.stack, "--non-interactive"],
            cwd=self.directory,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
        )
        if result.returncode != 0:
            raise AssertionError(f"pulumi stack output --show-secrets failed ({result.returncode})")
        outputs = dict(json.loads(result.stdout))
        AUDIT.remember(outputs)
        return outputs

    def export(self) -> str:
        return self.run("stack", "export").stdout

    def history_length(self) -> int:
        """How many updates `pulumi stack history` lists."""
        return len(json.loads(self.run("stack", "history", "--json").stdout))

    def resources(self) -> dict[str, dict[str, Any]]:
        """The state's resources by URN: what they are, their inputs and outputs. Each secret is only
        marked (every update encrypts it anew); the engine's bookkeeping (order, stamps) is left out."""
        resources = json.loads(self.export())["deployment"].get("resources") or []
        kept = ("type", "id", "parent", "provider", "inputs", "outputs")
        return {r["urn"]: _without_ciphertext({k: r[k] for k in kept if k in r}) for r in resources}


def printed(result: subprocess.CompletedProcess[str]) -> str:
    """Everything a command printed, stdout and stderr (where the CLI puts warnings), lines joined."""
    return " ".join((result.stdout + result.stderr).split())


def _without_ciphertext(value: Any) -> Any:
    if isinstance(value, dict):
        if "ciphertext" in value:
            return "<secret>"
        return {key: _without_ciphertext(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_ciphertext(item) for item in value]
    return value


def copy_program(source: Path, directory: Path) -> None:
    """The program's files from `source` (this checkout, or an older one) into `directory`, replacing any there."""
    modules = {path.name for path in [*source.glob("*.py"), *directory.glob("*.py")]}
    for name in [*PROJECT_FILES, *sorted(modules)]:
        origin, target = source / name, directory / name
        if target.is_symlink() or target.is_file():
            target.unlink()
        elif target.is_dir():
            shutil.rmtree(target)
        if origin.is_symlink():
            target.symlink_to(os.readlink(origin))
        elif origin.is_dir():
            shutil.copytree(origin, target, ignore=shutil.ignore_patterns("__pycache__"))
        elif origin.is_file():
            shutil.copy2(origin, target)


def new_workspace(
    directory: Path, stack: str, env: dict[str, str], source: Path = PROJECT_DIR, virtualenv: Path = Path(sys.prefix)
) -> Workspace:
    """Copy the project (this checkout's files, or `source`'s), link its virtualenv (by default the one
    running these tests), create the stack."""
    directory.mkdir(parents=True)
    copy_program(source, directory)
    # A stack file salted by an earlier `make up` in this checkout: the copy's stack gets its own salt.
    dev_stack = directory / "Pulumi.dev.yaml"
    if dev_stack.exists():
        dev_stack.write_text(
            "".join(line for line in dev_stack.read_text().splitlines(True) if "encryptionsalt" not in line)
        )
    AUDIT.plain_places.add(directory)
    AUDIT.key_directories.add(directory / "rendered")
    # Pulumi.yaml names `.venv`: point it at the environment running these tests.
    (directory / ".venv").symlink_to(virtualenv, target_is_directory=True)
    workspace = Workspace(directory=directory, stack=stack, env=env)
    subprocess.run(
        ["pulumi", "stack", "init", stack, "--secrets-provider", "passphrase", "--non-interactive"],
        cwd=directory,
        env=env,
        check=True,
        capture_output=True,
        timeout=COMMAND_TIMEOUT_SECONDS,
    )
    return workspace
