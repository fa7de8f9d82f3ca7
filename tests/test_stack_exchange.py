"""What one stack of a split layout reads of another: a missing stack means "run it first", anything
else that is not the record istio-ca exports is refused with one line naming the stack and the output."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest

from istio_ca.stack_exchange import ExchangeError, read_exchange, text_at
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
