"""Typed settings: what the validated stack config asks for, as plain values.

config.py makes them from a mesh's description; component_args.py turns them into the components'
arguments. Nothing here knows Pulumi or the components.
"""

from __future__ import annotations

from dataclasses import dataclass

from istio_ca.config_schema import RETIRE_AFTER_HOURS


@dataclass(frozen=True)
class KeySettings:
    algorithm: str
    """`RSA` or `ECDSA`."""
    size: int
    """RSA bits, or the ECDSA curve's size (256 for P-256)."""


@dataclass(frozen=True)
class CertificateSettings:
    organization: str
    common_name: str
    validity_days: int
    key: KeySettings


@dataclass(frozen=True)
class ClusterSettings:
    name: str
    intermediate: CertificateSettings
    dns_names: tuple[str, ...]
    namespace: str
    create_namespace: bool
    kubeconfig: str | None
    context: str | None
    server: str | None
    """The API server its kubeconfig context points at; None when rendered."""
    render_directory: str | None
    """Where its manifests are written instead of applied; set exactly when there is neither a kubeconfig
    nor a provider of the host stack's."""
    retain_cacerts: bool = True
    replace_foreign_cacerts: bool = False
    renew_before_hours: int = 0
    """The intermediate is re-issued on the first `pulumi up` this long before it ends."""
    key_generation: int = 1
    """Raised to replace the intermediate's key, not only its certificate."""


@dataclass(frozen=True)
class WorkloadSettings:
    """A `<namespace>-certs` target: a namespace intermediate and one workload leaf."""

    namespace: str
    intermediate: CertificateSettings
    dns_names: tuple[str, ...]
    service_account: str
    trust_domain: str
    common_name: str
    validity_days: int
    renew_before_hours: int
    """The leaf is re-issued on the first `pulumi up` this long before it ends."""
    intermediate_renew_before_hours: int
    """Likewise the namespace intermediate."""


@dataclass(frozen=True)
class RootFromConfig:
    """A root adopted from the config's PEMs (checked when the config is read)."""

    cert_pem: str
    key_pem: str
    sha256: str | None = None
    """The fingerprint the root must have, when pinned in config."""


@dataclass(frozen=True)
class RootFromCluster:
    """A root adopted from istiod's `istio-ca-secret` in one of the clusters (checked on every run)."""

    cluster: ClusterSettings
    sha256: str | None = None
    """The fingerprint the root must have, when pinned in config."""


ExistingRootSettings = RootFromConfig | RootFromCluster


@dataclass(frozen=True)
class RootRotationSettings:
    """The wanted phase of a root rotation (components/rotation.py)."""

    phase: str
    same_key: bool = False
    """Re-issue the root certificate with the same key (a renewal), instead of a new key."""
    retire_after_hours: int = RETIRE_AFTER_HOURS
    """`retire` waits this long after the last cluster's intermediate moved to the new root: the longest
    workload certificate lifetime, so no workload still holds one from the old intermediate."""


@dataclass(frozen=True)
class StackSettings:
    root: CertificateSettings
    clusters: tuple[ClusterSettings, ...]
    workloads: tuple[WorkloadSettings, ...] = ()
    export_directory: str | None = None
    """Where the Makefile's file layout is written after `pulumi up`; None: not written."""
    existing_root: ExistingRootSettings | None = None
    """Adopt this root instead of generating one (then `root` is not used)."""
    root_rotation: RootRotationSettings | None = None
    """The wanted root rotation phase; None: no rotation asked for."""

    @property
    def longest_signed_days(self) -> int:
        """The longest validity the root signs (an intermediate's), which it must outlast."""
        intermediates = [c.intermediate for c in self.clusters] + [w.intermediate for w in self.workloads]
        return max(intermediate.validity_days for intermediate in intermediates)
