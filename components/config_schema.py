"""A mesh's keys and the Makefile's defaults: everything a user can set, in one place.

The program reads them as its stack config (under `istio-ca:` in `Pulumi.<stack>.yaml`); a host stack
passes them to MeshCA. Unset keys take the defaults of Istio's
`tools/certs/Makefile.selfsigned.mk`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ConfigPath = tuple[str | int, ...]
"""A path in a mesh's description, e.g. ("existingRoot", "keyPem") or ("clusters", 0, "name")."""

RSA_KEY_SIZES = (2048, 3072, 4096)
ECDSA_KEY_SIZES = (256, 384)  # P-256 and P-384: the curves istiod signs with
KEY_ALGORITHMS = {"RSA": RSA_KEY_SIZES, "ECDSA": ECDSA_KEY_SIZES}

ROOT_DEFAULTS: Mapping[str, Any] = {
    "days": 3650,  # ROOTCA_DAYS
    "keyAlgorithm": "RSA",
    "keySize": 4096,  # ROOTCA_KEYSZ
    "org": "Istio",  # ROOTCA_ORG
    "commonName": "Root CA",  # ROOTCA_CN
}
INTERMEDIATE_DEFAULTS: Mapping[str, Any] = {
    "days": 730,  # INTERMEDIATE_DAYS
    "keyAlgorithm": "RSA",
    "keySize": 4096,  # INTERMEDIATE_KEYSZ
    "org": "Istio",  # INTERMEDIATE_ORG
    "commonName": "Intermediate CA",  # INTERMEDIATE_CN
}
WORKLOAD_DEFAULTS: Mapping[str, Any] = {
    "serviceAccount": "default",  # SERVICE_ACCOUNT
    "trustDomain": "cluster.local",
    "days": 1,  # WORKLOAD_DAYS
    "commonName": "Workload",  # WORKLOAD_CN
}
DEFAULT_ISTIO_NAMESPACE = "istio-system"  # ISTIO_NAMESPACE
DEFAULT_RENDER_DIRECTORY = "rendered"

ROOT_KEYS = frozenset(ROOT_DEFAULTS)
INTERMEDIATE_KEYS = frozenset(INTERMEDIATE_DEFAULTS) | {"sanDns", "renewBeforeDays"}
HOURS_PER_DAY = 24
RENEW_AT_FRACTION = 2 / 3
"""Re-issue a certificate once two thirds of its lifetime have passed, as cert-manager does by default:
late enough to use it, early enough that a missed scheduled run or two still leaves time."""


def default_renew_before_hours(validity_days: int) -> int:
    """The renewal window a certificate gets unless told otherwise: the last third of its lifetime."""
    return round(validity_days * HOURS_PER_DAY * (1 - RENEW_AT_FRACTION))


REPLACE_FOREIGN_CACERTS = "replaceForeignCacerts"
CLUSTER_KEYS = frozenset(
    {
        "name",
        "kubeconfig",
        "context",
        "istioNamespace",
        "createNamespace",
        "intermediate",
        "retainCacerts",
        REPLACE_FOREIGN_CACERTS,
        "keyGeneration",
    }
)
WORKLOAD_KEYS = frozenset(WORKLOAD_DEFAULTS) | {"namespace", "renewBeforeDays"}
EXISTING_ROOT_KEYS = frozenset({"certPem", "keyPem", "fromCluster", "sha256"})
STACK_KEYS = frozenset(
    {
        "root",
        "intermediate",
        "clusters",
        "workloads",
        "istioNamespace",
        "kubeconfig",
        "createNamespace",
        "renderDirectory",
        "exportDirectory",
        "existingRoot",
        "retainCacerts",
        "rootRotation",
    }
)
ROOT_ROTATION_PHASES = ("trust-both", "switch", "retire")
"""The phases of a root rotation, in the order they are applied (components/rotation.py)."""
ROOT_ROTATION_KEYS = frozenset({"phase", "sameKey", "retireAfterHours"})
RETIRE_AFTER_HOURS = 24
"""istiod's default workload certificate lifetime (DEFAULT_WORKLOAD_CERT_TTL): `retire` waits this long
after the last cluster's intermediate moved to the new root."""
RETIRE_AFTER_HOURS_MAX = 90 * 24
"""istiod's longest workload certificate lifetime (MAX_WORKLOAD_CERT_TTL)."""

ISTIOD_ROOT_SECRET = "istio-ca-secret"
"""Where `existingRoot.fromCluster` reads a root: only istiod's own Secret. This stack replaces the
cluster's `cacerts`, so a root read from there would be its own intermediate on the next run."""
