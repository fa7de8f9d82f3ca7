"""istio-ca as an installable library: one import name, `istio_ca`, whether run from the checkout or installed."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import istio_ca
from tests.installed import install_checkout, site_packages
from tests.program import PROJECT_DIR, run_program

DEV_CONFIG = {"clusters": [{"name": "east"}, {"name": "west"}], "workloads": [{"namespace": "vm"}]}


def test_every_module_loads_under_one_name() -> None:
    """The program's directory is on sys.path, so `components` would import too: nothing may."""
    run_program(DEV_CONFIG)
    assert PROJECT_DIR in {Path(entry or ".").resolve() for entry in sys.path}
    loaded = sorted(name for name in sys.modules if name == "components" or name.startswith("components."))
    assert loaded == []
    ours = {name: module for name, module in sys.modules.items() if name.split(".")[0] == "istio_ca"}
    assert len(ours) > 10
    for module in ours.values():
        assert Path(str(module.__file__)).resolve().is_relative_to(PROJECT_DIR / "components"), module


def test_the_wheel_holds_istio_ca_alone(tmp_path: Path) -> None:
    # Built from a copy: an in-tree build would leave build/ and egg-info in the checkout.
    source, wheels = tmp_path / "source", tmp_path / "wheels"
    shutil.copytree(PROJECT_DIR / "components", source / "components", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(PROJECT_DIR / "pyproject.toml", source / "pyproject.toml")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--no-deps", "--quiet", "-w", str(wheels), str(source)], check=True, timeout=300)
    (wheel,) = wheels.glob("istio_ca-*.whl")
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert tops == {"istio_ca", f"istio_ca-{istio_ca.__version__}.dist-info"}  # no top-level `components`
    assert "istio_ca/py.typed" in zipfile.ZipFile(wheel).namelist()


def test_pip_install_of_the_checkout_gives_every_component(tmp_path: Path) -> None:
    venv = install_checkout(tmp_path)
    names = ", ".join(istio_ca.__all__)
    probe = f"import istio_ca, sys; from istio_ca import {names}; print(istio_ca.__file__, istio_ca.__version__)"
    python = venv / "bin" / "python"
    result = subprocess.run([python, "-c", probe], cwd=tmp_path, check=True, capture_output=True, text=True)
    location, version = result.stdout.split()
    assert Path(location).is_relative_to(site_packages(python)) and version == istio_ca.__version__
