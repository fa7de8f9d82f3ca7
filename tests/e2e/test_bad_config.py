"""A bad config fails before anything happens: the state keeps every resource, input and output as it was."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.pulumi_cli import new_workspace

GOOD: dict[str, Any] = {
    "clusters": [{"name": "cluster1"}, {"name": "cluster2"}],
    "intermediate": {"keyAlgorithm": "ECDSA"},
}
BAD: list[tuple[dict[str, Any], str]] = [
    ({"clusters": [{"name": "cluster1 "}]}, "clusters[0].name: 'cluster1 ' is not a valid cluster name"),
    ({**GOOD, "root": {"org": "Acme "}}, "root.org: 'Acme ' starts or ends with white space"),
    ({**GOOD, "retainCacerts": "no"}, "retainCacerts must be true or false, got 'no'"),
]


def test_bad_config_leaves_the_state_untouched(
    pulumi_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    workspace = new_workspace(tmp_path_factory.mktemp("bad-config") / "project", "bad", pulumi_env)
    workspace.write_config(GOOD)
    workspace.up()
    resources, history = workspace.resources(), workspace.history_length()
    for config, message in BAD:
        workspace.write_config(config)
        for command in (("preview",), ("up", "--yes")):
            result = workspace.run(*command, check=False)
            output = result.stdout + result.stderr
            assert result.returncode != 0, command
            assert message in output and "Traceback" not in output, command
    assert workspace.resources() == resources
    assert workspace.history_length() == history
    workspace.write_config(GOOD)
    workspace.run("preview", "--expect-no-changes")
