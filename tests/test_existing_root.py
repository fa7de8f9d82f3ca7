"""Adopting an existing root (Makefile.k8s.mk fetch-root-ca) from config or from a cluster."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from components.config import ConfigError, parse_settings
from components.existing_root import RootError, check_root, secret_file
from tests.program import run_program, unwrap_secret
from tests.roots import make_root
from tests.test_config import write_kubeconfig

ROOT_CERT, ROOT_KEY = make_root()
OTHER_CERT, OTHER_KEY = make_root()
CLUSTERS: dict[str, Any] = {"clusters": [{"name": "cluster1"}, {"name": "cluster2"}]}
FROM_CONFIG: dict[str, Any] = {**CLUSTERS, "existingRoot": {"certPem": ROOT_CERT, "keyPem": ROOT_KEY}}
SECRET = frozenset({"existingRoot"})


def test_root_from_config_is_checked_and_kept() -> None:
    existing = parse_settings(FROM_CONFIG, SECRET).existing_root
    assert existing is not None
    assert (existing.cert_pem, existing.key_pem, existing.cluster) == (ROOT_CERT, ROOT_KEY, None)
    args = existing.args(longest_issued_days=730)
    assert args["cert_pem"] == ROOT_CERT and args["longest_issued_days"] == 730
    assert "kubeconfig" not in args


def test_root_from_a_cluster_reads_its_secret_through_its_kubeconfig(tmp_path: Path) -> None:
    kubeconfig = write_kubeconfig(tmp_path, contexts=["east"], current="east")
    config = {
        "clusters": [{"name": "east", "kubeconfig": str(kubeconfig)}],
        "existingRoot": {"fromCluster": "east"},
    }
    existing = parse_settings(config).existing_root
    assert existing is not None and existing.cluster is not None
    assert dict(existing.args(longest_issued_days=730)) == {
        "longest_issued_days": 730,
        "kubeconfig": str(kubeconfig),
        "namespace": "istio-system",
        # Never `cacerts`: the stack replaces it, and would read back its own intermediate.
        "secret_names": ["istio-ca-secret"],
    }


BAD: list[tuple[str, dict[str, Any], frozenset[str], str]] = [
    ("key not secret", FROM_CONFIG, frozenset(), "existingRoot.keyPem must be a secret"),
    (
        "not a CA",
        {**CLUSTERS, "existingRoot": {"certPem": make_root(ca=False)[0], "keyPem": ROOT_KEY}},
        SECRET,
        "is not a CA",
    ),
    (
        "key mismatch",
        {**CLUSTERS, "existingRoot": {"certPem": ROOT_CERT, "keyPem": OTHER_KEY}},
        SECRET,
        "does not match",
    ),
    (
        "not PEM",
        {**CLUSTERS, "existingRoot": {"certPem": "hello", "keyPem": ROOT_KEY}},
        SECRET,
        "not a PEM certificate",
    ),
    (
        "key not PEM",
        {**CLUSTERS, "existingRoot": {"certPem": ROOT_CERT, "keyPem": "x"}},
        SECRET,
        "not an unencrypted PEM",
    ),
    ("no key", {**CLUSTERS, "existingRoot": {"certPem": ROOT_CERT}}, SECRET, "existingRoot.keyPem must be a non-empty"),
    ("both root and existingRoot", {**FROM_CONFIG, "root": {"days": 10}}, SECRET, "set only one of them"),
    ("both modes", {**CLUSTERS, "existingRoot": {"fromCluster": "cluster1", "certPem": ROOT_CERT}}, SECRET, "not both"),
    ("unknown cluster", {**CLUSTERS, "existingRoot": {"fromCluster": "nope"}}, SECRET, "'nope' is not one of"),
    ("render-mode cluster", {**CLUSTERS, "existingRoot": {"fromCluster": "cluster1"}}, SECRET, "has no kubeconfig"),
    ("unknown key", {**CLUSTERS, "existingRoot": {"cert": "x"}}, SECRET, "unknown key(s) ['cert']"),
    ("secretName", {**CLUSTERS, "existingRoot": {"fromCluster": "c", "secretName": "x"}}, SECRET, "['secretName']"),
]


@pytest.mark.parametrize(("config", "secret", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_existing_root_is_refused_before_anything_is_created(
    config: dict[str, Any], secret: frozenset[str], message: str
) -> None:
    with pytest.raises(ConfigError) as error:
        parse_settings(config, secret)
    assert message in str(error.value)
    assert "PRIVATE KEY" not in str(error.value)


def test_a_root_ending_before_the_intermediates_is_refused() -> None:
    cert, key = make_root(days=100)
    with pytest.raises(ConfigError, match="would outlive it"):
        parse_settings({**CLUSTERS, "existingRoot": {"certPem": cert, "keyPem": key}}, SECRET)
    parse_settings({**CLUSTERS, "intermediate": {"days": 90}, "existingRoot": {"certPem": cert, "keyPem": key}}, SECRET)


def test_secret_without_a_root_names_what_is_missing() -> None:
    with pytest.raises(RootError, match=r"Secret istio-system/cacerts has no ca-key\.pem"):
        secret_file("istio-system/cacerts", {"ca-cert.pem": "eA=="}, "ca-key.pem")
    assert check_root(ROOT_CERT, ROOT_KEY)[0] == ROOT_CERT
    assert check_root(ROOT_CERT.rstrip("\n"), ROOT_KEY)[0] == ROOT_CERT  # as `pulumi config set` stores it


def test_program_signs_the_intermediates_with_the_adopted_root() -> None:
    run = run_program(FROM_CONFIG, secret_keys=["existingRoot"])
    recorder = run.recorder
    assert not recorder.of_type("istio-ca:index:RootCA")
    assert not recorder.of_type("tls:index/selfSignedCert:SelfSignedCert")
    (root,) = recorder.of_type("istio-ca:index:ExistingRoot")
    assert root.name == "root"
    for cluster in ("cluster1", "cluster2"):
        cert = recorder.named(f"{cluster}-cert").inputs
        assert cert["caCertPem"] == ROOT_CERT
        assert unwrap_secret(cert["caPrivateKeyPem"]) == (ROOT_KEY, True)
        assert recorder.named(cluster).parent.endswith("istio-ca:index:ExistingRoot::root")
    assert run.outputs["rootCertPem"] == (ROOT_CERT, False)
    assert run.outputs["rootNotAfter"][0].endswith("Z")
    assert ROOT_KEY.splitlines()[1] not in json.dumps({k: v for k, (v, s) in run.outputs.items() if not s})
