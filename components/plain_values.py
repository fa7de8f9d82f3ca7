"""A component's description as the engine hands it over -> plain values, before any check reads them.

Served from the component package (package/), a component gets its inputs as the engine sends them:
integers as whole-number floats, enum members, and `Output`s nested wherever a value is a secret or
comes from another resource, even where the schema says plain. MeshCA, MeshPKI and MeshMember check the
whole description before they register anything, so every value must be known then; this module turns
it into the plain dicts, lists, strings, numbers and booleans a Python caller passes.
"""

import json
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any

import pulumi
from pulumi.runtime import rpc

from istio_ca.config_schema import ConfigPath, dotted
from istio_ca.validation import ConfigError

SECRET_PATHS: frozenset[ConfigPath] = frozenset({("existingRoot", "keyPem")})
"""Where a secret may arrive: the one value istio-ca keeps secret. Any other value ends up in a certificate,
an output or a file name, so a secret there would be published in plain text."""


def plain_mesh(mesh: Any, key: str = "mesh") -> dict[str, Any]:
    """The mesh with every value plain; a secret only where SECRET_PATHS allow one (it stays secret: the
    components wrap `existingRoot.keyPem` as a secret wherever it goes)."""
    value = plain(mesh, key)
    if not isinstance(value, dict):
        raise ConfigError(f"{key} must be an object with the keys of the README's config table")
    return value


def plain(value: Any, key: str) -> Any:
    """`value` with each known Output and secret replaced by its value, enum members by theirs and whole-number
    floats by ints; an unknown value, or a secret outside SECRET_PATHS, is refused, naming `key` and its path."""
    return _plain(value, (), key)


def _plain(value: Any, path: ConfigPath, key: str) -> Any:
    if isinstance(value, pulumi.Output):
        inner, secret = _known(value, path, key)
        _refuse_a_published_secret(secret, path, key)
        return _plain(inner, path, key)
    if rpc.is_rpc_secret(value):
        _refuse_a_published_secret(True, path, key)
        return _plain(rpc.unwrap_rpc_secret(value), path, key)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {name: _plain(item, (*path, name), key) for name, item in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_plain(item, (*path, index), key) for index, item in enumerate(value)]
    return value


def _refuse_a_published_secret(secret: bool, path: ConfigPath, key: str) -> None:
    """A secret where istio-ca would publish it is refused (never echoing the value)."""
    if secret and path not in SECRET_PATHS:
        raise ConfigError(
            f"{dotted((key, *path))} is a secret, but istio-ca publishes it (in a certificate, an output or a file "
            "name): pass it in plain; only existingRoot.keyPem may be a secret"
        )


def _known(output: pulumi.Output[Any], path: ConfigPath, key: str) -> tuple[Any, bool]:
    """An Output's value and whether it is secret, when the engine sent it resolved (a component's inputs
    arrive that way); else a clear refusal."""
    # The SDK has no synchronous read; an input's data is a future the provider server already resolved.
    if not _resolved(output):
        raise ConfigError(
            f"{dotted((key, *path))} is not known yet (it comes from a resource not created until `up`): the "
            "mesh is checked whole before anything is created, so give values known at preview"
        )
    data = output._data.result()
    return data.value, data.is_secret


def _resolved(output: pulumi.Output[Any]) -> bool:
    data = output._data
    return data.done() and not data.cancelled() and data.exception() is None and data.result().is_known


def as_input(value: Any, key: str, secret: bool = False) -> Any:
    """A served input the component passes on rather than reads (a host cluster's provider and kubeconfig): a
    known Output, or a secret in the old wire form, becomes its value, each value inside a secret one becoming
    a secret Output; resources pass as they are. A kubeconfig that arrives as an object becomes its JSON text:
    the YAML language host reads a kubeconfig set as JSON config as an object."""
    if isinstance(value, pulumi.Output):
        if not _resolved(value):
            return value  # unknown at preview (a cluster the stack creates): the component takes it as it is
        inner, is_secret = _known(value, (), key)
        return as_input(inner, key, secret or is_secret)
    if rpc.is_rpc_secret(value):
        return as_input(rpc.unwrap_rpc_secret(value), key, True)
    if isinstance(value, Mapping) and key.endswith(".kubeconfig"):
        value = json.dumps(plain(value, key))
    elif isinstance(value, Mapping):
        return {name: as_input(item, f"{key}.{name}", secret) for name, item in value.items()}
    if secret and isinstance(value, str):
        return pulumi.Output.secret(value)
    return value
