"""What one stack of a split layout reads of another: a missing stack means "run it first", anything
else that is not the record istio-ca exports is refused with one line naming the stack and the output."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pulumi
import pytest

from istio_ca.stack_exchange import ExchangeError, read_exchange, read_exchanges, reads_at_once, text_at
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


def test_the_stacks_are_read_at_once_up_to_the_engines_bound_and_their_records_kept_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recorder = use_mocks()
    stacks = [f"organization/mesh-cluster/c{index}" for index in range(6)]
    for index, stack in enumerate(stacks):
        recorder.other_stacks[stack] = {"istioCaMember": {"cluster": f"c{index}"}}
    monkeypatch.setenv("GOMAXPROCS", "2")  # the engine's pool: 4 connections, so 2 reads at once
    lock, running, most = threading.Lock(), [0], [0]
    answer = recorder.call

    def call(args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return answer(args)

    monkeypatch.setattr(recorder, "call", call)
    found: list[list[dict[str, Any] | None]] = []

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def program() -> None:
        found.append(read_exchanges(stacks, "istioCaMember"))

    program()
    assert found == [[{"cluster": f"c{index}"} for index in range(6)]]
    assert most[0] == 2


@pytest.mark.parametrize(
    ("gomaxprocs", "cpu_max", "reads"),
    [
        ("3", None, 4),
        (None, "50000 100000", 1),  # half a CPU: Go runs one P, the pool has 2 connections
        (None, "max 100000", None),  # no quota: every CPU this process may use
        ("x", "max 100000", None),  # not a number: Go ignores it too
    ],
    ids=["GOMAXPROCS", "quota", "no-quota", "bad-variable"],
)
def test_reads_at_once_leave_the_engines_postgres_pool_a_connection(
    tmp_path: Path, gomaxprocs: str | None, cpu_max: str, reads: int | None
) -> None:
    (tmp_path / "cpu.max").write_text(f"{cpu_max}\n")
    environ = {"GOMAXPROCS": gomaxprocs} if gomaxprocs else {}
    expected = reads if reads is not None else max(1, 2 * len(os.sched_getaffinity(0)) - 2)
    assert reads_at_once(environ, tmp_path) == expected


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
