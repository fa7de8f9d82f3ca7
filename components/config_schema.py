"""A mesh's keys and the Makefile's defaults: everything a user can set, in one place.

The program reads them as its stack config (under `istio-ca:` in `Pulumi.<stack>.yaml`); a host stack
passes them to MeshCA as a `MeshConfig`, and a YAML or TypeScript program gets them from the component
package's schema, which Pulumi's analyzer infers from these TypedDicts. Unset keys take the defaults of
Istio's `tools/certs/Makefile.selfsigned.mk`.

No `from __future__ import annotations` here: the analyzer reads the TypedDicts' annotations as types.
"""

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any, NotRequired, TypedDict

import pulumi

ConfigPath = tuple[str | int, ...]
"""A path in a mesh's description, e.g. ("existingRoot", "keyPem") or ("clusters", 0, "name")."""


def dotted(path: ConfigPath) -> str:
    """A path as the README writes it: `existingRoot.keyPem`, `clusters[0].name`."""
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path).lstrip(".")


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

HOURS_PER_DAY = 24
RENEW_AT_FRACTION = 2 / 3
"""Re-issue a certificate once two thirds of its lifetime have passed, as cert-manager does by default:
late enough to use it, early enough that a missed scheduled run or two still leaves time."""


def default_renew_before_hours(validity_days: int) -> int:
    """The renewal window a certificate gets unless told otherwise: the last third of its lifetime."""
    return round(validity_days * HOURS_PER_DAY * (1 - RENEW_AT_FRACTION))


REPLACE_FOREIGN_CACERTS = "replaceForeignCacerts"


RETIRE_AFTER_HOURS = 24
"""istiod's default workload certificate lifetime (DEFAULT_WORKLOAD_CERT_TTL): `retire` waits this long
after the last cluster's intermediate moved to the new root."""
RETIRE_AFTER_HOURS_MAX = 90 * 24
"""istiod's longest workload certificate lifetime (MAX_WORKLOAD_CERT_TTL)."""

ISTIOD_ROOT_SECRET = "istio-ca-secret"
"""Where `existingRoot.fromCluster` reads a root: only istiod's own Secret. This stack replaces the
cluster's `cacerts`, so a root read from there would be its own intermediate on the next run."""


class KeyAlgorithm(StrEnum):
    """A key's algorithm."""

    RSA = "RSA"
    """RSA, of `keySize` 2048, 3072 or 4096 bits (the Makefile's keys)."""
    ECDSA = "ECDSA"
    """ECDSA, of `keySize` 256 (P-256) or 384 (P-384): the curves istiod signs with."""


class RootRotationPhase(StrEnum):
    """A phase of a root rotation, applied in this order."""

    TRUST_BOTH = "trust-both"
    """Every cluster trusts the old and the new root; the old one still signs."""
    SWITCH = "switch"
    """The new root signs every intermediate; both are still trusted."""
    RETIRE = "retire"
    """Only the new root is trusted, `retireAfterHours` after the last cluster switched."""


class RootConfig(TypedDict, total=False):
    """The root CA (the Makefile's `root-ca` target); with `existingRoot`, the new root of a rotation."""

    days: int
    """Validity in days (ROOTCA_DAYS). Default 3650."""
    keyAlgorithm: KeyAlgorithm
    """RSA or ECDSA. Default RSA."""
    keySize: int
    """Key size (ROOTCA_KEYSZ): RSA 2048, 3072 or 4096; ECDSA 256 or 384. Default 4096 (RSA), 256 (ECDSA)."""
    org: str
    """Subject O (ROOTCA_ORG). Default `Istio`."""
    commonName: str
    """Subject CN (ROOTCA_CN). Default `Root CA`."""


class IntermediateConfig(TypedDict, total=False):
    """A cluster's (or a VM namespace's) intermediate CA: stack-wide, or one cluster's overrides."""

    days: int
    """Validity in days (INTERMEDIATE_DAYS); never more than the root's. Default 730."""
    keyAlgorithm: KeyAlgorithm
    """RSA or ECDSA. Default RSA."""
    keySize: int
    """Key size (INTERMEDIATE_KEYSZ): RSA 2048, 3072 or 4096; ECDSA 256 or 384. Default 4096 (RSA), 256 (ECDSA)."""
    org: str
    """Subject O (INTERMEDIATE_ORG). Default `Istio`."""
    commonName: str
    """Subject CN (INTERMEDIATE_CN). Default `Intermediate CA`."""
    sanDns: Sequence[str]
    """subjectAltName DNS names (INTERMEDIATE_SAN_DNS; stack config also takes one name). Default
    `istiod.<namespace>.svc`."""
    renewBeforeDays: int
    """Re-issue the intermediate this many days before it ends. Default: a third of `days`."""


class ClusterConfig(TypedDict):
    """One cluster of the mesh: an intermediate CA (`L=<name>`) in its `cacerts` (the Makefile's `<name>-cacerts`)."""

    name: str
    """The cluster's name: a DNS label, unique in the mesh; the intermediate's subject L."""
    kubeconfig: NotRequired[str]
    """Path to the cluster's kubeconfig (KUBECONFIG). Default: the stack-wide `kubeconfig`; with none, and
    no host provider, render mode writes the manifests to `renderDirectory`."""
    context: NotRequired[str]
    """The kubeconfig context. Default: its current context."""
    istioNamespace: NotRequired[str]
    """The Istio namespace that holds `cacerts` (ISTIO_NAMESPACE). Default: the stack-wide one."""
    createNamespace: NotRequired[bool]
    """Create the Istio namespace, and never delete it. Default: the stack-wide setting."""
    intermediate: NotRequired[IntermediateConfig]
    """This cluster's overrides of the stack-wide `intermediate`."""
    retainCacerts: NotRequired[bool]
    """Keep `cacerts` when the cluster leaves the mesh or on `pulumi destroy`. Default: the stack-wide setting."""
    replaceForeignCacerts: NotRequired[bool]
    """Write over a `cacerts` another tool wrote that holds another root. Default false."""
    keyGeneration: NotRequired[int]
    """Raise it to give this cluster's intermediate a new key; it never goes down. Default 1."""


class WorkloadConfig(TypedDict):
    """A VM namespace: an intermediate (`L=<namespace>`) and a workload certificate it signs (`<namespace>-certs`)."""

    namespace: str
    """The VM's namespace: the intermediate's subject L and the SPIFFE identity's namespace."""
    serviceAccount: NotRequired[str]
    """The SPIFFE identity's service account (SERVICE_ACCOUNT). Default `default`."""
    trustDomain: NotRequired[str]
    """The SPIFFE trust domain. Default `cluster.local`."""
    days: NotRequired[int]
    """The workload certificate's validity in days (WORKLOAD_DAYS). Default 1."""
    commonName: NotRequired[str]
    """The workload certificate's subject CN (WORKLOAD_CN). Default `Workload`."""
    renewBeforeDays: NotRequired[int]
    """Re-issue the workload certificate this many days before it ends. Default: a third of `days` (8 hours)."""


class ExistingRootConfig(TypedDict, total=False):
    """A root to keep instead of making one (`Makefile.k8s.mk`'s `fetch-root-ca`): `certPem` and `keyPem`, or
    `fromCluster`."""

    certPem: str
    """The root's certificate, PEM."""
    keyPem: pulumi.Input[str]
    """The root's private key, PEM: pass a secret (the one value here that may be one)."""
    fromCluster: str
    """The cluster whose istiod's own root (Secret `istio-ca-secret`) to adopt."""
    sha256: str
    """The SHA-256 fingerprint the adopted root must have."""


class RootRotationConfig(TypedDict):
    """A root rotation, one phase per run of `pulumi up`."""

    phase: RootRotationPhase
    """The phase to apply: trust-both, then switch, then retire."""
    sameKey: NotRequired[bool]
    """Renew the root with its own key (no new trust to distribute). Default false."""
    retireAfterHours: NotRequired[int]
    """Hours between the last cluster's switch and `retire`: istiod's workload certificate lifetime, at most
    2160. Default 24."""


class MeshConfig(TypedDict):
    """A mesh's whole description: the keys of the README's config table (the program's `istio-ca:` config)."""

    clusters: Sequence[ClusterConfig]
    """The clusters: each gets an intermediate CA in its `cacerts`."""
    root: NotRequired[RootConfig]
    """The root CA. Default: the Makefile's."""
    intermediate: NotRequired[IntermediateConfig]
    """Every cluster's intermediate CA, unless the cluster overrides it. Default: the Makefile's."""
    workloads: NotRequired[Sequence[WorkloadConfig]]
    """VM namespaces to mint workload certificates for. Default none."""
    istioNamespace: NotRequired[str]
    """The Istio namespace that holds `cacerts` (ISTIO_NAMESPACE). Default `istio-system`."""
    kubeconfig: NotRequired[str]
    """Every cluster's kubeconfig path (KUBECONFIG), unless the cluster has its own. Default: none."""
    createNamespace: NotRequired[bool]
    """Create the Istio namespace, and never delete it. Default false: it must exist."""
    renderDirectory: NotRequired[str]
    """Where render mode writes `<cluster>/` for a cluster with no kubeconfig. Default `rendered`."""
    exportDirectory: NotRequired[str]
    """Write the Makefile's output files there after each `pulumi up`. Default: no files."""
    existingRoot: NotRequired[ExistingRootConfig]
    """Keep an existing root instead of making one. Default: a new root."""
    retainCacerts: NotRequired[bool]
    """Keep `cacerts` when a cluster leaves the mesh or on `pulumi destroy`. Default true."""
    rootRotation: NotRequired[RootRotationConfig]
    """A root rotation in progress. Default: none."""


def _keys(config: type) -> frozenset[str]:
    return frozenset(config.__annotations__)


STACK_KEYS = _keys(MeshConfig)
ROOT_KEYS = _keys(RootConfig)
INTERMEDIATE_KEYS = _keys(IntermediateConfig)
CLUSTER_KEYS = _keys(ClusterConfig)
WORKLOAD_KEYS = _keys(WorkloadConfig)
EXISTING_ROOT_KEYS = _keys(ExistingRootConfig)
ROOT_ROTATION_KEYS = _keys(RootRotationConfig)
ROOT_ROTATION_PHASES = tuple(phase.value for phase in RootRotationPhase)
"""The phases of a root rotation, in the order they are applied (components/rotation.py)."""
