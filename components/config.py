"""Stack config -> typed, validated settings.

Every `istio-ca:` key is checked before any resource is registered, so a bad
config fails `pulumi preview` with a message naming the key, and nothing is
half-created. Defaults are those of Istio's Makefile.selfsigned.mk.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import pulumi
import yaml

from components.cacerts import REPLACE_OPT_IN
from components.certificate import CertificateArgs
from components.cluster_ca import ClusterCAArgs
from components.existing_root import ExistingRootArgs, RootError, check_root
from components.root_ca import RootCAArgs
from components.workload_certs import WorkloadCertsArgs

NAMESPACE = "istio-ca"

RSA_KEY_SIZES = (2048, 3072, 4096)
ECDSA_KEY_SIZES = (256, 384)  # P-256 and P-384: the curves istiod signs with
KEY_ALGORITHMS = {"RSA": RSA_KEY_SIZES, "ECDSA": ECDSA_KEY_SIZES}

ROOT_DEFAULTS: Mapping[str, Any] = {
    "days": 3650,
    "keyAlgorithm": "RSA",
    "keySize": 4096,
    "org": "Istio",
    "commonName": "Root CA",
}
INTERMEDIATE_DEFAULTS: Mapping[str, Any] = {
    "days": 730,
    "keyAlgorithm": "RSA",
    "keySize": 4096,
    "org": "Istio",
    "commonName": "Intermediate CA",
}
WORKLOAD_DEFAULTS: Mapping[str, Any] = {
    "serviceAccount": "default",
    "trustDomain": "cluster.local",
    "days": 1,
    "commonName": "Workload",
}
DEFAULT_ISTIO_NAMESPACE = "istio-system"
DEFAULT_RENDER_DIRECTORY = "rendered"

ROOT_KEYS = frozenset(ROOT_DEFAULTS)
INTERMEDIATE_KEYS = frozenset(INTERMEDIATE_DEFAULTS) | {"sanDns"}
CLUSTER_KEYS = frozenset(
    {
        "name",
        "kubeconfig",
        "context",
        "istioNamespace",
        "createNamespace",
        "intermediate",
        "retainCacerts",
        REPLACE_OPT_IN,
    }
)
WORKLOAD_KEYS = frozenset(WORKLOAD_DEFAULTS) | {"namespace"}
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
    }
)
EXISTING_ROOT_KEYS = frozenset({"certPem", "keyPem", "fromCluster", "sha256"})
# Only istiod's own Secret: this stack replaces the cluster's `cacerts`, so a root read from there
# would be its own intermediate on the next run. A root in `cacerts` is imported once, as config.
CLUSTER_ROOT_SECRET = "istio-ca-secret"

DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
"""Matched whole (`fullmatch`): a trailing newline is not a DNS label."""
SHA256_FINGERPRINT = re.compile(r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){31}")
PRIVATE_KEY_MARKER = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")

ConfigPath = tuple[str | int, ...]
"""A path below `istio-ca:`, e.g. ("existingRoot", "keyPem") or ("clusters", 0, "name")."""


class ConfigError(pulumi.RunError):
    """Bad stack config; Pulumi prints the message without a stack trace."""


@dataclass(frozen=True)
class KeySettings:
    algorithm: str
    size: int
    """RSA bits, or the ECDSA curve's size (256 for P-256)."""

    def add_to(self, args: CertificateArgs) -> None:
        """Set the component's key-size argument that fits the algorithm."""
        if self.algorithm == "RSA":
            args["rsa_bits"] = self.size
        else:
            args["ecdsa_curve"] = f"P{self.size}"


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
    render_directory: str | None
    retain_cacerts: bool = True
    replace_foreign_cacerts: bool = False

    def args(self, root_cert_pem: pulumi.Input[str], root_private_key_pem: pulumi.Input[str]) -> ClusterCAArgs:
        args = ClusterCAArgs(
            cluster_name=self.name,
            root_cert_pem=root_cert_pem,
            root_private_key_pem=root_private_key_pem,
            organization=self.intermediate.organization,
            common_name=self.intermediate.common_name,
            validity_days=self.intermediate.validity_days,
            key_algorithm=self.intermediate.key.algorithm,
            dns_names=list(self.dns_names),
            namespace=self.namespace,
            create_namespace=self.create_namespace,
            retain_cacerts=self.retain_cacerts,
            replace_foreign_cacerts=self.replace_foreign_cacerts,
        )
        self.intermediate.key.add_to(args)
        if self.kubeconfig is not None:
            args["kubeconfig"] = self.kubeconfig
        if self.context is not None:
            args["context"] = self.context
        if self.render_directory is not None:
            args["render_directory"] = self.render_directory
        return args


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

    def args(self, root_cert_pem: pulumi.Input[str], root_private_key_pem: pulumi.Input[str]) -> WorkloadCertsArgs:
        args = WorkloadCertsArgs(
            organization=self.intermediate.organization,
            common_name=self.intermediate.common_name,
            validity_days=self.intermediate.validity_days,
            key_algorithm=self.intermediate.key.algorithm,
            namespace=self.namespace,
            root_cert_pem=root_cert_pem,
            root_private_key_pem=root_private_key_pem,
            dns_names=list(self.dns_names),
            service_account=self.service_account,
            trust_domain=self.trust_domain,
            workload_common_name=self.common_name,
            workload_validity_days=self.validity_days,
        )
        self.intermediate.key.add_to(args)
        return args


@dataclass(frozen=True)
class ExistingRootSettings:
    """A root adopted from the config's PEMs, or from a cluster's Secret."""

    cert_pem: str | None
    key_pem: str | None
    cluster: ClusterSettings | None
    sha256: str | None = None
    """The fingerprint the root must have, when pinned in config."""

    def args(self, longest_issued_days: int, adopted_sha256: pulumi.Input[str | None] = None) -> ExistingRootArgs:
        """`adopted_sha256`: the fingerprint of the root adopted from the cluster before, if any."""
        args = ExistingRootArgs(longest_issued_days=longest_issued_days)
        if self.cluster is None:
            assert self.cert_pem is not None and self.key_pem is not None
            args["cert_pem"] = self.cert_pem
            args["private_key_pem"] = pulumi.Output.secret(self.key_pem)
            args["cert_source"] = f"{NAMESPACE}:existingRoot.certPem"
            args["key_source"] = f"{NAMESPACE}:existingRoot.keyPem"
            return args
        # A fingerprint pinned in config wins over the one recorded when the root was first adopted.
        expected = self.sha256 if self.sha256 is not None else adopted_sha256
        if expected is not None:
            args["expected_sha256"] = expected
        assert self.cluster.kubeconfig is not None
        args["kubeconfig"] = self.cluster.kubeconfig
        if self.cluster.context is not None:
            args["context"] = self.cluster.context
        args["namespace"] = self.cluster.namespace
        args["secret_names"] = [CLUSTER_ROOT_SECRET]
        return args


@dataclass(frozen=True)
class StackSettings:
    root: CertificateSettings
    clusters: tuple[ClusterSettings, ...]
    workloads: tuple[WorkloadSettings, ...] = ()
    export_directory: str | None = None
    """Where the Makefile's file layout is written after `pulumi up`; None: not written."""
    existing_root: ExistingRootSettings | None = None
    """Adopt this root instead of generating one (then `root` is not used)."""

    @property
    def longest_intermediate_days(self) -> int:
        """The longest validity the root signs, which it must outlast."""
        days = [c.intermediate.validity_days for c in self.clusters]
        return max(days + [w.intermediate.validity_days for w in self.workloads])

    def root_args(self) -> RootCAArgs:
        args = RootCAArgs(
            organization=self.root.organization,
            common_name=self.root.common_name,
            validity_days=self.root.validity_days,
            key_algorithm=self.root.key.algorithm,
        )
        self.root.key.add_to(args)
        return args


def read_secret_paths() -> frozenset[ConfigPath]:
    """The `istio-ca:` config paths whose value is a secret, leaf by leaf.

    The engine tells a program only which top-level keys hold a secret somewhere inside
    (pulumi/pulumi#13063), so `keyPem` set in plain text beside a secret `certPem` would pass. The
    stack's config file says it leaf by leaf (`secure:`); top-level keys it does not hold (set another
    way) fall back to what the engine says.
    """
    prefix = NAMESPACE + ":"
    from_engine = set(pulumi.runtime.config.get_config_secret_keys_env())
    engine_secret = {
        key
        for key in read_stack_config()
        if prefix + key in from_engine or pulumi.runtime.config.is_config_secret(prefix + key)
    }
    in_file = _stack_config_file_values()
    paths: set[ConfigPath] = {(key,) for key in engine_secret if key not in in_file}
    for key, value in in_file.items():
        paths |= _secure_paths(value, (key,))
    return frozenset(paths)


def _stack_config_file_values() -> dict[str, Any]:
    """The `istio-ca:` values of `Pulumi.<stack>.yaml` as written (secrets still `secure:`); {} without one."""
    root = pulumi.runtime.get_root_directory() or os.getcwd()
    directory = root
    try:
        with open(os.path.join(root, "Pulumi.yaml"), encoding="utf-8") as stream:
            project = yaml.safe_load(stream) or {}
        directory = os.path.join(root, project.get("stackConfigDir") or "")
        with open(os.path.join(directory, f"Pulumi.{pulumi.get_stack()}.yaml"), encoding="utf-8") as stream:
            document = yaml.safe_load(stream) or {}
    except (OSError, yaml.YAMLError):
        return {}
    prefix = NAMESPACE + ":"
    config = document.get("config") or {}
    return {key.removeprefix(prefix): value for key, value in config.items() if key.startswith(prefix)}


def _secure_paths(value: Any, path: ConfigPath) -> set[ConfigPath]:
    if isinstance(value, dict) and set(value) == {"secure"}:
        return {path}
    children: list[tuple[str | int, Any]] = []
    if isinstance(value, dict):
        children = list(value.items())
    elif isinstance(value, list):
        children = list(enumerate(value))
    return set().union(*(_secure_paths(child, (*path, key)) for key, child in children))


def read_stack_config() -> dict[str, Any]:
    """Every `istio-ca:` key the engine passed to this program, JSON values decoded."""
    # The SDK keeps config in two places depending on how the program runs.
    values = {**pulumi.runtime.config.get_config_env(), **pulumi.runtime.config.CONFIG.get()}
    prefix = NAMESPACE + ":"
    return {key.removeprefix(prefix): _decode(value) for key, value in values.items() if key.startswith(prefix)}


def _decode(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def parse_settings(raw: Mapping[str, Any], secret_paths: frozenset[ConfigPath] = frozenset()) -> StackSettings:
    """Validate decoded `istio-ca:` config and fill in the Makefile's defaults.

    `secret_paths`: the config paths set as secrets (read_secret_paths); a key anywhere else is refused.
    """
    _refuse_plain_private_keys(raw, secret_paths)
    _reject_unknown(raw, STACK_KEYS, NAMESPACE)
    root_raw = _object(raw, "root", f"{NAMESPACE}:root")
    _reject_unknown(root_raw, ROOT_KEYS, f"{NAMESPACE}:root")
    root = _certificate({**ROOT_DEFAULTS, **root_raw}, root_raw, f"{NAMESPACE}:root")

    intermediate_raw = _object(raw, "intermediate", f"{NAMESPACE}:intermediate")
    _reject_unknown(intermediate_raw, INTERMEDIATE_KEYS, f"{NAMESPACE}:intermediate")
    # Checked here too, so a bad stack-wide value is named as the key the user set, not as a cluster's.
    _certificate({**INTERMEDIATE_DEFAULTS, **intermediate_raw}, intermediate_raw, f"{NAMESPACE}:intermediate")
    if "sanDns" in intermediate_raw:
        _dns_names(intermediate_raw["sanDns"], f"{NAMESPACE}:intermediate.sanDns")
    defaults = _ClusterDefaults(
        intermediate=intermediate_raw,
        namespace=_namespace(raw.get("istioNamespace", DEFAULT_ISTIO_NAMESPACE), f"{NAMESPACE}:istioNamespace"),
        create_namespace=_bool(raw.get("createNamespace", False), f"{NAMESPACE}:createNamespace"),
        kubeconfig=_optional_str(raw.get("kubeconfig"), f"{NAMESPACE}:kubeconfig"),
        render_directory=_str(raw.get("renderDirectory", DEFAULT_RENDER_DIRECTORY), f"{NAMESPACE}:renderDirectory"),
        retain_cacerts=_bool(raw.get("retainCacerts", True), f"{NAMESPACE}:retainCacerts"),
    )
    clusters = _clusters(raw.get("clusters"), defaults)
    workloads = _workloads(raw.get("workloads", []), defaults)
    export_directory = _optional_str(raw.get("exportDirectory"), f"{NAMESPACE}:exportDirectory")
    settings = StackSettings(root=root, clusters=clusters, workloads=workloads, export_directory=export_directory)
    if "existingRoot" in raw:
        if root_raw:
            raise ConfigError(
                f"{NAMESPACE}:root sets up a new root, {NAMESPACE}:existingRoot adopts one: set only one of them"
            )
        existing = _existing_root(raw["existingRoot"], _is_secret(("existingRoot", "keyPem"), secret_paths), clusters)
        if existing.cert_pem is not None and existing.key_pem is not None:
            try:
                adopted = check_root(
                    existing.cert_pem,
                    existing.key_pem,
                    days_needed=settings.longest_intermediate_days,
                    cert_source=f"{NAMESPACE}:existingRoot.certPem",
                    key_source=f"{NAMESPACE}:existingRoot.keyPem",
                )
            except RootError as error:
                raise ConfigError(str(error)) from None
            if existing.sha256 is not None and adopted.sha256 != existing.sha256:
                raise ConfigError(
                    f"{NAMESPACE}:existingRoot.sha256: the root in certPem has SHA-256 {adopted.sha256}, "
                    f"not {existing.sha256}"
                )
        return replace(settings, existing_root=existing)
    intermediates = [(f"cluster {c.name!r}", c.intermediate) for c in clusters]
    intermediates += [(f"workload namespace {w.namespace!r}", w.intermediate) for w in workloads]
    for owner, intermediate in intermediates:
        if intermediate.validity_days > root.validity_days:
            raise ConfigError(
                f"the intermediate CA of {owner} would outlive the root: "
                f"intermediate days {intermediate.validity_days} > root days {root.validity_days} "
                f"(set {NAMESPACE}:intermediate.days or {NAMESPACE}:root.days so the intermediate ends first)"
            )
    return settings


def _existing_root(value: Any, is_secret: bool, clusters: tuple[ClusterSettings, ...]) -> ExistingRootSettings:
    key = f"{NAMESPACE}:existingRoot"
    if not isinstance(value, dict):
        raise ConfigError(f"{key} must be an object: {{certPem, keyPem}} or {{fromCluster}}")
    _reject_unknown(value, EXISTING_ROOT_KEYS, key)
    sha256 = None
    if "sha256" in value:
        sha256 = value["sha256"]
        if not isinstance(sha256, str) or not SHA256_FINGERPRINT.fullmatch(sha256):
            raise ConfigError(
                f"{key}.sha256: {sha256!r} is not a SHA-256 fingerprint; use the form `openssl x509 -noout "
                "-fingerprint -sha256` prints (32 colon-separated hex bytes)"
            )
        sha256 = sha256.upper()
    if "fromCluster" in value:
        if "certPem" in value or "keyPem" in value:
            raise ConfigError(f"{key}: set either certPem and keyPem, or fromCluster, not both")
        name = value["fromCluster"]
        cluster = next((c for c in clusters if c.name == name), None)
        if cluster is None:
            raise ConfigError(f"{key}.fromCluster: {name!r} is not one of the clusters {[c.name for c in clusters]}")
        if cluster.kubeconfig is None:
            raise ConfigError(f"{key}.fromCluster: cluster {name!r} has no kubeconfig to read the root through")
        return ExistingRootSettings(cert_pem=None, key_pem=None, cluster=cluster, sha256=sha256)
    cert_pem = _pem_text(value.get("certPem"), f"{key}.certPem")
    key_pem = _pem_text(value.get("keyPem"), f"{key}.keyPem")
    if not is_secret:
        raise ConfigError(
            f"{key}.keyPem must be a secret: set it with "
            f"`pulumi config set --secret --path '{key}.keyPem' < root-key.pem`"
        )
    return ExistingRootSettings(cert_pem=cert_pem, key_pem=key_pem, cluster=None, sha256=sha256)


def _refuse_plain_private_keys(raw: Mapping[str, Any], secret_paths: frozenset[ConfigPath]) -> None:
    """A private key anywhere in config must be a secret, or it sits in plain text in `Pulumi.<stack>.yaml`."""
    for path, value in _leaves(raw, ()):
        if isinstance(value, str) and PRIVATE_KEY_MARKER.search(value) and not _is_secret(path, secret_paths):
            raise ConfigError(
                f"{NAMESPACE}:{_dotted(path)} holds a private key in plain text; remove it and set it with "
                f"`pulumi config set --secret --path '{NAMESPACE}:{_dotted(path)}' < key.pem`"
            )


def _leaves(value: Any, path: ConfigPath) -> list[tuple[ConfigPath, Any]]:
    if isinstance(value, Mapping):
        return [leaf for key, child in value.items() for leaf in _leaves(child, (*path, key))]
    if isinstance(value, list):
        return [leaf for index, child in enumerate(value) for leaf in _leaves(child, (*path, index))]
    return [(path, value)]


def _is_secret(path: ConfigPath, secret_paths: frozenset[ConfigPath]) -> bool:
    """Whether the value at `path`, or a value holding it, was set as a secret."""
    return any(path[: len(secret)] == secret for secret in secret_paths)


def _dotted(path: ConfigPath) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path).lstrip(".")


@dataclass(frozen=True)
class _ClusterDefaults:
    intermediate: Mapping[str, Any]
    namespace: str
    create_namespace: bool
    kubeconfig: str | None
    render_directory: str
    retain_cacerts: bool


def _clusters(value: Any, defaults: _ClusterDefaults) -> tuple[ClusterSettings, ...]:
    key = f"{NAMESPACE}:clusters"
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{key} must be a non-empty list of clusters, e.g. [{{name: cluster1}}]")
    clusters = tuple(_cluster(entry, defaults, f"{key}[{index}]") for index, entry in enumerate(value))
    seen: set[str] = set()
    for cluster in clusters:
        if cluster.name in seen:
            raise ConfigError(f"{key}: cluster name {cluster.name!r} is used twice; names must be unique")
        seen.add(cluster.name)
    return clusters


def _workloads(value: Any, defaults: _ClusterDefaults) -> tuple[WorkloadSettings, ...]:
    key = f"{NAMESPACE}:workloads"
    if not isinstance(value, list):
        raise ConfigError(f"{key} must be a list of workloads, e.g. [{{namespace: vm-apps}}]")
    workloads = tuple(_workload(entry, defaults, f"{key}[{index}]") for index, entry in enumerate(value))
    namespaces = [w.namespace for w in workloads]
    for namespace in namespaces:
        if namespaces.count(namespace) > 1:
            raise ConfigError(f"{key}: namespace {namespace!r} is listed twice; one entry per namespace")
    return workloads


def _workload(entry: Any, defaults: _ClusterDefaults, key: str) -> WorkloadSettings:
    if not isinstance(entry, dict):
        raise ConfigError(f"{key} must be an object with at least a namespace, e.g. {{namespace: vm-apps}}")
    _reject_unknown(entry, WORKLOAD_KEYS, key)
    values = {**WORKLOAD_DEFAULTS, **entry}
    namespace = _namespace(entry.get("namespace"), f"{key}.namespace")
    intermediate = _certificate(
        {**INTERMEDIATE_DEFAULTS, **defaults.intermediate}, defaults.intermediate, f"{NAMESPACE}:intermediate"
    )
    days = _positive_int(values["days"], f"{key}.days")
    if days > intermediate.validity_days:
        raise ConfigError(
            f"{key}.days: the workload certificate ({days} days) would outlive its namespace intermediate "
            f"({intermediate.validity_days} days, {NAMESPACE}:intermediate.days)"
        )
    return WorkloadSettings(
        namespace=namespace,
        intermediate=intermediate,
        dns_names=_dns_names(
            defaults.intermediate.get("sanDns", [f"istiod.{defaults.namespace}.svc"]),
            f"{NAMESPACE}:intermediate.sanDns",
        ),
        service_account=_dns_name(values["serviceAccount"], f"{key}.serviceAccount"),
        trust_domain=_dns_name(values["trustDomain"], f"{key}.trustDomain"),
        common_name=_str(values["commonName"], f"{key}.commonName"),
        validity_days=days,
    )


def _cluster(entry: Any, defaults: _ClusterDefaults, key: str) -> ClusterSettings:
    if not isinstance(entry, dict):
        raise ConfigError(f"{key} must be an object with at least a name, e.g. {{name: cluster1}}")
    _reject_unknown(entry, CLUSTER_KEYS, key)
    name = _dns_label(entry.get("name"), f"{key}.name", what="cluster name")
    namespace = _namespace(entry.get("istioNamespace", defaults.namespace), f"{key}.istioNamespace")
    override = _object(entry, "intermediate", f"{key}.intermediate")
    _reject_unknown(override, INTERMEDIATE_KEYS, f"{key}.intermediate")
    merged = {**defaults.intermediate, **override}
    certificate = _certificate({**INTERMEDIATE_DEFAULTS, **merged}, merged, f"{key}.intermediate")
    dns_names = _dns_names(merged.get("sanDns", [f"istiod.{namespace}.svc"]), f"{key}.intermediate.sanDns")
    kubeconfig = _optional_str(entry.get("kubeconfig", defaults.kubeconfig), f"{key}.kubeconfig")
    context = _optional_str(entry.get("context"), f"{key}.context")
    settings = ClusterSettings(
        name=name,
        intermediate=certificate,
        dns_names=dns_names,
        namespace=namespace,
        create_namespace=_bool(entry.get("createNamespace", defaults.create_namespace), f"{key}.createNamespace"),
        kubeconfig=None,
        context=None,
        render_directory=None,
        retain_cacerts=_bool(entry.get("retainCacerts", defaults.retain_cacerts), f"{key}.retainCacerts"),
        replace_foreign_cacerts=_bool(entry.get(REPLACE_OPT_IN, False), f"{key}.{REPLACE_OPT_IN}"),
    )
    if kubeconfig is None:
        if context is not None:
            raise ConfigError(f"{key}.context is set but the cluster has no kubeconfig; set {key}.kubeconfig")
        return replace(settings, render_directory=os.path.join(defaults.render_directory, name))
    path = _kubeconfig_path(kubeconfig, context, f"{key}.kubeconfig")
    return replace(settings, kubeconfig=path, context=context)


def _kubeconfig_path(value: str, context: str | None, key: str) -> str:
    path = os.path.abspath(os.path.expanduser(value))
    if not os.path.isfile(path):
        raise ConfigError(f"{key}: kubeconfig file {path} does not exist")
    try:
        with open(path, encoding="utf-8") as stream:
            document = yaml.safe_load(stream)
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
    return path


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
    return CertificateSettings(
        organization=_str(values["org"], f"{key}.org"),
        common_name=_str(values["commonName"], f"{key}.commonName"),
        validity_days=_positive_int(values["days"], f"{key}.days"),
        key=KeySettings(algorithm=algorithm, size=size),
    )


def _reject_unknown(values: Mapping[str, Any], allowed: frozenset[str], key: str) -> None:
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise ConfigError(f"{key}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")


def _object(values: Mapping[str, Any], name: str, key: str) -> dict[str, Any]:
    value = values.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{key} must be an object, got {value!r}")
    return value


def _str(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{key} must be a non-empty string, got {value!r}")
    if value != value.strip():
        raise ConfigError(f"{key}: {value!r} starts or ends with white space; remove it")
    return value


def _pem_text(value: Any, key: str) -> str:
    """A PEM value: never echoed, since it may hold a key."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{key} must be a non-empty PEM text")
    return value


def _optional_str(value: Any, key: str) -> str | None:
    return None if value is None else _str(value, key)


def _bool(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{key} must be true or false, got {value!r}")
    return value


def _positive_int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{key} must be a whole number of days greater than 0, got {value!r}")
    return value


def _dns_label(value: Any, key: str, *, what: str) -> str:
    if not isinstance(value, str) or not DNS_LABEL.fullmatch(value):
        raise ConfigError(
            f"{key}: {value!r} is not a valid {what}; use a DNS label "
            "(1-63 lowercase letters, digits or '-', starting and ending with a letter or digit)"
        )
    return value


def _namespace(value: Any, key: str) -> str:
    return _dns_label(value, key, what="Kubernetes namespace")


def _dns_names(value: Any, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{key} must be a DNS name or a non-empty list of DNS names")
    return tuple(_dns_name(name, key) for name in value)


def _dns_name(name: Any, key: str) -> str:
    labels = name.split(".") if isinstance(name, str) else []
    if not labels or len(name) > 253 or not all(DNS_LABEL.fullmatch(label) for label in labels):
        raise ConfigError(f"{key}: {name!r} is not a DNS name (dot-separated lowercase DNS labels)")
    return str(name)
