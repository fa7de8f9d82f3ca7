"""Reading this stack's last state: a checkpoint met mid-rewrite is read again, and any other failure of the
backend ends the run with its reason in one line."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest
from pulumi.resource import DependencyResource

from istio_ca import stack_state
from istio_ca.stack_state import qualified_type
from tests.test_plain_values import in_a_loop


@pytest.fixture(autouse=True)
def this_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pulumi, "get_organization", lambda: "organization")
    monkeypatch.setattr(pulumi, "get_project", lambda: "mesh-cluster")
    monkeypatch.setattr(pulumi, "get_stack", lambda: "east")
    monkeypatch.setattr("istio_ca.stack_state.time.sleep", lambda _: None)


def backend(monkeypatch: pytest.MonkeyPatch, *answers: Exception | dict[str, Any]) -> list[dict[str, str]]:
    """The backend gives `answers`, one per read, in order; what each read asked for."""
    asked: list[dict[str, str]] = []
    pending = list(answers)

    def invoke(token: str, args: dict[str, str]) -> dict[str, Any]:
        asked.append(args)
        answer = pending.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(stack_state, "_invoke_outputs", invoke)
    return asked


def test_a_checkpoint_met_mid_rewrite_is_read_again(monkeypatch: pytest.MonkeyPatch) -> None:
    torn = Exception("failed to load checkpoint: EOF")
    asked = backend(monkeypatch, torn, torn, {"istioCaMember": {"request": "..."}})
    assert stack_state.read_last_outputs() == {"istioCaMember": {"request": "..."}}
    assert asked == [{"name": "organization/mesh-cluster/east"}] * 3


def test_a_checkpoint_torn_at_every_read_ends_the_run_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    torn = Exception("failed to load checkpoint: EOF")
    asked = backend(monkeypatch, *[torn] * stack_state.CHECKPOINT_READ_ATTEMPTS)
    with pytest.raises(pulumi.RunError, match="failed to load checkpoint: EOF"):
        stack_state.read_last_resources()
    assert len(asked) == stack_state.CHECKPOINT_READ_ATTEMPTS


def test_a_backend_gone_mid_run_is_one_line_naming_the_stack_and_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    gone = Exception("failed to ping PostgreSQL: dial tcp 127.0.0.1:5432: connect: connection refused")
    asked = backend(monkeypatch, gone)
    with pytest.raises(pulumi.RunError) as raised:
        stack_state.read_last_resources()
    message = str(raised.value)
    assert message == (
        "cannot read stack organization/mesh-cluster/east's last state from the backend: failed to ping "
        "PostgreSQL: dial tcp 127.0.0.1:5432: connect: connection refused"
    )
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    assert asked == [{"stackName": "organization/mesh-cluster/east"}]  # not retried: it is not a torn read


def test_a_served_component_finds_its_record_under_a_parent_known_by_urn_alone() -> None:
    """Served from the package, a component's parent is a DependencyResource: only its URN is known."""

    async def qualified(parent_urn: str) -> str:
        return qualified_type("istio-ca:index:MeshCA", DependencyResource(parent_urn))

    stack = in_a_loop(qualified("urn:pulumi:dev::infra::pulumi:pulumi:Stack::infra-dev"))
    assert stack == "istio-ca:index:MeshCA"
    nested = in_a_loop(qualified("urn:pulumi:dev::infra::acme:index:Platform::platform"))
    assert nested == "acme:index:Platform$istio-ca:index:MeshCA"
