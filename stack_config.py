"""The program's config: what the engine passed as `istio-ca:` config, which of it is secret (leaf by
leaf), and the rules that hold for stack config only (a private key in it must be a secret).

The only module that reads Pulumi's runtime config; the library (`istio_ca`) takes plain values.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any

import pulumi
import yaml

from istio_ca.config_schema import ConfigPath, dotted
from istio_ca.validation import ConfigError

CONFIG_PREFIX = "istio-ca"
"""The Pulumi config namespace: keys are `istio-ca:<key>`."""
PRIVATE_KEY_MARKER = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")


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


def refuse_plain_private_keys(raw: Mapping[str, Any], secret_paths: frozenset[ConfigPath]) -> None:
    """A private key anywhere in config must be a secret, or it sits in plain text in `Pulumi.<stack>.yaml`;
    the adopted root's key (`existingRoot.keyPem`) must be one whatever it holds."""
    for path, value in _leaves(raw, ()):
        if isinstance(value, str) and PRIVATE_KEY_MARKER.search(value) and not _is_secret(path, secret_paths):
            raise ConfigError(
                f"{CONFIG_PREFIX}:{dotted(path)} holds a private key in plain text; remove it and set it with "
                f"`pulumi config set --secret --path '{CONFIG_PREFIX}:{dotted(path)}' < key.pem`"
            )
    existing = raw.get("existingRoot")
    if (
        isinstance(existing, Mapping)
        and "keyPem" in existing
        and not _is_secret(("existingRoot", "keyPem"), secret_paths)
    ):
        key = f"{CONFIG_PREFIX}:existingRoot.keyPem"
        raise ConfigError(
            f"{key} must be a secret: set it with `pulumi config set --secret --path '{key}' < root-key.pem`"
        )


def _leaves(value: Any, path: ConfigPath) -> list[tuple[ConfigPath, Any]]:
    if isinstance(value, Mapping):
        return [leaf for key, child in value.items() for leaf in _leaves(child, (*path, key))]
    if isinstance(value, list):
        return [leaf for index, child in enumerate(value) for leaf in _leaves(child, (*path, index))]
    return [(path, value)]


def _is_secret(path: ConfigPath, secret_paths: frozenset[ConfigPath]) -> bool:
    """Whether the value at `path`, or a value holding it, was set as a secret."""
    return any(path[: len(secret)] == secret for secret in secret_paths)
