"""The policy pack (policy/) as the end-to-end tests run it: a copy of the pack whose PulumiPolicy.yaml
points at a virtualenv made as policy/requirements.txt says.

The virtualenv holds istio-ca installed from a copy of the checkout and sees the test environment's
packages (tests/installed.py), with the pack's own pulumi-policy and protobuf pins installed over them:
pulumi-policy needs protobuf 5, the program's environment has protobuf 6.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.installed import install_checkout
from tests.program import PROJECT_DIR

PACK = PROJECT_DIR / "policy"
OWN_PINS = ("pulumi-policy==", "protobuf==")
"""The pack's requirements the test environment cannot hold."""


def own_pins() -> list[str]:
    lines = (PACK / "requirements.txt").read_text().splitlines()
    pins = [line.strip() for line in lines if line.strip().startswith(OWN_PINS)]
    assert len(pins) == len(OWN_PINS), f"policy/requirements.txt pins {pins}"
    return pins


def pack_virtualenv(directory: Path) -> Path:
    venv = install_checkout(directory)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "install", "--quiet"]
    subprocess.run([*pip, "--no-deps", *own_pins()], check=True, timeout=300)
    return venv


def pack_copy(directory: Path, venv: Path) -> Path:
    """policy/ copied to `directory`, its virtualenv option pointing at `venv`."""
    copy = directory / "policy"
    shutil.copytree(PACK, copy, ignore=shutil.ignore_patterns("__pycache__", "venv"))
    project = yaml.safe_load((copy / "PulumiPolicy.yaml").read_text())
    assert project["runtime"]["options"] == {"virtualenv": "venv"}
    project["runtime"]["options"]["virtualenv"] = str(venv)
    (copy / "PulumiPolicy.yaml").write_text(yaml.safe_dump(project))
    return copy


@pytest.fixture(scope="session")
def policy_pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pack's directory, for `--policy-pack`."""
    base = tmp_path_factory.mktemp("policy-pack")
    return pack_copy(base, pack_virtualenv(base / "install"))
