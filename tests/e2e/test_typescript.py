"""A TypeScript program composes MeshCA through the SDK generated from the component package's schema.

The schema is the one `istio-ca`'s package serves (`component_package.schema_provider`), the SDK is what the
toolchain's `pulumi-nodejs-sdkgen` writes for it (pkg/v3's codegen/nodejs; the kubernetes schema it references
comes from the toolchain's provider plugin), and `tsc` type-checks examples/typescript against the packages its
package-lock.json pins, installed once into a cache outside the clone. A program with a misspelled key, a
wrong type or a wrong provider must fail the check, each with tsc naming the error.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.pulumi_cli import Toolchain
from tests.program import PROJECT_DIR

EXAMPLE = PROJECT_DIR / "examples" / "typescript"
NPM_CI_TIMEOUT_SECONDS = 600
TSC_TIMEOUT_SECONDS = 300
WRONG_PROGRAMS = {
    # file: (what index.ts has, what the wrong program has instead, what tsc must say about it)
    "wrong_key.ts": (
        "clusters: [",
        "clusterz: [",
        "error TS2561: Object literal may only specify known properties, but 'clusterz' does not exist in type "
        "'MeshConfigArgs'",
    ),
    "wrong_type.ts": ("days: 3650", 'days: "ten"', "error TS2322: Type 'string' is not assignable to type 'number'"),
    "wrong_provider.ts": (
        "provider: west,",
        'provider: "west",',
        "error TS2322: Type 'string' is not assignable to type 'Input<Provider>'",
    ),
}
TSC_ERROR = re.compile(r"^(?P<file>[^(\s]+)\(\d+,\d+\): (?P<message>error TS\d+: .*)$", re.MULTILINE)


def run(command: list[str], cwd: Path, timeout: float, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return result.stdout + result.stderr


def node_modules() -> Path:
    """The example's packages, as its package-lock.json pins them, installed once per lock outside the clone
    (ISTIO_CA_NPM_CACHE, default ~/.cache/istio-ca/npm), with npm's download cache beside them."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            if os.environ.get("CI"):
                pytest.fail(f"{tool} is not on PATH: the TypeScript check needs Node.js 20 and npm")
            pytest.skip(f"{tool} is not on PATH")
    cache = Path(os.environ.get("ISTIO_CA_NPM_CACHE", Path.home() / ".cache" / "istio-ca" / "npm"))
    cache.mkdir(parents=True, exist_ok=True)
    manifests = ("package.json", "package-lock.json")
    key = hashlib.sha256(b"".join((EXAMPLE / name).read_bytes() for name in manifests)).hexdigest()[:16]
    installed = cache / f"typescript-example-{key}"
    with (cache / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another worker or checkout installing the same lock: wait for it
        if not (installed / ".complete").exists():
            partial = installed.with_name(installed.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            shutil.rmtree(installed, ignore_errors=True)
            partial.mkdir()
            for name in manifests:
                shutil.copy2(EXAMPLE / name, partial / name)
            # --engine-strict: every package must accept this Node (20); no install scripts (@pulumi/kubernetes'
            # would fetch a provider plugin).
            command = ["npm", "ci", "--ignore-scripts", "--engine-strict", "--no-audit", "--no-fund"]
            run([*command, "--prefer-offline", "--cache", str(cache / "_cacache")], partial, NPM_CI_TIMEOUT_SECONDS)
            partial.rename(installed)
            (installed / ".complete").touch()
    return installed / "node_modules"


def package_schema(directory: Path) -> Path:
    """The schema the `istio-ca` component package serves, from a fresh interpreter (the analyzer is patched
    there, not in this process)."""
    code = "from istio_ca.component_package import schema_provider; print(schema_provider().schema)"
    schema = directory / "schema.json"
    schema.write_text(run([sys.executable, "-c", code], PROJECT_DIR, timeout=120))
    return schema


def type_check(program: Path, config: str) -> subprocess.CompletedProcess[str]:
    tsc = program / "node_modules" / "typescript" / "bin" / "tsc"
    return subprocess.run(
        ["node", str(tsc), "--noEmit", "--pretty", "false", "-p", config],
        cwd=program,
        capture_output=True,
        text=True,
        timeout=TSC_TIMEOUT_SECONDS,
    )


def test_a_typescript_program_type_checks_against_the_generated_sdk_and_a_wrong_one_does_not(
    toolchain: Toolchain, pulumi_env: dict[str, str], tmp_path: Path
) -> None:
    modules = node_modules()
    program = tmp_path / "program"
    program.mkdir()
    for name in ("index.ts", "tsconfig.json"):
        shutil.copy2(EXAMPLE / name, program / name)
    (program / "node_modules").symlink_to(modules, target_is_directory=True)

    schema = package_schema(tmp_path)
    sdkgen = str(toolchain.bin / "pulumi-nodejs-sdkgen")
    output = run([sdkgen, str(schema), str(program / "sdk")], tmp_path, timeout=300, env=pulumi_env)
    assert (program / "sdk" / "meshCA.ts").is_file(), output
    assert "provider: pulumi.Input<pulumiKubernetes.Provider>" in (program / "sdk" / "types" / "input.ts").read_text()

    checked = type_check(program, "tsconfig.json")
    assert checked.returncode == 0, f"tsc failed on examples/typescript:\n{checked.stdout}{checked.stderr}"

    source = (program / "index.ts").read_text()
    for name, (good, wrong, _) in WRONG_PROGRAMS.items():
        assert source.count(good) == 1, f"examples/typescript/index.ts no longer has `{good}` once, for {name}"
        (program / name).write_text(source.replace(good, wrong))
    (program / "tsconfig.wrong.json").write_text(json.dumps({"extends": "./tsconfig.json", "files": [*WRONG_PROGRAMS]}))
    checked = type_check(program, "tsconfig.wrong.json")
    output = checked.stdout + checked.stderr
    assert checked.returncode != 0, f"tsc accepted the wrong programs:\n{output}"
    errors = {(match["file"], match["message"]) for match in TSC_ERROR.finditer(output)}
    for name, (_, _, expected) in WRONG_PROGRAMS.items():
        assert any(file == name and message.startswith(expected) for file, message in errors), (
            f"tsc did not report `{expected}` in {name}:\n{output}"
        )
    assert {file for file, _ in errors} == set(WRONG_PROGRAMS), f"errors outside the wrong programs:\n{output}"
