"""What the engine passed this program as `istio-ca:` config (which of it is secret, leaf by leaf), and
what this stack's last run exported.

The only module that reads Pulumi's runtime config and state; everything after works on plain values.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pulumi
import yaml

from istio_ca.config_schema import CONFIG_PREFIX, ConfigPath

CHECKPOINT_READ_ATTEMPTS = 10


def read_stack_config() -> dict[str, Any]:
    """Every `istio-ca:` key the engine passed to this program, JSON values decoded."""
    # The SDK keeps config in two places depending on how the program runs.
    values = {**pulumi.runtime.config.get_config_env(), **pulumi.runtime.config.CONFIG.get()}
    prefix = CONFIG_PREFIX + ":"
    return {key.removeprefix(prefix): _decode(value) for key, value in values.items() if key.startswith(prefix)}


def _decode(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def read_secret_paths() -> frozenset[ConfigPath]:
    """The `istio-ca:` config paths whose value is a secret, leaf by leaf.

    The engine tells a program only which top-level keys hold a secret somewhere inside
    (pulumi/pulumi#13063), so `keyPem` set in plain text beside a secret `certPem` would pass. The
    stack's config file says it leaf by leaf (`secure:`); top-level keys it does not hold (set another
    way) fall back to what the engine says.
    """
    prefix = CONFIG_PREFIX + ":"
    from_engine = set(pulumi.runtime.config.get_config_secret_keys_env())
    engine_secret = {
        key
        for key in read_stack_config()
        if prefix + key in from_engine or pulumi.runtime.config.is_config_secret(prefix + key)
    }
    in_file = _stack_config_file_values()
    paths: set[ConfigPath] = {(key,) for key in engine_secret if key not in in_file}
    for key, value in in_file.items():
        paths |= _secure_paths(value, (key,))
    return frozenset(paths)


def _stack_config_file_values() -> dict[str, Any]:
    """The `istio-ca:` values of `Pulumi.<stack>.yaml` as written (secrets still `secure:`); {} without one."""
    root = pulumi.runtime.get_root_directory() or os.getcwd()
    directory = root
    try:
        with open(os.path.join(root, "Pulumi.yaml"), encoding="utf-8") as stream:
            project = yaml.safe_load(stream) or {}
        directory = os.path.join(root, project.get("stackConfigDir") or "")
        with open(os.path.join(directory, f"Pulumi.{pulumi.get_stack()}.yaml"), encoding="utf-8") as stream:
            document = yaml.safe_load(stream) or {}
    except (OSError, yaml.YAMLError):
        return {}
    prefix = CONFIG_PREFIX + ":"
    config = document.get("config") or {}
    return {key.removeprefix(prefix): value for key, value in config.items() if key.startswith(prefix)}


def _secure_paths(value: Any, path: ConfigPath) -> set[ConfigPath]:
    if isinstance(value, dict) and set(value) == {"secure"}:
        return {path}
    children: list[tuple[str | int, Any]] = []
    if isinstance(value, dict):
        children = list(value.items())
    elif isinstance(value, list):
        children = list(enumerate(value))
    return set().union(*(_secure_paths(child, (*path, key)) for key, child in children))


def read_last_outputs() -> dict[str, Any]:
    """This stack's outputs as its last run left them ({} before the first): what was issued before,
    which the program learns from nowhere else. Read before any resource, so it can decide which
    resources there are (the root generations)."""
    return _read_checkpoint("pulumi:pulumi:readStackOutputs", "name")


def read_last_resources() -> dict[str, Any]:
    """Every resource of this stack as its state last recorded it, by URN: `{type, outputs}` ({} before
    the first run). Unlike the stack outputs, a resource whose write failed keeps what it held before."""
    return _read_checkpoint("pulumi:pulumi:readStackResourceOutputs", "stackName")


def _read_checkpoint(token: str, argument: str) -> dict[str, Any]:
    this_stack = f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}"
    for attempt in range(1, CHECKPOINT_READ_ATTEMPTS):
        try:
            return _invoke_outputs(token, {argument: this_stack})
        except Exception as error:
            # During `up` the engine rewrites this very checkpoint; a read can meet it half-written.
            if "failed to load checkpoint" not in str(error):
                raise
            time.sleep(0.1 * attempt)
    return _invoke_outputs(token, {argument: this_stack})


def _invoke_outputs(token: str, args: dict[str, str]) -> dict[str, Any]:
    result = pulumi.runtime.invoke(token, args)
    return dict((result.value or {}).get("outputs") or {})
