"""The policy pack (policy/) enforced with `--policy-pack` on real stacks: the shipped dev stack passes it;
a small hand-written pulumi-tls + kubernetes stack per group of rules (tests/e2e/policy_stacks) is blocked
at preview and at `up`, naming the rules, before its `cacerts` is written. The YAML example runs under the
pack in test_yaml_program.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from cacerts_guard.rules import policy_names
from tests.e2e.local_cluster import LocalCluster
from tests.e2e.policy_pack import policy_pack
from tests.e2e.pulumi_cli import Workspace, new_workspace, printed
from tests.program import PROJECT_DIR

__all__ = ["policy_pack"]  # the fixture

BAD_STACKS = PROJECT_DIR / "tests" / "e2e" / "policy_stacks"
VIOLATION = "[mandatory]"
PACK_NAME = "istio-ca-cacerts"
AT_PREVIEW = {
    "keys": {"ca-key-rsa-too-small-planned", "ca-key-unsupported-algorithm-planned"},
    "certificates": {
        "ca-extended-key-usage",
        "ca-missing-key-cert-sign",
        "ca-validity-too-long",
        "ca-issuer-not-ca-planned",
        "ca-outlives-root-planned",
    },
    # The kubernetes provider's check folds a Secret's stringData into data, unknown as a whole at preview.
    "cacerts": {"cacerts-not-opaque"},
    "providers": {"cacerts-provider-not-mutable"},
    "secrets": {"private-key-in-input", "private-key-in-output"},
}
"""The rules each bad stack breaks that the pack sees at preview, before any certificate exists (README)."""
AT_UP = {
    "keys": {"ca-key-rsa-too-small"},
    "certificates": {"ca-validity-too-long"},
    "cacerts": {
        "cacerts-missing-file",
        "cacerts-istio-generated",
        "cacerts-not-opaque",
        "cacerts-broken-chain",
        "cacerts-key-mismatch",
        "cacerts-root-not-ca",
    },
    "providers": {"cacerts-provider-not-mutable"},
    "secrets": {"private-key-in-input"},
}
"""The rules `up --skip-preview` blocks on, each just before the resource it judges is written."""


def test_the_dev_stack_passes_the_pack(
    policy_pack: Path, pulumi_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    # The shipped dev stack's config under a stack name of its own: test_dev_stack.py's `dev` may share the backend.
    workspace = new_workspace(tmp_path_factory.mktemp("policy-dev") / "project", "policy-dev", pulumi_env)
    stack_file = workspace.directory / "Pulumi.policy-dev.yaml"  # as `stack init` wrote it: its secrets salt
    settings = yaml.safe_load(stack_file.read_text()) or {}
    settings["config"] = yaml.safe_load((workspace.directory / "Pulumi.dev.yaml").read_text())["config"]
    stack_file.write_text(yaml.safe_dump(settings))
    pack = ("--policy-pack", str(policy_pack))
    # A team's tighter limit, through the pack's config: the shipped 10-year root is then too long.
    config = workspace.directory / "policy-config.json"
    config.write_text(json.dumps({"ca-validity-too-long": {"maxRootDays": 3000}}))
    result = workspace.run("preview", *pack, "--policy-pack-config", str(config), check=False)
    assert result.returncode != 0 and violated(printed(result)) == {"ca-validity-too-long"}

    for command in (("preview",), ("up", "--yes", "--skip-preview"), ("preview", "--expect-no-changes")):
        # The second preview knows every value: the cacerts checks run on the rendered Secrets' files.
        output = printed(workspace.run(*command, *pack))
        assert f"{PACK_NAME}@v" in output and VIOLATION not in output, command


def leaked_key() -> str:
    """A key for the secrets stack to leak, passed as a secret config value (the leak audit remembers it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def bad_stack(
    group: str, cluster: LocalCluster, pulumi_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Workspace:
    namespace = f"policy-{group}"
    cluster.create_namespace(namespace)
    workspace = new_workspace(tmp_path_factory.mktemp(namespace) / "project", group, pulumi_env, BAD_STACKS)
    for key, value in (("group", group), ("namespace", namespace), ("kubeconfig", str(cluster.kubeconfig))):
        workspace.run("config", "set", key, value)
    if group == "secrets":
        workspace.run("config", "set", "--secret", "leakedKey", stdin=leaked_key())
    return workspace


def violated(output: str) -> set[str]:
    """The pack's policies the output names."""
    return {name for name in policy_names() if f" {name} (" in output}


@pytest.mark.parametrize("group", sorted(AT_PREVIEW))
def test_a_bad_stack_is_blocked_at_preview_and_up_before_cacerts_is_written(
    group: str,
    policy_pack: Path,
    clusters: dict[str, LocalCluster],
    pulumi_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    cluster = clusters["cluster1"]
    workspace = bad_stack(group, cluster, pulumi_env, tmp_path_factory)
    namespace = f"policy-{group}"
    pack = ("--policy-pack", str(policy_pack))

    result = workspace.run("preview", *pack, check=False)
    output = printed(result)
    assert result.returncode != 0 and VIOLATION in output
    assert violated(output) == AT_PREVIEW[group], output[-3000:]

    result = workspace.run("up", "--yes", "--skip-preview", *pack, check=False)
    output = printed(result)
    assert result.returncode != 0 and VIOLATION in output
    assert violated(output) == AT_UP[group], output[-3000:]
    assert cluster.secret(namespace, "cacerts") is None
    status, _ = cluster.request("GET", f"/api/v1/namespaces/{namespace}/configmaps/leak")
    assert status == 404
