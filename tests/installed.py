"""istio-ca installed as a host stack installs it: from a copy of this checkout, into a fresh virtualenv."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from tests.program import PROJECT_DIR


def install_checkout(directory: Path, host_project: str | None = None) -> Path:
    """A fresh virtualenv under `directory` with istio-ca installed from a copy of this checkout; returns it.

    `host_project`: a project of the checkout's (e.g. examples/host-stack) whose requirements.txt names
    istio-ca as a host stack would; installed with that file, from that project's place in the copy.
    Without it, `pip install <checkout>`. The virtualenv sees this environment's dependencies (pinned in
    requirements.txt; no registry is needed) but not the checkout. A copy, because an in-tree build
    would leave build/ and egg-info behind.
    """
    source, venv = directory / "source", directory / "venv"
    shutil.copytree(PROJECT_DIR / "components", source / "components", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(PROJECT_DIR / "pyproject.toml", source / "pyproject.toml")
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=120)
    python = venv / "bin" / "python"
    (site_packages(python) / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip = [str(python), "-m", "pip", "--disable-pip-version-check", "install", "--no-deps", "--quiet"]
    if host_project is None:
        subprocess.run([*pip, str(source)], check=True, timeout=300)
    else:
        shutil.copytree(PROJECT_DIR / host_project, source / host_project)
        subprocess.run([*pip, "-r", "requirements.txt"], cwd=source / host_project, check=True, timeout=300)
    return venv


def site_packages(python: Path) -> Path:
    found = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    )
    return Path(found.stdout.strip())
