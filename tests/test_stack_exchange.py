"""What one stack of a split layout reads of another: a missing stack means "run it first", anything
else that is not the record istio-ca exports is refused with one line naming the stack and the output."""

from __future__ import annotations

import threading
from typing import Any

import pulumi
import pytest

from istio_ca.stack_exchange import ExchangeError, read_exchange, read_exchanges, text_at
from tests.program import use_mocks

PKI = "organization/mesh-pki/prod"


def read(outputs: dict[str, Any]) -> dict[str, Any] | None:
    recorder = use_mocks()
    recorder.other_stacks[PKI] = outputs
    found: list[dict[str, Any] | None] = []

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def program() -> None:
        found.append(read_exchange(PKI, "istioCaPki"))

    program()
    return found[0]


def test_a_stack_not_run_yet_is_nothing_to_read() -> None:
    assert read({}) is None  # made with `pulumi stack init`, never run


def test_the_exported_record_is_read() -> None:
    assert read({"istioCaPki": {"rootCertPem": "x"}, "other": 1}) == {"rootCertPem": "x"}


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        ({"rootCertPem": "x"}, f"stack {PKI} exports no output istioCaPki"),
        ({"istioCaPki": {}}, f"stack {PKI}: output istioCaPki is {{}}, not the record istio-ca exports there"),
        ({"istioCaPki": "text"}, f"stack {PKI}: output istioCaPki is str, not the record"),
    ],
    ids=["missing", "undecryptable", "text"],
)
def test_anything_else_is_refused_naming_the_stack_and_the_output(outputs: dict[str, Any], message: str) -> None:
    with pytest.raises(ExchangeError) as error:
        read(outputs)
    assert str(error.value).startswith(message)


def test_a_value_inside_the_record_must_be_text() -> None:
    record: dict[str, Any] = {"clusters": {"east": {"certPem": {}}}}
    with pytest.raises(ExchangeError, match=r"^here: output clusters.east.certPem is \{\}, not the text"):
        text_at(record, ("clusters", "east", "certPem"), "here")
    with pytest.raises(ExchangeError, match=r"output clusters.west.certPem is None"):
        text_at(record, ("clusters", "west", "certPem"), "here")
    assert text_at({"a": {"b": "pem"}}, ("a", "b"), "here") == "pem"


def test_the_stacks_are_read_at_once_and_their_records_kept_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = use_mocks()
    stacks = [f"organization/mesh-cluster/c{index}" for index in range(3)]
    for index, stack in enumerate(stacks):
        recorder.other_stacks[stack] = {"istioCaMember": {"cluster": f"c{index}"}}
    # Each read waits until all three are in flight: read one after another, the first would time out.
    in_flight = threading.Barrier(len(stacks), timeout=10)
    answer = recorder.call

    def call(args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        in_flight.wait()
        return answer(args)

    monkeypatch.setattr(recorder, "call", call)
    found: list[list[dict[str, Any] | None]] = []

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def program() -> None:
        found.append(read_exchanges(stacks, "istioCaMember"))

    program()
    assert found == [[{"cluster": "c0"}, {"cluster": "c1"}, {"cluster": "c2"}]]


def test_a_stack_that_does_not_exist_is_refused_in_one_line() -> None:
    recorder = use_mocks()  # the mock answers an unknown stack as the engine does

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def program() -> None:
        read_exchange("organization/mesh-pki/nope", "istioCaPki")

    with pytest.raises(ExchangeError) as error:
        program()
    assert str(error.value) == (
        "stack organization/mesh-pki/nope does not exist: create it (`pulumi stack init`) and run it first"
    )
    assert recorder.other_stacks == {}
