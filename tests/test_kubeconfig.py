"""Kubeconfig file references resolve from the kubeconfig's directory, as kubectl resolves them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from istio_ca.kubeconfig import for_the_provider, kubeconfig_server


def kubeconfig(path: Path, certificate_authority: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "clusters": [
            {"name": "c", "cluster": {"server": "https://c:6443", "certificate-authority": certificate_authority}}
        ],
        "users": [{"name": "u", "user": {"client-certificate": "certs/client.crt", "client-key": "/abs/client.key"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    path.write_text(yaml.safe_dump(document))
    return path


def test_relative_paths_resolve_from_the_kubeconfig_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = kubeconfig(tmp_path / "kube" / "config", "ca.crt")
    monkeypatch.chdir(tmp_path)
    resolved = yaml.safe_load(for_the_provider(str(path)))
    assert resolved["clusters"][0]["cluster"]["certificate-authority"] == str(tmp_path / "kube" / "ca.crt")
    user = resolved["users"][0]["user"]
    assert user == {
        "client-certificate": str(tmp_path / "kube" / "certs" / "client.crt"),
        "client-key": "/abs/client.key",
    }


def test_a_kubeconfig_without_relative_paths_or_in_the_working_directory_is_passed_as_a_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    absolute = kubeconfig(tmp_path / "abs" / "config", "/etc/ca.crt")
    document = yaml.safe_load(absolute.read_text())
    document["users"][0]["user"] = {"token": "t"}
    absolute.write_text(yaml.safe_dump(document))
    assert for_the_provider(str(absolute)) == str(absolute)
    here = kubeconfig(tmp_path / "here" / "config", "ca.crt")
    monkeypatch.chdir(here.parent)
    assert for_the_provider(str(here)) == str(here)  # stacks that worked before keep their input


def test_the_server_of_a_context() -> None:
    document = yaml.safe_load(
        "clusters: [{name: c, cluster: {server: 'https://c:6443'}}]\ncontexts: [{name: x, context: {cluster: c}}]"
    )
    assert kubeconfig_server(document, "x") == "https://c:6443"
    assert kubeconfig_server(document, "y") is None
