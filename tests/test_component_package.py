"""The component package (package/): its schema, inferred from the components' types, lists every component
with each input and output typed and documented, and the mesh's keys are exactly the README's config table."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import mypy.api
import pytest

import istio_ca
from istio_ca.component_package import PACKAGE_NAME, schema_provider
from tests.program import PROJECT_DIR

PACKAGE = PACKAGE_NAME
COMPONENT_NAMES = ["MeshCA", "MeshPKI", "MeshMember", "RootCA", "ClusterCA", "ExistingRoot", "WorkloadCerts"]


def schema() -> dict[str, Any]:
    """The schema the package serves: what `pulumi package get-schema package/` prints (tests/e2e checks that)."""
    provider = schema_provider()
    assert provider.schema is not None
    document: dict[str, Any] = json.loads(provider.schema)
    return document


def mesh_keys(document: dict[str, Any]) -> set[str]:
    """Every key of the mesh, as the README writes it (`root.days`, `clusters[].kubeconfig`). A type's keys are
    listed where it is nearest the top: a cluster's `intermediate` is one key, since the README says it takes
    "any of the intermediate keys above"."""
    types = document["types"]
    keys: set[str] = set()
    start = f"{PACKAGE}:index:MeshConfig"
    claimed, queue = {start}, [(start, "")]
    for type_token, prefix in queue:  # breadth first: the queue grows as the walk goes
        for name, spec in types[type_token]["properties"].items():
            path = f"{prefix}{name}"
            ref = spec.get("$ref") or spec.get("items", {}).get("$ref")
            token = ref.removeprefix("#/types/") if ref else None
            if token is not None and token not in claimed and types[token].get("properties"):
                claimed.add(token)
                queue.append((token, f"{path}[]." if spec.get("type") == "array" else f"{path}."))
            else:
                keys.add(path)
    return keys


def readme_table_keys() -> set[str]:
    """The config keys in the second column of the README's Configuration table."""
    readme = (PROJECT_DIR / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("|--")]
    keys: set[str] = set()
    for row in rows[1:]:
        column = row.split(" | ")[1]
        keys |= {
            key for key in re.findall(r"`([^`]+)`", column) if re.fullmatch(r"[a-zA-Z]\w*(\[\])?(\.[a-zA-Z]\w*)*", key)
        }
    return keys


def test_the_schema_serves_every_component_under_the_package_name() -> None:
    document = schema()
    assert document["name"] == PACKAGE
    assert document["version"] == istio_ca.__version__
    assert sorted(document["resources"]) == sorted(f"{PACKAGE}:index:{name}" for name in COMPONENT_NAMES)
    for resource in document["resources"].values():
        assert resource["isComponent"] is True


def test_every_input_and_output_is_typed_and_documented() -> None:
    document = schema()
    properties = [
        (f"{token}.{name}", spec)
        for token, resource in document["resources"].items()
        for kind in ("inputProperties", "properties")
        for name, spec in resource.get(kind, {}).items()
    ] + [
        (f"{token}.{name}", spec)
        for token, kind in document["types"].items()
        for name, spec in kind.get("properties", {}).items()
    ]
    assert len(properties) > 100
    for where, spec in properties:
        assert spec.get("description", "").strip(), f"{where} has no description"
        assert "type" in spec or "$ref" in spec, f"{where} has no type"
    # The mesh is typed through and through: no key of it is `Any`.
    mesh_types = [token for token in document["types"] if token.endswith("Config")]
    assert len(mesh_types) == 7
    for token in mesh_types:
        assert "pulumi.json#/Any" not in json.dumps(document["types"][token]), token


def test_the_mesh_keys_are_exactly_the_readme_config_table() -> None:
    schema_keys, readme_keys = mesh_keys(schema()), readme_table_keys()
    assert schema_keys - readme_keys == set(), "keys the README's config table does not list"
    # The table also names values (`RSA`, `switch`), the Secret `cacerts`, and objects whose keys it lists.
    values = {"RSA", "ECDSA", "trust-both", "switch", "retire", "cacerts"}
    objects = {key.split(".")[0].removesuffix("[]") for key in schema_keys}
    assert readme_keys - schema_keys - values - objects == set(), "keys in the README's table the schema lacks"


def test_closed_sets_of_values_are_enums() -> None:
    types = schema()["types"]
    assert [member["value"] for member in types[f"{PACKAGE}:index:KeyAlgorithm"]["enum"]] == ["RSA", "ECDSA"]
    phases = [member["value"] for member in types[f"{PACKAGE}:index:RootRotationPhase"]["enum"]]
    assert phases == ["trust-both", "switch", "retire"]
    root = types[f"{PACKAGE}:index:RootConfig"]["properties"]
    assert root["keyAlgorithm"]["$ref"] == f"#/types/{PACKAGE}:index:KeyAlgorithm"


def test_a_host_cluster_takes_the_kubernetes_provider_a_program_declares() -> None:
    document = schema()
    provider = document["types"][f"{PACKAGE}:index:HostCluster"]["properties"]["provider"]
    assert provider["$ref"].startswith("/kubernetes/v4.25.0/schema.json#/resources/pulumi:providers:kubernetes")
    assert "kubernetes" in {dependency["name"] for dependency in document.get("dependencies", [])} or any(
        "kubernetes" in str(value) for value in document.get("language", {}).values()
    )
    assert document["resources"][f"{PACKAGE}:index:MeshCA"]["inputProperties"]["mesh"]["$ref"].endswith("MeshConfig")


def test_mypy_refuses_a_mesh_with_a_wrong_key_or_type(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same TypedDicts give a Python caller the schema's checks before anything runs."""
    caller = tmp_path / "caller.py"
    caller.write_text(
        "from istio_ca import KeyAlgorithm, MeshCA, MeshCAArgs, RootConfig\n"
        'ecdsa: RootConfig = {"keyAlgorithm": KeyAlgorithm.ECDSA}\n'
        'MeshCA("good", MeshCAArgs(mesh={"clusters": [{"name": "east"}], "root": ecdsa}))\n'
        'MeshCA("key", MeshCAArgs(mesh={"clusterz": [{"name": "east"}]}))\n'
        'MeshCA("days", MeshCAArgs(mesh={"clusters": [{"name": "east"}], "root": {"days": "ten"}}))\n'
    )
    monkeypatch.setenv("MYPYPATH", str(PROJECT_DIR))  # istio_ca, as the checkout's link to components/
    config = str(PROJECT_DIR / "pyproject.toml")
    stdout, _, status = mypy.api.run(
        ["--config-file", config, "--cache-dir", str(tmp_path / "cache"), "--no-error-summary", str(caller)]
    )
    errors = [line.split(": error: ")[0].rsplit(":", 1)[1] for line in stdout.splitlines() if ": error: " in line]
    assert status == 1 and errors == ["4", "4", "5"], stdout  # line 4: clusterz unknown, clusters missing
    assert '"clusterz"' in stdout and '"days"' in stdout
