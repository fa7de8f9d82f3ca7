"""Every config key refuses what a careless user would give it, before any resource is registered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from istio_ca.config_schema import CLUSTER_KEYS, EXISTING_ROOT_KEYS, INTERMEDIATE_KEYS, ROOT_KEYS, STACK_KEYS
from istio_ca.validation import ConfigError
from tests.program import run_program
from tests.roots import make_root
from tests.test_config import write_kubeconfig

ROOT_CERT, ROOT_KEY = make_root()
ONE = {"name": "cluster1"}


def clusters(*entries: dict[str, Any], **keys: Any) -> dict[str, Any]:
    return {"clusters": list(entries) or [ONE], **keys}


# (id, config, what the message must say: the key, and what is allowed)
BAD: list[tuple[str, dict[str, Any], str]] = [
    ("unknown stack key", clusters(cluster=[]), "istio-ca config: unknown key(s) ['cluster']; allowed:"),
    ("key with trailing space", {"clusters ": [ONE]}, "unknown key(s) ['clusters ']"),
    ("no clusters", {}, "clusters must be a non-empty list of clusters"),
    ("clusters not a list", {"clusters": {"name": "a"}}, "clusters must be a non-empty list"),
    (
        "cluster not an object",
        {"clusters": ["cluster1"]},
        "clusters[0] must be an object with at least a name",
    ),
    ("name with newline", clusters({"name": "cluster1\n"}), "clusters[0].name: 'cluster1\\n' is not a valid"),
    ("name with space", clusters({"name": "cluster1 "}), "use a DNS label (1-63 lowercase letters"),
    ("name upper case", clusters({"name": "East"}), "clusters[0].name: 'East' is not a valid cluster name"),
    ("name too long", clusters({"name": "a" * 64}), "is not a valid cluster name"),
    ("duplicate names", clusters(ONE, ONE), "cluster name 'cluster1' is used twice"),
    (
        "unknown cluster key",
        clusters({"name": "a", "kubeConfig": "x"}),
        "clusters[0]: unknown key(s) ['kubeConfig']",
    ),
    ("namespace with newline", clusters(istioNamespace="istio-system\n"), "istioNamespace: 'istio-system\\n'"),
    ("cluster namespace", clusters({"name": "a", "istioNamespace": "Istio"}), "clusters[0].istioNamespace"),
    ("createNamespace as string", clusters(createNamespace="true"), "createNamespace must be true or false"),
    ("retainCacerts as string", clusters(retainCacerts="no"), "retainCacerts must be true or false, got 'no'"),
    (
        "replace opt-in as string",
        clusters({"name": "a", "replaceForeignCacerts": "yes"}),
        "replaceForeignCacerts must be",
    ),
    ("replace opt-in stack-wide", clusters(replaceForeignCacerts=True), "unknown key(s) ['replaceForeignCacerts']"),
    ("root days zero", clusters(root={"days": 0}), "root.days must be a whole number of days greater than 0"),
    ("root days as string", clusters(root={"days": "3650"}), "root.days must be a whole number"),
    ("root days true", clusters(root={"days": True}), "root.days must be a whole number"),
    ("root key size", clusters(root={"keySize": 1024}), "root.keySize: 1024 is not allowed for RSA; use one"),
    (
        "root algorithm",
        clusters(root={"keyAlgorithm": "Ed25519"}),
        "root.keyAlgorithm: 'Ed25519' is not allowed",
    ),
    ("root not an object", clusters(root="big"), "root must be an object"),
    ("unknown root key", clusters(root={"cn": "x"}), "root: unknown key(s) ['cn']"),
    (
        "root org trailing space",
        clusters(root={"org": "Acme "}),
        "root.org: 'Acme ' starts or ends with white",
    ),
    ("root CN empty", clusters(root={"commonName": " "}), "root.commonName must be a non-empty string"),
    (
        "ecdsa size",
        clusters(intermediate={"keyAlgorithm": "ECDSA", "keySize": 521}),
        "intermediate.keySize: 521 is not",
    ),
    ("intermediate days", clusters(intermediate={"days": -1}), "intermediate.days must be a whole number"),
    (
        "renewal longer than the life",
        clusters(intermediate={"days": 90, "renewBeforeDays": 91}),
        "intermediate.renewBeforeDays must be a whole number of days shorter than the lifetime (90 days): "
        "from 1 to 89, got 91",
    ),
    ("renewal as text", clusters({"name": "a", "intermediate": {"renewBeforeDays": "30"}}), "renewBeforeDays must be"),
    (
        "renewal the whole life",
        clusters({"name": "a", "intermediate": {"days": 90, "renewBeforeDays": 90}}),
        "clusters[0].intermediate.renewBeforeDays must be a whole number of days shorter than the lifetime",
    ),
    (
        "renewal never",
        clusters(intermediate={"renewBeforeDays": 0}),
        "intermediate.renewBeforeDays must be a whole number of days shorter than the lifetime (730 days): "
        "from 1 to 729, got 0",
    ),
    (
        "workload renewal of a 1-day certificate",
        clusters(workloads=[{"namespace": "vm", "days": 1, "renewBeforeDays": 1}]),
        "workloads[0].renewBeforeDays must be a whole number of days shorter than the lifetime (1 days): "
        "none for a 1-day certificate (leave it out)",
    ),
    (
        "root renewal window",
        clusters(root={"renewBeforeDays": 30}),
        "root: unknown key(s) ['renewBeforeDays']",
    ),
    ("key generation zero", clusters({"name": "a", "keyGeneration": 0}), "keyGeneration must be a whole number from 1"),
    ("outlives root", clusters(intermediate={"days": 4000}), "would outlive the root: intermediate days 4000 > root"),
    ("cluster outlives root", clusters({"name": "a", "intermediate": {"days": 3651}}), "cluster 'a' would outlive"),
    (
        "san not DNS",
        clusters(intermediate={"sanDns": "istiod.istio-system.svc\n"}),
        "intermediate.sanDns: 'istiod",
    ),
    ("san empty list", clusters(intermediate={"sanDns": []}), "must be a DNS name or a non-empty list of DNS names"),
    (
        "context without kubeconfig",
        clusters({"name": "a", "context": "x"}),
        "context is set but the cluster has no kube",
    ),
    (
        "kubeconfig missing",
        clusters(kubeconfig="/nonexistent/kubeconfig"),
        "kubeconfig file /nonexistent/kubeconfig does",
    ),
    (
        "kubeconfig trailing space",
        clusters(kubeconfig="~/.kube/config "),
        "kubeconfig: '~/.kube/config ' starts",
    ),
    ("renderDirectory empty", clusters(renderDirectory=""), "renderDirectory must be a non-empty string"),
    ("exportDirectory number", clusters(exportDirectory=7), "exportDirectory must be a non-empty string"),
    ("workloads not a list", clusters(workloads={"namespace": "vm"}), "workloads must be a list"),
    (
        "workload SA newline",
        clusters(workloads=[{"namespace": "vm", "serviceAccount": "sa\n"}]),
        "serviceAccount: 'sa\\n'",
    ),
    ("existingRoot not object", clusters(existingRoot="cluster1"), "existingRoot must be an object"),
    ("existingRoot and root", clusters(root={"days": 10}, existingRoot={"fromCluster": "cluster1"}), "set only one"),
    ("existingRoot unknown key", clusters(existingRoot={"certpem": "x"}), "existingRoot: unknown key(s) ['certpem']"),
    (
        "fromCluster unknown",
        clusters(existingRoot={"fromCluster": "cluster9"}),
        "fromCluster: 'cluster9' is not one of",
    ),
    (
        "sha256 malformed",
        clusters(existingRoot={"fromCluster": "cluster1", "sha256": "AB:CD"}),
        "sha256: 'AB:CD' is not",
    ),
    (
        "rotation phase",
        clusters(rootRotation={"phase": "switch-now"}),
        "rootRotation.phase: 'switch-now' is not one of",
    ),
    ("rotation not an object", clusters(rootRotation="trust-both"), "rootRotation must be an object"),
    (
        "rotation sameKey",
        clusters(rootRotation={"phase": "trust-both", "sameKey": "yes"}),
        "rootRotation.sameKey must be",
    ),
    ("rotation unknown", clusters(rootRotation={"phase": "retire", "gen": 2}), "rootRotation: unknown key(s) ['gen']"),
    (
        "retire after negative",
        clusters(rootRotation={"phase": "retire", "retireAfterHours": -1}),
        "rootRotation.retireAfterHours must be a whole number of hours from 0 to 2160",
    ),
    (
        "retire after text",
        clusters(rootRotation={"phase": "retire", "retireAfterHours": "24h"}),
        "rootRotation.retireAfterHours must be a whole number of hours",
    ),
    (
        "retire after too long",
        clusters(rootRotation={"phase": "retire", "retireAfterHours": 2161}),
        "(istiod's longest workload certificate lifetime), got 2161",
    ),
    (
        "plain key",
        clusters(existingRoot={"certPem": ROOT_CERT, "keyPem": ROOT_KEY}),
        "keyPem holds a private key in plain",
    ),
    ("key in a name", clusters({"name": ROOT_KEY}), "istio-ca:clusters[0].name holds a private key in plain text"),
]


@pytest.mark.parametrize(("config", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_config_is_refused_before_any_resource_naming_the_key(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        run_program(config)
    assert message in str(error.value)
    assert "PRIVATE KEY-----" not in str(error.value)
    assert ROOT_KEY.splitlines()[1] not in str(error.value)


def test_the_table_covers_every_config_key() -> None:
    covered = "\n".join(repr(config) + message for _, config, message in BAD)
    for key in STACK_KEYS | CLUSTER_KEYS | EXISTING_ROOT_KEYS | INTERMEDIATE_KEYS | ROOT_KEYS:
        assert f"'{key}'" in covered or f"{key}" in covered, key
    assert len(BAD) >= 25


def test_a_context_not_in_the_kubeconfig_is_refused(tmp_path: Path) -> None:
    kubeconfig = write_kubeconfig(tmp_path, contexts=["east"], current="east")
    with pytest.raises(ConfigError, match=r"context 'west' is not in .*; it has \['east'\]"):
        run_program(clusters({"name": "a", "kubeconfig": str(kubeconfig), "context": "west"}))
