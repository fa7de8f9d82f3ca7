"""Private keys where they do not belong: in a stack output, or in an input outside the fields made to
hold one. Found by content, in any encoding istio_ca.private_keys reads (pulumi-policy hands values over
without their secret markers, so a secret is judged like any other value); named by path, never shown.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Mapping
from typing import Any

from cacerts_guard.certificates import Findings, StackFindings
from cacerts_guard.resources import STACK, Resource, Stack
from istio_ca.private_keys import holds_private_key

KEY_BEARING_FIELDS = (
    "tls:index/selfSignedCert:SelfSignedCert:privateKeyPem",
    "tls:index/locallySignedCert:LocallySignedCert:caPrivateKeyPem",
    "tls:index/certRequest:CertRequest:privateKeyPem",
    "kubernetes:core/v1:Secret:data",
    "kubernetes:core/v1:Secret:stringData",
    "pulumi:providers:kubernetes:kubeconfig",
    "istio-ca:index:MeshCA:mesh.existingRoot.keyPem",
    "istio-ca:index:MeshCA:hostClusters.*.kubeconfig",
)
"""`<type>:<path>` of the inputs made to hold a private key (a kubeconfig may hold a client key); `*` is any
one step of the path. The pack's `keyBearingFields` config adds to them."""


def leaves(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string in `value` with its dotted path."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from leaves(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from leaves(item, f"{path}.{index}" if path else str(index))


def key_bearing(resource_type: str, path: str, fields: list[str]) -> bool:
    """Whether `path` is, or lies within, one of the key-bearing fields of `resource_type`."""
    steps = path.split(".")
    for field in fields:
        owner, _, pattern = field.rpartition(":")
        wanted = pattern.split(".")
        if (
            owner == resource_type
            and len(steps) >= len(wanted)
            and all(fnmatch.fnmatchcase(step, want) for step, want in zip(steps, wanted, strict=False))
        ):
            return True
    return False


def key_in_input(resource: Resource, settings: Mapping[str, Any]) -> Findings:
    fields = [*KEY_BEARING_FIELDS, *settings.get("keyBearingFields", [])]
    return [
        f"input {path} holds a private key"
        for path, text in leaves(resource.props)
        if not key_bearing(resource.type, path, fields) and holds_private_key(text)
    ]


def key_in_output(stack: Stack, settings: Mapping[str, Any]) -> StackFindings:
    allowed = set(settings.get("allowedOutputs", []))
    return [
        (resource.urn, f"stack output {path} holds a private key")
        for resource in stack.resources
        if resource.type == STACK
        for path, text in leaves(resource.props)
        if path.split(".")[0] not in allowed and holds_private_key(text)
    ]
