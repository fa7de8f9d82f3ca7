"""A YAML program composes MeshCA from the component package (package/), with Kubernetes providers of its own:
examples/yaml run by the YAML language host, against two API servers of its own, from preview to destroy.

Every `cacerts` is read back and checked as a chain (tests/x509_checks.py), and every CLI output goes through
the session's key finder (tests/e2e/leak_audit.py), as for the Python stacks.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.local_cluster import LocalCluster, running_clusters
from tests.e2e.policy_pack import policy_pack
from tests.e2e.pulumi_cli import COMMAND_TIMEOUT_SECONDS, Toolchain, Workspace, new_workspace, printed
from tests.e2e.rotation_checks import NOT_STARTED, RETIRE, SWITCH, TRUST_BOTH, Roots, down
from tests.e2e.stacks import renews_in_place
from tests.installed import install_checkout
from tests.program import PROJECT_DIR
from tests.x509_checks import check_cacerts_chain, load_certificates

__all__ = ["policy_pack"]  # the fixture

EXAMPLE = PROJECT_DIR / "examples" / "yaml"
NAMESPACE = "istio-system"
NAMES = ("east", "west")


@pytest.fixture(scope="module")
def yaml_clusters(toolchain: Toolchain, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, LocalCluster]]:
    """The example's two clusters, of its own: their `istio-system` holds no `cacerts` another test left."""
    with running_clusters(NAMES, toolchain.bin, tmp_path_factory.mktemp("yaml-clusters")) as started:
        for cluster in started.values():
            cluster.create_namespace(NAMESPACE)
        yield started


@pytest.fixture(scope="module")
def yaml_stack(
    yaml_clusters: dict[str, LocalCluster], pulumi_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Workspace:
    """examples/yaml, its `packages:` pointing at a copy of package/ whose virtualenv holds istio-ca installed
    from package/requirements.txt, as `pulumi install` would make it."""
    base = tmp_path_factory.mktemp("yaml")
    venv = install_checkout(base / "install", "package")
    # The package as it sits in a checkout (install_checkout's copy), its virtualenv the one made from its
    # requirements.txt; each CLI run installs them again there, as for any source plugin.
    package = base / "install" / "source" / "package"
    plugin = yaml.safe_load((package / "PulumiPlugin.yaml").read_text())
    assert plugin["runtime"]["options"] == {"virtualenv": "venv"}
    plugin["runtime"]["options"]["virtualenv"] = str(venv)
    (package / "PulumiPlugin.yaml").write_text(yaml.safe_dump(plugin))
    workspace = new_workspace(base / "project", "dev", pulumi_env, EXAMPLE)
    program = yaml.safe_load((workspace.directory / "Pulumi.yaml").read_text())
    assert program["packages"] == {"istio-ca": "../../package"}
    program["packages"]["istio-ca"] = str(package)
    write_program(workspace, program)
    for name, cluster in yaml_clusters.items():
        # The local clusters' kubeconfigs are JSON, which the YAML language host hands over as an object.
        workspace.run("config", "set", "--secret", f"{name}Kubeconfig", stdin=cluster.kubeconfig.read_text())
    return workspace


def write_program(workspace: Workspace, program: dict[str, Any]) -> None:
    (workspace.directory / "Pulumi.yaml").write_text(yaml.safe_dump(program, sort_keys=False))


def set_phase(workspace: Workspace, phase: str | None) -> None:
    """Edit the program as its owner would: the mesh's `rootRotation`, or none."""
    program = yaml.safe_load((workspace.directory / "Pulumi.yaml").read_text())
    mesh = program["resources"]["mesh"]["properties"]["mesh"]
    mesh.pop("rootRotation", None)
    if phase is not None:
        mesh["rootRotation"] = {"phase": phase, "retireAfterHours": 0}
    write_program(workspace, program)


def root_phases(workspace: Workspace) -> dict[str, str]:
    return {name: cluster["rootPhase"] for name, cluster in workspace.outputs()["clusters"].items()}


def up_with_one_down(workspace: Workspace) -> None:
    result = workspace.run("up", "--yes", "--skip-preview", "--continue-on-error", check=False)
    assert result.returncode != 0 and "Traceback" not in printed(result)


def test_get_schema_prints_the_typed_schema(yaml_stack: Workspace) -> None:
    program = yaml.safe_load((yaml_stack.directory / "Pulumi.yaml").read_text())
    # Not a stack command: run outside the workspace's `--stack`, still recorded for the key finder.
    result = subprocess.run(
        ["pulumi", "package", "get-schema", program["packages"]["istio-ca"]],
        cwd=yaml_stack.directory,
        env=yaml_stack.env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_SECONDS,
    )
    yaml_stack._record("package get-schema", result.stdout + result.stderr)
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    assert schema["name"] == "istio-ca"
    assert "istio-ca:index:MeshCA" in schema["resources"]
    mesh = schema["resources"]["istio-ca:index:MeshCA"]["inputProperties"]["mesh"]
    assert mesh["$ref"] == "#/types/istio-ca:index:MeshConfig"


def test_a_yaml_program_brings_up_renews_rotates_through_a_cluster_that_is_down_and_destroys(
    yaml_stack: Workspace, yaml_clusters: dict[str, LocalCluster], policy_pack: Path
) -> None:
    east, west = yaml_clusters["east"], yaml_clusters["west"]
    # The first preview and up run under the policy pack (policy/), which the example passes.
    pack = ("--policy-pack", str(policy_pack))

    # preview shows each certificate the mesh will make, and writes nothing.
    planned = yaml_stack.planned_changes(*pack)
    assert {"mesh", "east-cert", "west-cert", "east-cacerts", "west-cacerts"} <= set(planned)
    assert {planned[name] for name in ("east-cert", "west-cert", "east-cacerts", "west-cacerts")} == {"create"}
    assert east.secret(NAMESPACE, "cacerts") is None and west.secret(NAMESPACE, "cacerts") is None

    assert "istio-ca-cacerts@v" in printed(yaml_stack.run("up", "--yes", "--skip-preview", *pack))
    chains = {
        name: check_cacerts_chain(cluster.secret_data(NAMESPACE, "cacerts")) for name, cluster in yaml_clusters.items()
    }
    assert chains["east"].roots == chains["west"].roots == [chains["east"].issuer]
    assert root_phases(yaml_stack) == {"east": "steady", "west": "steady"}
    yaml_stack.run("preview", "--expect-no-changes")

    renews_in_place(yaml_stack, east, NAMESPACE, chains["east"])

    # A root rotation, west down at trust-both: it fails alone, and switch waits for it.
    roots = Roots(chains["east"].issuer)

    def held() -> dict[str, tuple[tuple[str, ...], str]]:
        return {name: roots.held(cluster, NAMESPACE) for name, cluster in yaml_clusters.items()}

    set_phase(yaml_stack, "trust-both")
    with down(west):
        up_with_one_down(yaml_stack)
        roots.new = load_certificates(east.secret_data(NAMESPACE, "cacerts")["root-cert.pem"])[1]
        assert root_phases(yaml_stack) == {"east": "trust-both", "west": "not started"}
        set_phase(yaml_stack, "switch")
        message = printed(yaml_stack.run("preview"))
        assert "rootRotation.phase 'switch' waits for west, which has not applied 'trust-both'" in message
        up_with_one_down(yaml_stack)
    assert held() == {"east": TRUST_BOTH, "west": NOT_STARTED}

    # west is back: it catches up to trust-both alone, then everyone switches, then retires.
    assert yaml_stack.planned_changes() == {"west-cacerts": "update"}
    yaml_stack.up()
    assert held() == {"east": TRUST_BOTH, "west": TRUST_BOTH}
    yaml_stack.up()
    assert held() == {"east": SWITCH, "west": SWITCH}
    set_phase(yaml_stack, "retire")
    yaml_stack.up()
    assert held() == {"east": RETIRE, "west": RETIRE}
    set_phase(yaml_stack, None)
    yaml_stack.up()
    assert root_phases(yaml_stack) == {"east": "steady", "west": "steady"}
    yaml_stack.run("preview", "--expect-no-changes")

    # destroy: the state is emptied, and each cluster keeps its cacerts (retainCacerts defaults to true).
    kept = {name: cluster.secret_data(NAMESPACE, "cacerts") for name, cluster in yaml_clusters.items()}
    yaml_stack.destroy()
    assert yaml_stack.resources() == {}
    assert {name: cluster.secret_data(NAMESPACE, "cacerts") for name, cluster in yaml_clusters.items()} == kept
    for cluster in yaml_clusters.values():
        cluster.remember_every_secret()  # the key finder then looks for these keys in every output and the state


def test_the_example_is_what_the_readme_shows() -> None:
    readme = (PROJECT_DIR / "README.md").read_text(encoding="utf-8")
    assert Path(EXAMPLE / "Pulumi.yaml").read_text(encoding="utf-8") in readme
