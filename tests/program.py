"""Runs the istio-ca program under Pulumi's mocks and records what it registers."""

from __future__ import annotations

import asyncio
import base64
import json
import runpy
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import Mocks, rpc
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.stack import Stack

from istio_ca.mesh_ca import PROGRAM_OUTPUTS

PROJECT_DIR = Path(__file__).resolve().parent.parent
MAIN = PROJECT_DIR / "__main__.py"
FAKE_NOT_AFTER = "2036-01-01T00:00:00Z"


def fake_private_key(name: str) -> str:
    """A stand-in for a key PEM: it names its resource and carries the words leak checks look for."""
    return f"fake PRIVATE KEY of {name}\n"


def base64_values(data: dict[str, str]) -> dict[str, str]:
    """A Secret's `data` decoded."""
    return {key: base64.b64decode(value).decode() for key, value in data.items()}


def fake_cert(name: str) -> str:
    return f"-----BEGIN CERTIFICATE-----\nfake-cert-of-{name}\n-----END CERTIFICATE-----\n"


@dataclass
class Registration:
    type: str
    name: str
    inputs: dict[str, Any]
    provider: str | None
    parent: str
    """The parent's URN (empty for the stack's own children)."""
    retain_on_delete: bool


@dataclass
class Recorder(Mocks):
    """Records every registered resource; answers with recognisable fake PEMs."""

    resources: list[Registration] = field(default_factory=list)
    requests: dict[str, Any] = field(default_factory=dict)
    """The engine requests by resource name, for what MockResourceArgs leaves out."""
    last_outputs: dict[str, Any] = field(default_factory=dict)
    """The stack's outputs of its last run, as the engine's readStackOutputs gives them."""
    last_resources: dict[str, Any] = field(default_factory=dict)
    """The stack's resources as its state recorded them, by URN, as readStackResourceOutputs gives them."""
    other_stacks: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Other stacks' outputs by `org/project/stack`, as readStackOutputs gives them."""
    component_outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    """What each component passed to register_outputs, by name, secrets still marked."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        request = self.requests[args.name]
        self.resources.append(
            # A read (`Secret.get`) has no retainOnDelete.
            Registration(
                args.typ,
                args.name,
                dict(args.inputs),
                args.provider,
                request.parent,
                getattr(request, "retainOnDelete", False),
            )
        )
        state = dict(args.inputs)
        if args.typ == "tls:index/privateKey:PrivateKey":
            state["privateKeyPem"] = fake_private_key(args.name)
        elif args.typ in ("tls:index/selfSignedCert:SelfSignedCert", "tls:index/locallySignedCert:LocallySignedCert"):
            state["certPem"] = fake_cert(args.name)
            state["validityEndTime"] = FAKE_NOT_AFTER
        elif args.typ == "tls:index/certRequest:CertRequest":
            state["certRequestPem"] = f"csr-of-{args.name}"
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        if args.token == "pulumi:pulumi:readStackOutputs":
            stack = args.args["name"]
            if stack == "organization/istio-ca/unit":  # the stack reading its own last outputs
                return {"name": stack, "outputs": self.last_outputs}, []
            if stack not in self.other_stacks:
                # As the engine answers: a failed invoke, which the program may catch (tests/e2e/test_invoke_errors.py).
                return {}, [("name", f'unknown stack "{stack}"')]
            return {"name": stack, "outputs": self.other_stacks[stack]}, []
        if args.token == "pulumi:pulumi:readStackResourceOutputs":
            return {"name": args.args["stackName"], "outputs": self.last_resources}, []
        if args.token == "pulumi:pulumi:getResource":  # a resource registered in this run, by URN
            name = args.args["urn"].rsplit("::", 1)[-1]
            (registered,) = [r for r in self.resources if r.name == name]
            return {"urn": args.args["urn"], "id": f"{name}-id", "state": registered.inputs}, []
        return {}, []

    def of_type(self, type_: str) -> list[Registration]:
        return [r for r in self.resources if r.type == type_]

    def named(self, name: str) -> Registration:
        (match,) = [r for r in self.resources if r.name == name]
        return match


@dataclass
class ProgramRun:
    recorder: Recorder
    outputs: dict[str, Any]
    """Stack outputs, resolved, each as (value, is_secret)."""
    namespace: dict[str, Any]
    """The program's module globals (root, clusters, ...)."""


class RecordingMonitor(MockMonitor):
    """Keeps each registration request, since MockResourceArgs has no parent or options."""

    mocks: Recorder

    def RegisterResource(self, request: Any) -> Any:
        self.mocks.requests[request.name] = request
        return super().RegisterResource(request)  # type: ignore[no-untyped-call]

    def ReadResource(self, request: Any) -> Any:
        self.mocks.requests[request.name] = request
        return super().ReadResource(request)  # type: ignore[no-untyped-call]

    def RegisterResourceOutputs(self, request: Any) -> Any:
        if not request.urn.split("::")[2].endswith("pulumi:pulumi:Stack"):
            outputs = rpc.deserialize_properties(request.outputs, keep_unknowns=True)
            self.mocks.component_outputs[request.urn.split("::")[-1]] = outputs
        return super().RegisterResourceOutputs(request)  # type: ignore[no-untyped-call]


def use_mocks(preview: bool = False) -> Recorder:
    """Install a fresh Recorder as Pulumi's engine for the next program."""
    recorder = Recorder()
    pulumi.runtime.settings.set_root_resource(None)  # type: ignore[arg-type]
    pulumi.runtime.set_mocks(
        recorder,
        project="istio-ca",
        stack="unit",
        preview=preview,
        monitor=RecordingMonitor(recorder),
        organization="organization",  # the file backend's
    )
    return recorder


def run_program(
    config: dict[str, Any],
    preview: bool = False,
    secret_keys: Sequence[str] = (),
    last_outputs: dict[str, Any] | None = None,
    last_resources: dict[str, Any] | None = None,
    program_outputs: dict[str, Any] | None = None,
) -> ProgramRun:
    """Run __main__.py with `istio-ca:` config under mocks (an update, or a preview); return what it did.

    `last_outputs`: what the mesh component recorded on its previous run, by the stack output names the
    program exports them under; `last_resources`: the other recorded resources; `program_outputs`: the
    stack outputs of a stack the program made before the mesh component existed."""
    recorder = use_mocks(preview)
    recorder.last_outputs = program_outputs or {}
    recorder.last_resources = {**(last_resources or {}), **mesh_record(last_outputs)}
    pulumi.runtime.set_all_config(
        {f"istio-ca:{key}": json.dumps(value) for key, value in config.items()},
        secret_keys=[f"istio-ca:{key}" for key in secret_keys],
    )
    namespace: dict[str, Any] = {}
    outputs: dict[str, Any] = {}

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def program() -> pulumi.Output[Any]:
        namespace.update(runpy.run_path(str(MAIN), run_name="__main__"))
        stack = pulumi.runtime.settings.get_root_resource()
        assert isinstance(stack, Stack)

        async def resolve_outputs() -> None:
            for name, value in stack.outputs.items():
                output = pulumi.Output.from_input(value)
                outputs[name] = (await output.future(), await output.is_secret())

        return pulumi.Output.from_input(asyncio.ensure_future(resolve_outputs()))

    handler = signal.getsignal(signal.SIGINT)  # the program installs its own; pytest keeps Ctrl-C
    try:
        program()
    finally:
        signal.signal(signal.SIGINT, handler)
    return ProgramRun(recorder=recorder, outputs=outputs, namespace=namespace)


MESH_URN = "urn:pulumi:unit::istio-ca::istio-ca:index:MeshCA::mesh"
RECORDED_AS = {name: field for field, name in PROGRAM_OUTPUTS.items()}
"""The program's stack outputs -> the mesh component's outputs they come from."""


def mesh_record(outputs: dict[str, Any] | None) -> dict[str, Any]:
    """The program's mesh component as a previous run recorded it, with these outputs; {} for none."""
    if outputs is None:
        return {}
    return {
        MESH_URN: {
            "type": "istio-ca:index:MeshCA",
            "outputs": {RECORDED_AS[k]: v for k, v in outputs.items() if k in RECORDED_AS},
        }
    }


SECRET_SIGNATURE = "4dabf18193072939515e22adb298388d"


def unwrap_secret(value: Any) -> tuple[Any, bool]:
    """Split a serialized input into its value and whether it was marked secret."""
    if isinstance(value, dict) and value.get(SECRET_SIGNATURE) == "1b47061264138c4ac30d75fd1eb44270":
        return value["value"], True
    return value, False
