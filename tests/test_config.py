"""Stack config -> settings: the Makefile's defaults, overrides, and every bad input."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pytest

from istio_ca.certificate import Issuer
from istio_ca.component_args import root_ca_args, workload_certs_args
from istio_ca.config import parse_settings
from istio_ca.rotation import RootRotationState
from istio_ca.settings import CertificateSettings, KeySettings
from istio_ca.validation import ConfigError
from stack_config import read_secret_paths, read_stack_config


@dataclass(frozen=True)
class StubRoot:
    """A root as wiring sees it, without Pulumi."""

    signer: Issuer
    trusted_root_pems: Any = None
    not_after: Any = None


TWO_CLUSTERS: dict[str, Any] = {"clusters": [{"name": "cluster1"}, {"name": "cluster2"}]}


def with_clusters(*clusters: dict[str, Any], **keys: Any) -> dict[str, Any]:
    return {"clusters": list(clusters), **keys}


def test_defaults_are_the_makefiles() -> None:
    settings = parse_settings(TWO_CLUSTERS)
    # ROOTCA_DAYS, ROOTCA_KEYSZ, ROOTCA_ORG, ROOTCA_CN
    assert settings.root == CertificateSettings("Istio", "Root CA", 3650, KeySettings("RSA", 4096))
    assert [c.name for c in settings.clusters] == ["cluster1", "cluster2"]
    for cluster in settings.clusters:
        # INTERMEDIATE_DAYS, INTERMEDIATE_KEYSZ, INTERMEDIATE_ORG, INTERMEDIATE_CN
        assert cluster.intermediate == CertificateSettings("Istio", "Intermediate CA", 730, KeySettings("RSA", 4096))
        assert cluster.dns_names == ("istiod.istio-system.svc",)  # INTERMEDIATE_SAN_DNS
        assert cluster.namespace == "istio-system"  # ISTIO_NAMESPACE
        assert cluster.create_namespace is False
        assert cluster.kubeconfig is None
        assert cluster.render_directory == f"rendered/{cluster.name}"


def test_stack_level_keys_apply_to_every_cluster() -> None:
    settings = parse_settings(
        with_clusters(
            {"name": "east"},
            {"name": "west"},
            root={"days": 7300, "keySize": 3072, "org": "Acme", "commonName": "Acme Root"},
            intermediate={"days": 365, "keySize": 2048, "org": "Acme Mesh", "commonName": "Acme Intermediate"},
            istioNamespace="istio-ca",
            createNamespace=True,
            renderDirectory="out",
        )
    )
    assert settings.root == CertificateSettings("Acme", "Acme Root", 7300, KeySettings("RSA", 3072))
    for cluster in settings.clusters:
        assert cluster.intermediate == CertificateSettings(
            "Acme Mesh", "Acme Intermediate", 365, KeySettings("RSA", 2048)
        )
        assert cluster.namespace == "istio-ca"
        assert cluster.dns_names == ("istiod.istio-ca.svc",)  # the SAN follows the namespace
        assert cluster.create_namespace is True
        assert cluster.render_directory == f"out/{cluster.name}"


def test_per_cluster_overrides_touch_only_that_cluster() -> None:
    settings = parse_settings(
        with_clusters(
            {"name": "east", "intermediate": {"days": 90, "keyAlgorithm": "ECDSA", "sanDns": ["istiod.east.example"]}},
            {"name": "west", "istioNamespace": "mesh"},
            intermediate={"org": "Acme"},
        )
    )
    east, west = settings.clusters
    assert east.intermediate == CertificateSettings("Acme", "Intermediate CA", 90, KeySettings("ECDSA", 256))
    assert east.dns_names == ("istiod.east.example",)
    assert east.namespace == "istio-system"
    assert west.intermediate == CertificateSettings("Acme", "Intermediate CA", 730, KeySettings("RSA", 4096))
    assert west.dns_names == ("istiod.mesh.svc",)


@pytest.mark.parametrize(
    ("algorithm", "size", "key_args"),
    [
        ("RSA", 2048, {"key_algorithm": "RSA", "rsa_bits": 2048}),
        ("RSA", 3072, {"key_algorithm": "RSA", "rsa_bits": 3072}),
        ("RSA", 4096, {"key_algorithm": "RSA", "rsa_bits": 4096}),
        ("ECDSA", 256, {"key_algorithm": "ECDSA", "ecdsa_curve": "P256"}),
        ("ECDSA", 384, {"key_algorithm": "ECDSA", "ecdsa_curve": "P384"}),
    ],
)
def test_every_key_istiod_accepts_is_honoured(algorithm: str, size: int, key_args: dict[str, Any]) -> None:
    settings = parse_settings(with_clusters({"name": "c1"}, root={"keyAlgorithm": algorithm, "keySize": size}))
    assert settings.root.key == KeySettings(algorithm, size)
    root_args = root_ca_args(settings.root, RootRotationState())
    assert {k: v for k, v in root_args.items() if k in ("key_algorithm", "rsa_bits", "ecdsa_curve")} == key_args


def test_kubeconfig_and_context_select_the_cluster(tmp_path: Path) -> None:
    kubeconfig = write_kubeconfig(tmp_path, contexts=["east", "west"], current="east")
    settings = parse_settings(
        with_clusters({"name": "east"}, {"name": "west", "context": "west"}, kubeconfig=str(kubeconfig))
    )
    east, west = settings.clusters
    assert (east.kubeconfig, east.context, east.render_directory) == (str(kubeconfig), None, None)
    assert (west.kubeconfig, west.context, west.render_directory) == (str(kubeconfig), "west", None)


def test_per_cluster_kubeconfig_overrides_the_stack_one(tmp_path: Path) -> None:
    shared = write_kubeconfig(tmp_path / "shared", contexts=["a"], current="a")
    own = write_kubeconfig(tmp_path / "own", contexts=["b"], current="b")
    settings = parse_settings(
        with_clusters({"name": "one"}, {"name": "two", "kubeconfig": str(own)}, kubeconfig=str(shared))
    )
    assert [c.kubeconfig for c in settings.clusters] == [str(shared), str(own)]


def test_two_entries_for_the_same_cluster_and_namespace_are_refused(tmp_path: Path) -> None:
    shared = write_kubeconfig(tmp_path / "shared", contexts=["a", "b"], current="a")
    copy = write_kubeconfig(tmp_path / "copy", contexts=["a"], current="a")  # another file, the same server
    for second in ({"name": "two"}, {"name": "two", "kubeconfig": str(copy)}):
        with pytest.raises(
            ConfigError,
            match=r"'one' and 'two' both write Secret istio-system/cacerts through the API "
            r"server https://a.clusters.example:6443",
        ):
            parse_settings(with_clusters({"name": "one"}, second, kubeconfig=str(shared)))
    # Another namespace, or another context's server: a cluster of its own.
    parse_settings(
        with_clusters({"name": "one"}, {"name": "two", "istioNamespace": "istio-two"}, kubeconfig=str(shared))
    )
    parse_settings(with_clusters({"name": "one"}, {"name": "two", "context": "b"}, kubeconfig=str(shared)))


def write_kubeconfig(directory: Path, *, contexts: list[str], current: str | None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "kubeconfig"
    document: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": c, "cluster": {"server": f"https://{c}.clusters.example:6443"}} for c in contexts],
        "users": [{"name": "admin", "user": {"token": "t"}}],
        "contexts": [{"name": c, "context": {"cluster": c, "user": "admin"}} for c in contexts],
    }
    if current is not None:
        document["current-context"] = current
    path.write_text(json.dumps(document))  # JSON is YAML
    return path


BAD_CONFIGS: list[tuple[str, dict[str, Any], str]] = [
    ("unknown stack key", {**TWO_CLUSTERS, "rootDays": 10}, "unknown key(s) ['rootDays']"),
    ("unknown root key", {**TWO_CLUSTERS, "root": {"dayz": 1}}, "root: unknown key(s) ['dayz']"),
    (
        "unknown intermediate key",
        {**TWO_CLUSTERS, "intermediate": {"san": "x"}},
        "intermediate: unknown key(s) ['san']",
    ),
    ("unknown cluster key", with_clusters({"name": "a", "ctx": "b"}), "clusters[0]: unknown key(s) ['ctx']"),
    ("no clusters", {}, "clusters must be a non-empty list"),
    ("empty cluster list", with_clusters(), "clusters must be a non-empty list"),
    ("cluster not an object", with_clusters("cluster1"), "clusters[0] must be an object"),  # type: ignore[arg-type]
    ("missing cluster name", with_clusters({}), "clusters[0].name: None is not a valid cluster name"),
    ("empty cluster name", with_clusters({"name": ""}), "clusters[0].name: '' is not a valid cluster name"),
    (
        "duplicate cluster names",
        with_clusters({"name": "a"}, {"name": "a"}),
        "cluster name 'a' is used twice",
    ),
    (
        "cluster name not a DNS label",
        with_clusters({"name": "Cluster_1"}),
        "clusters[0].name: 'Cluster_1' is not a valid cluster name",
    ),
    ("cluster name too long", with_clusters({"name": "a" * 64}), "is not a valid cluster name"),
    (
        "RSA key too small",
        {**TWO_CLUSTERS, "root": {"keySize": 1024}},
        "root.keySize: 1024 is not allowed for RSA; use one of [2048, 3072, 4096]",
    ),
    (
        "ECDSA curve istiod rejects",
        {**TWO_CLUSTERS, "intermediate": {"keyAlgorithm": "ECDSA", "keySize": 521}},
        "intermediate.keySize: 521 is not allowed for ECDSA; use one of [256, 384]",
    ),
    (
        "Ed25519",
        {**TWO_CLUSTERS, "root": {"keyAlgorithm": "ED25519"}},
        "root.keyAlgorithm: 'ED25519' is not allowed; use RSA or ECDSA",
    ),
    ("zero root days", {**TWO_CLUSTERS, "root": {"days": 0}}, "root.days must be a whole number"),
    (
        "negative intermediate days",
        with_clusters({"name": "a", "intermediate": {"days": -5}}),
        "clusters[0].intermediate.days must be a whole number of days greater than 0, got -5",
    ),
    ("days as text", {**TWO_CLUSTERS, "root": {"days": "ten"}}, "root.days must be a whole number"),
    (
        "intermediate outlives root",
        {**TWO_CLUSTERS, "root": {"days": 365}},
        "the intermediate CA of cluster 'cluster1' would outlive the root: intermediate days 730 > root days 365",
    ),
    (
        "invalid namespace",
        {**TWO_CLUSTERS, "istioNamespace": "Istio System"},
        "istioNamespace: 'Istio System' is not a valid Kubernetes namespace",
    ),
    (
        "invalid per-cluster namespace",
        with_clusters({"name": "a", "istioNamespace": "-x"}),
        "clusters[0].istioNamespace: '-x' is not a valid Kubernetes namespace",
    ),
    (
        "SAN with a space",
        {**TWO_CLUSTERS, "intermediate": {"sanDns": ["istiod istio-system"]}},
        "intermediate.sanDns: 'istiod istio-system' is not a DNS name",
    ),
    (
        "SAN that is a URI",
        {**TWO_CLUSTERS, "intermediate": {"sanDns": ["spiffe://cluster.local/ns/x"]}},
        "is not a DNS name",
    ),
    ("empty SAN list", {**TWO_CLUSTERS, "intermediate": {"sanDns": []}}, "must be a DNS name or a non-empty list"),
    ("empty org", {**TWO_CLUSTERS, "root": {"org": " "}}, "root.org must be a non-empty string"),
    (
        "missing kubeconfig file",
        {**TWO_CLUSTERS, "kubeconfig": "/nonexistent/kubeconfig"},
        "clusters[0].kubeconfig: kubeconfig file /nonexistent/kubeconfig does not exist",
    ),
    (
        "context without kubeconfig",
        with_clusters({"name": "a", "context": "a"}),
        "clusters[0].context is set but the cluster has no kubeconfig",
    ),
    ("createNamespace not a bool", {**TWO_CLUSTERS, "createNamespace": "yes"}, "must be true or false"),
    ("root not an object", {**TWO_CLUSTERS, "root": "big"}, "root must be an object"),
]


@pytest.mark.parametrize(("config", "message"), [c[1:] for c in BAD_CONFIGS], ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config_is_refused_with_the_key_named(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_settings(config)
    assert message in str(error.value)


def test_context_missing_from_kubeconfig(tmp_path: Path) -> None:
    kubeconfig = write_kubeconfig(tmp_path, contexts=["east"], current="east")
    with pytest.raises(ConfigError, match=r"clusters\[0\]\.kubeconfig: context 'west' is not in .*; it has \['east'\]"):
        parse_settings(with_clusters({"name": "a", "kubeconfig": str(kubeconfig), "context": "west"}))


def test_kubeconfig_without_current_context_needs_a_context(tmp_path: Path) -> None:
    kubeconfig = write_kubeconfig(tmp_path, contexts=["east"], current=None)
    with pytest.raises(ConfigError, match="has no current-context"):
        parse_settings(with_clusters({"name": "a", "kubeconfig": str(kubeconfig)}))


def test_kubeconfig_that_is_not_yaml(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text("clusters: [unclosed")
    with pytest.raises(ConfigError, match="cannot read kubeconfig"):
        parse_settings(with_clusters({"name": "a", "kubeconfig": str(path)}))


def test_config_error_prints_without_a_stack_trace() -> None:
    assert issubclass(ConfigError, pulumi.RunError)


def test_read_stack_config_decodes_values_of_this_project_only() -> None:
    pulumi.runtime.set_all_config(
        {
            "istio-ca:clusters": json.dumps([{"name": "a"}]),
            "istio-ca:istioNamespace": "istio-system",
            "istio-ca:createNamespace": "true",
            "aws:region": "us-east-1",
        }
    )
    try:
        assert read_stack_config() == {
            "clusters": [{"name": "a"}],
            "istioNamespace": "istio-system",
            "createNamespace": True,
        }
    finally:
        pulumi.runtime.set_all_config({})


def test_workloads_default_to_the_makefiles_certs_target() -> None:
    settings = parse_settings({**TWO_CLUSTERS, "workloads": [{"namespace": "vm-apps"}]})
    (workload,) = settings.workloads
    assert workload.namespace == "vm-apps"
    assert (workload.service_account, workload.trust_domain, workload.validity_days, workload.common_name) == (
        "default",  # SERVICE_ACCOUNT
        "cluster.local",
        1,  # WORKLOAD_DAYS
        "Workload",  # WORKLOAD_CN
    )
    assert workload.intermediate == CertificateSettings("Istio", "Intermediate CA", 730, KeySettings("RSA", 4096))
    assert workload.dns_names == ("istiod.istio-system.svc",)
    assert parse_settings(TWO_CLUSTERS).workloads == ()


def test_workload_settings_are_honoured() -> None:
    settings = parse_settings(
        {
            **TWO_CLUSTERS,
            "intermediate": {"keyAlgorithm": "ECDSA", "days": 90},
            "workloads": [
                {"namespace": "vm-a", "serviceAccount": "vm-sa", "trustDomain": "mesh.example", "days": 7},
                {"namespace": "vm-b", "commonName": "VM"},
            ],
        }
    )
    first, second = settings.workloads
    assert (first.service_account, first.trust_domain, first.validity_days) == ("vm-sa", "mesh.example", 7)
    assert first.intermediate.key == KeySettings("ECDSA", 256)
    assert second.common_name == "VM"
    args = workload_certs_args(first, StubRoot(signer=Issuer(cert_pem="ROOT", private_key_pem="KEY")))
    assert (args["namespace"], args["service_account"], args["trust_domain"]) == ("vm-a", "vm-sa", "mesh.example")
    assert (args["workload_validity_days"], args["validity_days"], args.get("ecdsa_curve")) == (7, 90, "P256")


BAD_WORKLOADS: list[tuple[str, Any, str]] = [
    ("not a list", {"namespace": "a"}, "workloads must be a list"),
    ("entry not an object", ["vm"], "workloads[0] must be an object"),
    ("missing namespace", [{}], "workloads[0].namespace: None is not a valid Kubernetes namespace"),
    ("bad namespace", [{"namespace": "VM"}], "workloads[0].namespace: 'VM' is not a valid"),
    ("duplicate", [{"namespace": "a"}, {"namespace": "a"}], "namespace 'a' is listed twice"),
    ("unknown key", [{"namespace": "a", "sa": "x"}], "workloads[0]: unknown key(s) ['sa']"),
    ("bad service account", [{"namespace": "a", "serviceAccount": "My SA"}], "serviceAccount: 'My SA' is not a DNS"),
    ("bad trust domain", [{"namespace": "a", "trustDomain": "spiffe://x"}], "trustDomain: 'spiffe://x' is not a DNS"),
    ("zero days", [{"namespace": "a", "days": 0}], "workloads[0].days must be a whole number"),
    ("outlives its CA", [{"namespace": "a", "days": 731}], "would outlive its namespace intermediate (730 days"),
]


@pytest.mark.parametrize(("workloads", "message"), [c[1:] for c in BAD_WORKLOADS], ids=[c[0] for c in BAD_WORKLOADS])
def test_bad_workloads_are_refused_with_the_key_named(workloads: Any, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_settings({**TWO_CLUSTERS, "workloads": workloads})
    assert message in str(error.value)


def test_read_secret_paths_falls_back_to_the_engines_top_level_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no stack config file here
    pulumi.runtime.set_all_config(
        {"istio-ca:existingRoot": "{}", "istio-ca:clusters": "[]", "other:token": "x"},
        secret_keys=["istio-ca:existingRoot", "other:token"],
    )
    try:
        assert read_secret_paths() == {("existingRoot",)}
    finally:
        pulumi.runtime.set_all_config({}, secret_keys=[])


def test_read_secret_paths_reads_each_leaf_from_the_stack_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine calls all of `existingRoot` secret when one leaf is; the stack's file tells leaf by leaf."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(pulumi.runtime.settings.SETTINGS, "root_directory", None)
    monkeypatch.setattr(pulumi.runtime.settings.SETTINGS, "stack", "leafy")
    (tmp_path / "Pulumi.yaml").write_text("name: istio-ca\nruntime: python\nstackConfigDir: stacks\n")
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "Pulumi.leafy.yaml").write_text(
        "config:\n"
        "  istio-ca:existingRoot:\n"
        "    certPem:\n      secure: v1:abc\n"
        "    keyPem: plain\n"
        "  istio-ca:clusters:\n    - name: a\n      kubeconfig:\n        secure: v1:def\n"
    )
    pulumi.runtime.set_all_config(
        {"istio-ca:existingRoot": "{}", "istio-ca:clusters": "[]"},
        secret_keys=["istio-ca:existingRoot", "istio-ca:clusters"],
    )
    try:
        assert read_secret_paths() == {("existingRoot", "certPem"), ("clusters", 0, "kubeconfig")}
    finally:
        pulumi.runtime.set_all_config({}, secret_keys=[])
