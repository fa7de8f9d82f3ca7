"""A mesh's description (the program's stack config, or what a host stack passes MeshCA) -> typed,
validated settings (components/settings.py).

Every key is checked before any resource is registered, so a bad value fails `pulumi preview` with
a message naming the key, and nothing is half-created. The keys and the
Makefile's defaults are in config_schema.py; the generic checks in validation.py. This module holds
the parsing and the rules that span keys.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import yaml

from istio_ca import validation
from istio_ca.config_schema import (
    CLUSTER_KEYS,
    DEFAULT_ISTIO_NAMESPACE,
    DEFAULT_RENDER_DIRECTORY,
    ECDSA_KEY_SIZES,
    EXISTING_ROOT_KEYS,
    HOURS_PER_DAY,
    INTERMEDIATE_DEFAULTS,
    INTERMEDIATE_KEYS,
    KEY_ALGORITHMS,
    REPLACE_FOREIGN_CACERTS,
    RETIRE_AFTER_HOURS,
    RETIRE_AFTER_HOURS_MAX,
    ROOT_DEFAULTS,
    ROOT_KEYS,
    ROOT_ROTATION_KEYS,
    ROOT_ROTATION_PHASES,
    STACK_KEYS,
    WORKLOAD_DEFAULTS,
    WORKLOAD_KEYS,
    default_renew_before_hours,
)
from istio_ca.kubeconfig import kubeconfig_server
from istio_ca.kubeconfig import parse as parse_kubeconfig
from istio_ca.root_checks import RootError, check_root
from istio_ca.settings import (
    CertificateSettings,
    ClusterSettings,
    ExistingRootSettings,
    KeySettings,
    RootFromCluster,
    RootFromConfig,
    RootRotationSettings,
    StackSettings,
    WorkloadSettings,
)
from istio_ca.validation import ConfigError


def parse_settings(raw: Mapping[str, Any], host_clusters: frozenset[str] = frozenset()) -> StackSettings:
    """Validate a mesh's description (the keys of the README's config table) and fill in the Makefile's defaults.

    `host_clusters`: the clusters written through a provider the caller passes (MeshCA's `host_clusters`),
    which need neither a kubeconfig nor a render directory.
    """
    validation.reject_unknown(raw, STACK_KEYS, "")
    root_raw = validation.object_at(raw, "root", "root")
    validation.reject_unknown(root_raw, ROOT_KEYS, "root")
    root = _certificate({**ROOT_DEFAULTS, **root_raw}, root_raw, "root")

    intermediate_raw = validation.object_at(raw, "intermediate", "intermediate")
    validation.reject_unknown(intermediate_raw, INTERMEDIATE_KEYS, "intermediate")
    # Checked here too, so a bad stack-wide value is named as the key the user set, not as a cluster's.
    stack_intermediate = _certificate({**INTERMEDIATE_DEFAULTS, **intermediate_raw}, intermediate_raw, "intermediate")
    _renew_before_hours(intermediate_raw, stack_intermediate.validity_days, "intermediate")
    if "sanDns" in intermediate_raw:
        validation.dns_names(intermediate_raw["sanDns"], "intermediate.sanDns")
    defaults = _StackDefaults(
        intermediate=intermediate_raw,
        namespace=validation.namespace(raw.get("istioNamespace", DEFAULT_ISTIO_NAMESPACE), "istioNamespace"),
        create_namespace=validation.boolean(raw.get("createNamespace", False), "createNamespace"),
        kubeconfig=validation.optional_text(raw.get("kubeconfig"), "kubeconfig"),
        render_directory=validation.text(raw.get("renderDirectory", DEFAULT_RENDER_DIRECTORY), "renderDirectory"),
        retain_cacerts=validation.boolean(raw.get("retainCacerts", True), "retainCacerts"),
        host_clusters=host_clusters,
    )
    clusters = _clusters(raw.get("clusters"), defaults)
    workloads = _workloads(raw.get("workloads", []), defaults)
    export_directory = validation.optional_text(raw.get("exportDirectory"), "exportDirectory")
    settings = StackSettings(
        root=root,
        clusters=clusters,
        workloads=workloads,
        export_directory=export_directory,
        root_rotation=_root_rotation(raw.get("rootRotation")),
    )
    if "existingRoot" in raw:
        if settings.root_rotation is not None and settings.root_rotation.same_key:
            # The renewed certificate would carry this stack's `root` subject, not the adopted root's, and
            # the intermediates the adopted root signed would name an issuer no bundle holds.
            raise ConfigError(
                "rootRotation.sameKey: an adopted root (existingRoot) rotates to a "
                "new key only (sameKey: false); its key is never copied into the state. If trust-both was applied "
                "with sameKey, remove rootRotation first to abort it"
            )
        if root_raw and "rootRotation" not in raw:
            raise ConfigError(
                "root sets up a new root, existingRoot adopts one: set only one "
                "of them (root is for the new root of a rootRotation)"
            )
        existing = _existing_root(raw["existingRoot"], clusters)
        if isinstance(existing, RootFromConfig):
            try:
                adopted = check_root(
                    existing.cert_pem,
                    existing.key_pem,
                    longest_signed_days=settings.longest_signed_days,
                    cert_source="existingRoot.certPem",
                    key_source="existingRoot.keyPem",
                )
            except RootError as error:
                raise ConfigError(str(error)) from None
            if existing.sha256 is not None and adopted.sha256 != existing.sha256:
                raise ConfigError(
                    f"existingRoot.sha256: the root in certPem has SHA-256 {adopted.sha256}, not {existing.sha256}"
                )
        return replace(settings, existing_root=existing)
    intermediates = [(f"cluster {c.name!r}", c.intermediate) for c in clusters]
    intermediates += [(f"workload namespace {w.namespace!r}", w.intermediate) for w in workloads]
    for owner, intermediate in intermediates:
        if intermediate.validity_days > root.validity_days:
            raise ConfigError(
                f"the intermediate CA of {owner} would outlive the root: "
                f"intermediate days {intermediate.validity_days} > root days {root.validity_days} "
                "(set intermediate.days or root.days so the intermediate ends first)"
            )
    return settings


def _existing_root(value: Any, clusters: tuple[ClusterSettings, ...]) -> ExistingRootSettings:
    key = "existingRoot"
    if not isinstance(value, dict):
        raise ConfigError(f"{key} must be an object: {{certPem, keyPem}} or {{fromCluster}}")
    validation.reject_unknown(value, EXISTING_ROOT_KEYS, key)
    sha256 = validation.sha256_fingerprint(value["sha256"], f"{key}.sha256") if "sha256" in value else None
    if "fromCluster" in value:
        if "certPem" in value or "keyPem" in value:
            raise ConfigError(f"{key}: set either certPem and keyPem, or fromCluster, not both")
        name = value["fromCluster"]
        cluster = next((c for c in clusters if c.name == name), None)
        if cluster is None:
            raise ConfigError(f"{key}.fromCluster: {name!r} is not one of the clusters {[c.name for c in clusters]}")
        if cluster.render_directory is not None:
            raise ConfigError(f"{key}.fromCluster: cluster {name!r} has no kubeconfig to read the root through")
        return RootFromCluster(cluster=cluster, sha256=sha256)
    cert_pem = validation.pem_text(value.get("certPem"), f"{key}.certPem")
    key_pem = validation.pem_text(value.get("keyPem"), f"{key}.keyPem")
    return RootFromConfig(cert_pem=cert_pem, key_pem=key_pem, sha256=sha256)


def _root_rotation(value: Any) -> RootRotationSettings | None:
    key = "rootRotation"
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigError(f"{key} must be an object, e.g. {{phase: trust-both}}")
    validation.reject_unknown(value, ROOT_ROTATION_KEYS, key)
    phase = value.get("phase")
    if phase not in ROOT_ROTATION_PHASES:
        raise ConfigError(f"{key}.phase: {phase!r} is not one of {list(ROOT_ROTATION_PHASES)}, in that order")
    retire_after = validation.whole_hours(
        value.get("retireAfterHours", RETIRE_AFTER_HOURS),
        f"{key}.retireAfterHours",
        at_most=RETIRE_AFTER_HOURS_MAX,
        what="istiod's longest workload certificate lifetime",
    )
    return RootRotationSettings(
        phase=phase,
        same_key=validation.boolean(value.get("sameKey", False), f"{key}.sameKey"),
        retire_after_hours=retire_after,
    )


def refuse_a_lowered_key_generation(
    last_clusters: Mapping[str, Any] | None, clusters: Sequence[ClusterSettings]
) -> None:
    """A key generation only goes up: a lower one would not bring the old key back, only hide that it was replaced."""
    for index, cluster in enumerate(clusters):
        recorded = ((last_clusters or {}).get(cluster.name) or {}).get("keyGeneration")
        if not isinstance(recorded, int | float):  # outputs come back as JSON numbers
            continue
        last = int(recorded)
        if cluster.key_generation < last:
            raise ConfigError(
                f"clusters[{index}].keyGeneration is {cluster.key_generation}, lower than the "
                f"{last} the last run applied: only raise it (to {last + 1} for a new key)"
            )


@dataclass(frozen=True)
class _StackDefaults:
    intermediate: Mapping[str, Any]
    namespace: str
    create_namespace: bool
    kubeconfig: str | None
    render_directory: str
    retain_cacerts: bool
    host_clusters: frozenset[str]


def _clusters(value: Any, defaults: _StackDefaults) -> tuple[ClusterSettings, ...]:
    key = "clusters"
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{key} must be a non-empty list of clusters, e.g. [{{name: cluster1}}]")
    clusters = tuple(_cluster(entry, defaults, f"{key}[{index}]") for index, entry in enumerate(value))
    seen: set[str] = set()
    targets: dict[tuple[str, str], str] = {}
    for cluster in clusters:
        if cluster.name in seen:
            raise ConfigError(f"{key}: cluster name {cluster.name!r} is used twice; names must be unique")
        seen.add(cluster.name)
        if cluster.server is None:
            continue
        other = targets.setdefault((cluster.server, cluster.namespace), cluster.name)
        if other != cluster.name:
            raise ConfigError(
                f"{key}: {other!r} and {cluster.name!r} both write Secret {cluster.namespace}/cacerts through the API "
                f"server {cluster.server}: one cluster's Secret would hold only one intermediate. Give each cluster "
                "one entry"
            )
    return clusters


def _workloads(value: Any, defaults: _StackDefaults) -> tuple[WorkloadSettings, ...]:
    key = "workloads"
    if not isinstance(value, list):
        raise ConfigError(f"{key} must be a list of workloads, e.g. [{{namespace: vm-apps}}]")
    workloads = tuple(_workload(entry, defaults, f"{key}[{index}]") for index, entry in enumerate(value))
    namespaces = [w.namespace for w in workloads]
    for namespace in namespaces:
        if namespaces.count(namespace) > 1:
            raise ConfigError(f"{key}: namespace {namespace!r} is listed twice; one entry per namespace")
    return workloads


def _workload(entry: Any, defaults: _StackDefaults, key: str) -> WorkloadSettings:
    if not isinstance(entry, dict):
        raise ConfigError(f"{key} must be an object with at least a namespace, e.g. {{namespace: vm-apps}}")
    validation.reject_unknown(entry, WORKLOAD_KEYS, key)
    values = {**WORKLOAD_DEFAULTS, **entry}
    namespace = validation.namespace(entry.get("namespace"), f"{key}.namespace")
    intermediate = _certificate(
        {**INTERMEDIATE_DEFAULTS, **defaults.intermediate}, defaults.intermediate, "intermediate"
    )
    days = validation.positive_days(values["days"], f"{key}.days")
    if days > intermediate.validity_days:
        raise ConfigError(
            f"{key}.days: the workload certificate ({days} days) would outlive its namespace intermediate "
            f"({intermediate.validity_days} days, intermediate.days)"
        )
    renew_before_hours = _renew_before_hours(entry, days, key)
    return WorkloadSettings(
        namespace=namespace,
        intermediate=intermediate,
        dns_names=validation.dns_names(
            defaults.intermediate.get("sanDns", [f"istiod.{defaults.namespace}.svc"]),
            "intermediate.sanDns",
        ),
        service_account=validation.dns_name(values["serviceAccount"], f"{key}.serviceAccount"),
        trust_domain=validation.dns_name(values["trustDomain"], f"{key}.trustDomain"),
        common_name=validation.text(values["commonName"], f"{key}.commonName"),
        validity_days=days,
        renew_before_hours=renew_before_hours,
        intermediate_renew_before_hours=_renew_before_hours(
            defaults.intermediate, intermediate.validity_days, "intermediate"
        ),
    )


def _cluster(entry: Any, defaults: _StackDefaults, key: str) -> ClusterSettings:
    if not isinstance(entry, dict):
        raise ConfigError(f"{key} must be an object with at least a name, e.g. {{name: cluster1}}")
    validation.reject_unknown(entry, CLUSTER_KEYS, key)
    name = validation.dns_label(entry.get("name"), f"{key}.name", what="cluster name")
    namespace = validation.namespace(entry.get("istioNamespace", defaults.namespace), f"{key}.istioNamespace")
    override = validation.object_at(entry, "intermediate", f"{key}.intermediate")
    validation.reject_unknown(override, INTERMEDIATE_KEYS, f"{key}.intermediate")
    merged = {**defaults.intermediate, **override}
    certificate = _certificate({**INTERMEDIATE_DEFAULTS, **merged}, merged, f"{key}.intermediate")
    dns_names = validation.dns_names(merged.get("sanDns", [f"istiod.{namespace}.svc"]), f"{key}.intermediate.sanDns")
    kubeconfig = validation.optional_text(entry.get("kubeconfig", defaults.kubeconfig), f"{key}.kubeconfig")
    context = validation.optional_text(entry.get("context"), f"{key}.context")
    settings = ClusterSettings(
        name=name,
        intermediate=certificate,
        dns_names=dns_names,
        namespace=namespace,
        create_namespace=validation.boolean(
            entry.get("createNamespace", defaults.create_namespace), f"{key}.createNamespace"
        ),
        kubeconfig=None,
        context=None,
        server=None,
        render_directory=None,
        retain_cacerts=validation.boolean(entry.get("retainCacerts", defaults.retain_cacerts), f"{key}.retainCacerts"),
        replace_foreign_cacerts=validation.boolean(
            entry.get(REPLACE_FOREIGN_CACERTS, False), f"{key}.{REPLACE_FOREIGN_CACERTS}"
        ),
        renew_before_hours=_renew_before_hours(merged, certificate.validity_days, f"{key}.intermediate"),
        key_generation=validation.positive_whole(entry.get("keyGeneration", 1), f"{key}.keyGeneration"),
    )
    if kubeconfig is None:
        if context is not None:
            raise ConfigError(f"{key}.context is set but the cluster has no kubeconfig; set {key}.kubeconfig")
        if name in defaults.host_clusters:
            return settings
        return replace(settings, render_directory=os.path.join(defaults.render_directory, name))
    path, server = _kubeconfig_path(kubeconfig, context, f"{key}.kubeconfig")
    return replace(settings, kubeconfig=path, context=context, server=server)


def _kubeconfig_path(value: str, context: str | None, key: str) -> tuple[str, str | None]:
    """The kubeconfig's absolute path, and the API server its context points at (None if it names none)."""
    path = os.path.abspath(os.path.expanduser(value))
    if not os.path.isfile(path):
        raise ConfigError(f"{key}: kubeconfig file {path} does not exist")
    try:
        with open(path, encoding="utf-8") as stream:
            document = parse_kubeconfig(stream)
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"{key}: cannot read kubeconfig {path}: {error}") from error
    if not isinstance(document, dict):
        raise ConfigError(f"{key}: {path} is not a kubeconfig (expected a YAML mapping)")
    contexts = [entry.get("name") for entry in document.get("contexts") or [] if isinstance(entry, dict)]
    wanted = context if context is not None else document.get("current-context")
    if wanted is None:
        raise ConfigError(f"{key}: {path} has no current-context; set the cluster's context (one of {contexts})")
    if wanted not in contexts:
        raise ConfigError(f"{key}: context {wanted!r} is not in {path}; it has {contexts}")
    return path, kubeconfig_server(document, wanted)


def _certificate(values: Mapping[str, Any], given: Mapping[str, Any], key: str) -> CertificateSettings:
    algorithm = values["keyAlgorithm"]
    if algorithm not in KEY_ALGORITHMS:
        raise ConfigError(
            f"{key}.keyAlgorithm: {algorithm!r} is not allowed; use RSA or ECDSA (istiod accepts no other CA key)"
        )
    # An ECDSA key without a size takes the smaller curve, not RSA's default 4096.
    size = ECDSA_KEY_SIZES[0] if algorithm == "ECDSA" and "keySize" not in given else values["keySize"]
    allowed = KEY_ALGORITHMS[algorithm]
    if isinstance(size, bool) or size not in allowed:
        raise ConfigError(f"{key}.keySize: {size!r} is not allowed for {algorithm}; use one of {list(allowed)}")
    days = validation.positive_days(values["days"], f"{key}.days")
    return CertificateSettings(
        organization=validation.text(values["org"], f"{key}.org"),
        common_name=validation.text(values["commonName"], f"{key}.commonName"),
        validity_days=days,
        key=KeySettings(algorithm=algorithm, size=size),
    )


def _renew_before_hours(values: Mapping[str, Any], days: int, key: str) -> int:
    """`renewBeforeDays`, in hours; by default the last third of the lifetime."""
    if "renewBeforeDays" not in values:
        return default_renew_before_hours(days)
    # 0 would renew only after the end; the whole lifetime would re-issue on every run.
    renew_before = validation.days_within(values["renewBeforeDays"], f"{key}.renewBeforeDays", lifetime=days)
    return renew_before * HOURS_PER_DAY
