"""A served component's inputs, as the engine hands them over (the provider server's own deserialization),
become the plain values a Python caller passes: whole-number floats, enum members and nested Outputs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from typing import Any, TypeVar

import pulumi
import pytest
from google.protobuf import struct_pb2  # type: ignore[import-untyped]
from pulumi.provider.server import ProviderServicer
from pulumi.runtime import rpc

from istio_ca.config import parse_settings
from istio_ca.config_schema import KeyAlgorithm
from istio_ca.plain_values import as_input, plain_mesh
from istio_ca.validation import ConfigError
from tests.roots import make_root

SECRET = {rpc._special_sig_key: rpc._special_secret_sig}
T = TypeVar("T")
OUTPUT = {rpc._special_sig_key: rpc._special_output_value_sig}


def secret(value: Any) -> dict[str, Any]:
    return {**SECRET, "value": value}


def output(value: Any = None, *, known: bool = True, is_secret: bool = False) -> dict[str, Any]:
    """An output value as the engine sends one nested in a component's inputs."""
    sent: dict[str, Any] = {**OUTPUT, "dependencies": ["urn:pulumi:dev::p::tls:index/privateKey:PrivateKey::k"]}
    if known:
        sent["value"] = value
    if is_secret:
        sent["secret"] = True
    return sent


def in_a_loop(work: Coroutine[Any, Any, T]) -> T:
    """Run `work` in a fresh event loop left current: asyncio.run would leave none for the Pulumi mocks' tests."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    return loop.run_until_complete(work)


def received(mesh: dict[str, Any]) -> dict[str, Any]:
    """`mesh` sent over the wire and deserialized as the provider server does for Construct, then made plain."""

    async def run() -> dict[str, Any]:
        struct = struct_pb2.Struct()
        struct.update({"mesh": mesh})
        inputs = await ProviderServicer._construct_inputs(struct, {})
        return plain_mesh(inputs["mesh"])

    return in_a_loop(run())


def test_whole_number_floats_arrive_as_integers_and_pass_the_checks() -> None:
    # protobuf's Struct holds every number as a double: 3650 arrives as 3650.0.
    mesh = received({"root": {"days": 3650, "keySize": 4096}, "clusters": [{"name": "east", "keyGeneration": 2}]})
    assert mesh == {"root": {"days": 3650, "keySize": 4096}, "clusters": [{"name": "east", "keyGeneration": 2}]}
    assert type(mesh["root"]["days"]) is int
    settings = parse_settings(mesh, frozenset({"east"}))
    assert settings.root.validity_days == 3650 and settings.clusters[0].key_generation == 2


def test_a_fraction_is_still_refused_by_name() -> None:
    mesh = received({"root": {"days": 3650.5}, "clusters": [{"name": "east"}]})
    with pytest.raises(ConfigError, match=r"root.days must be a whole number of days greater than 0, got 3650.5"):
        parse_settings(mesh, frozenset({"east"}))


def test_enum_members_arrive_as_their_values() -> None:
    assert plain_mesh({"clusters": [], "root": {"keyAlgorithm": KeyAlgorithm.ECDSA}})["root"] == {
        "keyAlgorithm": "ECDSA"
    }
    assert type(plain_mesh({"root": {"keyAlgorithm": KeyAlgorithm.RSA}})["root"]["keyAlgorithm"]) is str


def test_nested_outputs_arrive_as_their_values() -> None:
    mesh = received({"clusters": [output({"name": "east", "kubeconfig": output("/k/east.yaml")})]})
    assert mesh == {"clusters": [{"name": "east", "kubeconfig": "/k/east.yaml"}]}


def test_the_root_key_may_be_a_secret_and_nothing_else_may() -> None:
    cert, key = make_root(ecdsa=True)  # made here: no key is kept in the repository
    mesh = received(
        {"clusters": [{"name": "east"}], "existingRoot": {"certPem": cert, "keyPem": output(key, is_secret=True)}}
    )
    assert mesh["existingRoot"] == {"certPem": cert, "keyPem": key}
    with pytest.raises(ConfigError) as error:
        received({"clusters": [{"name": "east"}], "root": {"org": output("Acme", is_secret=True)}})
    assert str(error.value).startswith("mesh.root.org is a secret, but istio-ca publishes it")
    assert "Acme" not in str(error.value)


def test_a_secret_in_the_old_wire_form_makes_the_whole_mesh_secret_and_is_refused() -> None:
    # Without output values the server can only mark the whole input secret: where the secret was is lost.
    with pytest.raises(ConfigError) as error:
        received({"clusters": [{"name": "east"}], "existingRoot": {"certPem": "c", "keyPem": secret("k")}})
    assert str(error.value).startswith("mesh is a secret, but istio-ca publishes it")


def test_a_value_unknown_at_preview_is_refused_by_its_path() -> None:
    with pytest.raises(ConfigError) as error:
        received({"clusters": [{"name": "east", "kubeconfig": output(known=False)}]})
    assert str(error.value).startswith("mesh.clusters[0].kubeconfig is not known yet")


def test_a_mesh_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(ConfigError, match="mesh must be an object"):
        plain_mesh(["east"])


def test_a_host_clusters_secret_kubeconfig_is_passed_on_as_a_secret_output() -> None:
    async def run() -> tuple[Any, bool]:
        struct = struct_pb2.Struct()
        struct.update({"hostClusters": {"east": {"kubeconfig": secret("apiVersion: v1")}}})
        inputs = await ProviderServicer._construct_inputs(struct, {})
        kubeconfig = as_input(inputs["hostClusters"], "hostClusters")["east"]["kubeconfig"]
        assert isinstance(kubeconfig, pulumi.Output)
        return await kubeconfig.future(), await kubeconfig.is_secret()

    assert in_a_loop(run()) == ("apiVersion: v1", True)


def test_a_kubeconfig_that_arrives_as_an_object_is_passed_on_as_its_json_text() -> None:
    """pulumi-yaml reads a JSON config value as an object, even for a config of type string."""
    document = {"apiVersion": "v1", "clusters": [{"name": "east"}], "current-context": "east"}

    async def run() -> tuple[Any, bool]:
        struct = struct_pb2.Struct()
        struct.update({"hostClusters": {"east": {"kubeconfig": secret(document)}}})
        inputs = await ProviderServicer._construct_inputs(struct, {})
        kubeconfig = as_input(inputs["hostClusters"], "hostClusters")["east"]["kubeconfig"]
        return await kubeconfig.future(), await kubeconfig.is_secret()

    text, is_secret = in_a_loop(run())
    assert is_secret and json.loads(text) == document
