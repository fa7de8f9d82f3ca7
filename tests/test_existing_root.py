"""Adopting an existing root (Makefile.k8s.mk fetch-root-ca) from config or from a cluster."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from istio_ca.component_args import existing_root_args
from istio_ca.config import parse_settings
from istio_ca.existing_root import check_adopted, recorded_sha256, secret_file
from istio_ca.root_checks import RootError, check_root
from istio_ca.settings import RootFromCluster, RootFromConfig
from istio_ca.validation import ConfigError
from stack_config import refuse_plain_private_keys
from tests.program import run_program, unwrap_secret
from tests.roots import make_intermediate, make_root
from tests.test_config import write_kubeconfig

ROOT_CERT, ROOT_KEY = make_root()
OTHER_CERT, OTHER_KEY = make_root()
CLUSTERS: dict[str, Any] = {"clusters": [{"name": "cluster1"}, {"name": "cluster2"}]}
FROM_CONFIG: dict[str, Any] = {**CLUSTERS, "existingRoot": {"certPem": ROOT_CERT, "keyPem": ROOT_KEY}}
SECRET = frozenset({("existingRoot",)})


def test_root_from_config_is_checked_and_kept() -> None:
    existing = parse_settings(FROM_CONFIG).existing_root
    assert isinstance(existing, RootFromConfig)
    assert (existing.cert_pem, existing.key_pem) == (ROOT_CERT, ROOT_KEY)
    args = existing_root_args(existing, longest_signed_days=730)
    assert args["cert_pem"] == ROOT_CERT and args["longest_signed_days"] == 730
    assert "kubeconfig" not in args


def test_root_from_a_cluster_reads_its_secret_through_its_kubeconfig(tmp_path: Path) -> None:
    kubeconfig = write_kubeconfig(tmp_path, contexts=["east"], current="east")
    config = {
        "clusters": [{"name": "east", "kubeconfig": str(kubeconfig)}],
        "existingRoot": {"fromCluster": "east"},
    }
    existing = parse_settings(config).existing_root
    assert isinstance(existing, RootFromCluster)
    assert dict(existing_root_args(existing, longest_signed_days=730)) == {
        "longest_signed_days": 730,
        "kubeconfig": str(kubeconfig),
        "namespace": "istio-system",
        # Never `cacerts`: the stack replaces it, and would read back its own intermediate.
        "secret_names": ["istio-ca-secret"],
    }


BAD: list[tuple[str, dict[str, Any], frozenset[tuple[str | int, ...]], str]] = [
    ("key not secret", FROM_CONFIG, frozenset(), "istio-ca:existingRoot.keyPem holds a private key in plain text"),
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
        "existingRoot.certPem holds text that is not PEM",
    ),
    (
        "key not PEM",
        {**CLUSTERS, "existingRoot": {"certPem": ROOT_CERT, "keyPem": "x"}},
        SECRET,
        "existingRoot.keyPem holds text that is not PEM",
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
    config: dict[str, Any], secret: frozenset[tuple[str | int, ...]], message: str
) -> None:
    with pytest.raises(ConfigError) as error:
        refuse_plain_private_keys(config, secret)
        parse_settings(config)
    assert message in str(error.value)
    assert "PRIVATE KEY" not in str(error.value)


def test_a_root_ending_before_the_intermediates_is_refused() -> None:
    cert, key = make_root(days=100)
    with pytest.raises(ConfigError, match="would outlive it"):
        parse_settings({**CLUSTERS, "existingRoot": {"certPem": cert, "keyPem": key}})
    parse_settings({**CLUSTERS, "intermediate": {"days": 90}, "existingRoot": {"certPem": cert, "keyPem": key}})


def test_secret_without_a_root_names_what_is_missing() -> None:
    with pytest.raises(RootError, match=r"Secret istio-system/cacerts has no ca-key\.pem"):
        secret_file("istio-system/cacerts", {"ca-cert.pem": "eA=="}, "ca-key.pem")
    assert check_root(ROOT_CERT, ROOT_KEY).cert_pem == ROOT_CERT
    assert check_root(ROOT_CERT.rstrip("\n"), ROOT_KEY).cert_pem == ROOT_CERT  # as `pulumi config set` stores it


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


def adopt(cert_pem: str, key_pem: str) -> None:
    parse_settings({**CLUSTERS, "existingRoot": {"certPem": cert_pem, "keyPem": key_pem}})


@pytest.mark.parametrize(
    ("cert", "key", "message"),
    [
        (
            ROOT_CERT + ROOT_KEY,
            ROOT_KEY,
            "certPem must hold exactly one PEM CERTIFICATE; it holds CERTIFICATE, PRIVATE",
        ),
        (ROOT_CERT + OTHER_CERT, ROOT_KEY, "certPem must hold exactly one PEM CERTIFICATE; it holds CERTIFICATE, CERT"),
        (ROOT_CERT, ROOT_KEY + ROOT_CERT, "keyPem must hold exactly one unencrypted PEM private key"),
        (make_intermediate(ROOT_CERT, ROOT_KEY)[0], ROOT_KEY, "is not a root: it is issued by O=cluster.local"),
        (make_root(path_length=0)[0], ROOT_KEY, "carries pathlen:0"),
    ],
    ids=["cert then key", "a chain", "key then cert", "an intermediate", "pathlen 0"],
)
def test_an_existing_root_that_is_not_exactly_one_self_signed_root_is_refused(
    cert: str, key: str, message: str
) -> None:
    with pytest.raises(ConfigError) as error:
        adopt(cert, key)
    assert message in str(error.value)
    assert "PRIVATE KEY-----" not in str(error.value) and ROOT_KEY.splitlines()[1] not in str(error.value)


def test_the_makefiles_cacerts_intermediate_is_refused_as_a_root() -> None:
    """The README's old advice: `ca-cert.pem`/`ca-key.pem` of a plugged-in cacerts, a pathlen:0 intermediate."""
    intermediate, intermediate_key = make_intermediate(ROOT_CERT, ROOT_KEY, path_length=0)
    with pytest.raises(ConfigError, match="not a root"):
        adopt(intermediate, intermediate_key)


@pytest.mark.parametrize(("key_format", "ecdsa"), [("PKCS1", False), ("PKCS8", False), ("PKCS1", True)])
def test_keys_as_istiod_openssl_and_ec_tools_write_them_are_accepted(key_format: str, ecdsa: bool) -> None:
    cert, key = make_root(key_format=key_format, ecdsa=ecdsa)
    adopt(cert, key)
    assert check_root(cert, key).cert_pem == cert


def test_a_pinned_fingerprint_must_match() -> None:
    pinned = check_root(ROOT_CERT, ROOT_KEY).sha256
    config = {**CLUSTERS, "existingRoot": {"certPem": ROOT_CERT, "keyPem": ROOT_KEY, "sha256": pinned.lower()}}
    assert parse_settings(config).existing_root is not None
    config["existingRoot"]["sha256"] = check_root(OTHER_CERT, OTHER_KEY).sha256
    with pytest.raises(ConfigError, match=f"has SHA-256 {pinned}, not"):
        parse_settings(config)
    config["existingRoot"]["sha256"] = "abc"
    with pytest.raises(ConfigError, match="is not a SHA-256 fingerprint"):
        parse_settings(config)


def test_a_root_read_from_a_cluster_must_be_the_one_adopted_before() -> None:
    recorded = check_root(ROOT_CERT, ROOT_KEY).sha256
    assert recorded_sha256("east", {"fromCluster": "east", "sha256": recorded}) == recorded
    assert recorded_sha256("east", {"fromCluster": "west", "sha256": recorded}) is None
    assert recorded_sha256("east", None) is None
    source = "Secret istio-system/istio-ca-secret ca-cert.pem"
    with pytest.raises(RootError) as error:
        check_adopted(OTHER_CERT, OTHER_KEY, 0, source, "key", recorded)
    message = str(error.value)
    assert f"now holds another root (SHA-256 {check_root(OTHER_CERT, OTHER_KEY).sha256})" in message
    assert recorded in message and "existingRoot.sha256" in message
    assert check_adopted(ROOT_CERT, ROOT_KEY, 0, source, "key", recorded.lower()).sha256 == recorded
