"""The program's own API clients: one per kubeconfig and context for a run, files resolved as kubectl does."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from kubernetes import client as kube_client

from istio_ca.kube_api import Unreachable, api_client
from tests.test_kubeconfig import kubeconfig


def two_contexts(path: Path) -> Path:
    kubeconfig(path, "ca.crt")
    (path.parent / "ca.crt").write_text("not read until a request")
    document = yaml.safe_load(path.read_text())
    document["users"][0]["user"] = {"token": "t"}
    document["clusters"].append({"name": "d", "cluster": {"server": "https://127.0.0.1:1"}})
    document["contexts"].append({"name": "y", "context": {"cluster": "d", "user": "u"}})
    path.write_text(yaml.safe_dump(document))
    return path


def test_a_run_reaches_each_kubeconfig_and_context_through_one_client(tmp_path: Path) -> None:
    path = str(two_contexts(tmp_path / "one" / "config"))
    with api_client(path, None) as first, api_client(path, None) as again, api_client(path, "y") as other:
        assert first is again  # the first read and the takeover guard share it
        assert other is not first
        assert (first.configuration.host, other.configuration.host) == ("https://c:6443", "https://127.0.0.1:1")


def test_a_relative_certificate_authority_resolves_from_the_kubeconfig_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = two_contexts(tmp_path / "kube" / "config")
    monkeypatch.chdir(tmp_path)
    with api_client(str(path), None) as api:
        assert api.configuration.ssl_ca_cert == str(tmp_path / "kube" / "ca.crt")


def test_a_server_that_does_not_answer_is_one_line(tmp_path: Path) -> None:
    path = str(two_contexts(tmp_path / "down" / "config"))
    refusal = r"^the API server https://127.0.0.1:1 did not answer \(.*\)$"
    with pytest.raises(Unreachable, match=refusal), api_client(path, "y") as api:
        kube_client.VersionApi(api).get_code(_request_timeout=2)
