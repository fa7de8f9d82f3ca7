"""What this stack's last run left in its state: every resource's recorded outputs, read before any
resource is registered, so a component can decide which resources there are (the root generations)
from what it applied before, and never from a value it computes in the same run.

Components read their own records only (`component_record`, `descendants`): nothing here depends on
being the stack's own program, or on outputs a host stack exports under any name.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import pulumi
from pulumi.resource import DependencyResource

from istio_ca.plain_values import plain

CHECKPOINT_READ_ATTEMPTS = 10


def read_last_resources() -> dict[str, Any]:
    """Every resource of this stack as its state last recorded it, by URN: `{type, outputs}` ({} before
    the first run). Unlike the stack outputs, a resource whose write failed keeps what it held before."""
    return _read_checkpoint("pulumi:pulumi:readStackResourceOutputs", "stackName")


def read_last_outputs() -> dict[str, Any]:
    """This stack's outputs as its last run left them ({} before the first)."""
    return _read_checkpoint("pulumi:pulumi:readStackOutputs", "name")


def qualified_type(type_token: str, parent: pulumi.Resource | None) -> str:
    """The type part of a component's URN, as far as it can be known before registering it: its own type
    token, after its parent's when it has one (`parent-type$type`)."""
    if parent is None:
        return type_token
    if isinstance(parent, DependencyResource):
        # A served component's parent (the consumer's resource) is known by its URN alone.
        parent_type, _ = _urn_parts(plain(parent.urn, "parent"))
    else:
        parent_type = parent.pulumi_resource_type
    return type_token if parent_type == "pulumi:pulumi:Stack" else f"{parent_type}${type_token}"


def _urn_parts(urn: str) -> tuple[str, str]:
    """(qualified type, name) of a URN `urn:pulumi:<stack>::<project>::<type>::<name>`."""
    _, _, rest = urn.partition("::")
    _, _, rest = rest.partition("::")
    kind, _, name = rest.partition("::")
    return kind, name


def component_record(resources: Mapping[str, Any], type_chain: str, name: str) -> tuple[str, dict[str, Any]] | None:
    """The URN and recorded outputs of the component of `name` whose URN type ends with `type_chain`
    (qualified_type), or None before its first run."""
    for urn, resource in resources.items():
        kind, found = _urn_parts(urn)
        if found == name and (kind == type_chain or kind.endswith("$" + type_chain)):
            return urn, dict(resource.get("outputs") or {})
    return None


def descendants(resources: Mapping[str, Any], component_urn: str) -> dict[str, Any]:
    """The recorded resources beneath a component: those whose URN type extends the component's."""
    kind, _ = _urn_parts(component_urn)
    return {urn: resource for urn, resource in resources.items() if _urn_parts(urn)[0].startswith(kind + "$")}


def _read_checkpoint(token: str, argument: str) -> dict[str, Any]:
    this_stack = f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}"
    attempt = 1
    while True:
        try:
            return _invoke_outputs(token, {argument: this_stack})
        except Exception as error:
            # During `up` the engine rewrites this very checkpoint. The file backend replaces the checkpoint
            # atomically but truncates and rewrites its `.attrs` sidecar in place, and a read that meets that
            # fails with the backend's `failed to load checkpoint: ...`. The invoke's error reaches the
            # program and can be caught (tests/e2e/test_invoke_errors.py), so the read is tried again.
            if "failed to load checkpoint" in str(error) and attempt < CHECKPOINT_READ_ATTEMPTS:
                time.sleep(0.1 * attempt)
                attempt += 1
                continue
            # Any other failure (a database gone mid-run) is the backend's reason in one line, not our traceback.
            raise pulumi.RunError(f"cannot read stack {this_stack}'s last state from the backend: {error}") from None


def _invoke_outputs(token: str, args: dict[str, str]) -> dict[str, Any]:
    result = pulumi.runtime.invoke(token, args)
    return dict((result.value or {}).get("outputs") or {})
