"""Settings -> the components' arguments: where a mesh's description meets the components.

config.py checks the description into settings; this module maps each setting to the argument of the
component that uses it; MeshCA (mesh_ca.py) creates the components in order.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi

from istio_ca.certificate import CertificateArgs, Root
from istio_ca.cluster_ca import CacertsTargetArgs, ClusterCAArgs, HostCluster
from istio_ca.config_schema import ISTIOD_ROOT_SECRET
from istio_ca.existing_root import ExistingRootArgs
from istio_ca.kubeconfig import for_the_provider
from istio_ca.root_ca import RootCAArgs, TrustedRootArgs
from istio_ca.rotation import RootRotationState
from istio_ca.settings import (
    CertificateSettings,
    ClusterSettings,
    ExistingRootSettings,
    RootFromConfig,
    WorkloadSettings,
)
from istio_ca.workload_certs import WorkloadCertsArgs


def certificate_args(certificate: CertificateSettings) -> CertificateArgs:
    """What every certificate takes: subject, validity, and the key size argument that fits the algorithm."""
    args = CertificateArgs(
        organization=certificate.organization,
        common_name=certificate.common_name,
        validity_days=certificate.validity_days,
        key_algorithm=certificate.key.algorithm,
    )
    if certificate.key.algorithm == "RSA":
        args["rsa_bits"] = certificate.key.size
    else:
        args["ecdsa_curve"] = f"P{certificate.key.size}"
    return args


def root_ca_args(root: CertificateSettings, generations: RootRotationState) -> RootCAArgs:
    """New generations take today's root settings; existing ones keep what they were made with."""
    return RootCAArgs(
        **certificate_args(root),
        generations=_generations(generations),
        signing_generation=generations.signing,
    )


def _generations(generations: RootRotationState) -> list[TrustedRootArgs]:
    return [TrustedRootArgs(number=n, key_from=generations.key_owner(n)) for n in generations.trusted]


def existing_root_args(
    existing: ExistingRootSettings,
    longest_signed_days: int,
    adopted_sha256: pulumi.Input[str | None] = None,
    generations: RootRotationState | None = None,
    new_roots: CertificateSettings | None = None,
    host: HostCluster | None = None,
) -> ExistingRootArgs:
    """`adopted_sha256`: the fingerprint of the root adopted from the cluster on an earlier run, if any;
    `generations` and `new_roots`: a rotation away from the adopted root (generation 1); `host`: the host
    stack's provider for the cluster the root is read from."""
    # The adopted root must outlast what it signs only while it signs: a rotation may retire it late.
    signing = generations.signing if generations is not None else 1
    args = ExistingRootArgs(longest_signed_days=longest_signed_days if signing == 1 else 0)
    if generations is not None and new_roots is not None:
        args["generations"] = _generations(generations)
        args["signing_generation"] = generations.signing
        args["new_roots"] = certificate_args(new_roots)
    if isinstance(existing, RootFromConfig):
        args["cert_pem"] = existing.cert_pem
        args["private_key_pem"] = pulumi.Output.secret(existing.key_pem)
        args["cert_source"] = "existingRoot.certPem"
        args["key_source"] = "existingRoot.keyPem"
        return args
    # A fingerprint pinned in config wins over the one recorded when the root was first adopted.
    expected = existing.sha256 if existing.sha256 is not None else adopted_sha256
    if expected is not None:
        args["expected_sha256"] = expected
    cluster = existing.cluster
    _reach(args, cluster, host)
    args["namespace"] = cluster.namespace
    args["secret_names"] = [ISTIOD_ROOT_SECRET]
    return args


def cluster_ca_args(
    cluster: ClusterSettings, root: Root, previous_name: str | None = None, host: HostCluster | None = None
) -> ClusterCAArgs:
    """`previous_name`: the entry's name before a rename (components/cluster_renames.py); `host`: the host
    stack's provider for the cluster, and the kubeconfig its takeover guard reads through."""
    args = ClusterCAArgs(
        **certificate_args(cluster.intermediate),
        # mypy's strict check wants ClusterCAArgs' optional keys in a ** item; they are set below.
        **cacerts_target_args(cluster, root.signer.cert_pem, root.trusted_root_pems, host),  # type: ignore[typeddict-item]
        issuer_private_key_pem=root.signer.private_key_pem,
        dns_names=list(cluster.dns_names),
    )
    args["renew_before_hours"] = cluster.renew_before_hours
    args["key_generation"] = cluster.key_generation
    if previous_name is not None:
        args["previous_name"] = previous_name
    return args


def cacerts_target_args(
    cluster: ClusterSettings,
    issuer_cert_pem: pulumi.Input[str],
    trusted_root_pems: pulumi.Input[Sequence[pulumi.Input[str]]],
    host: HostCluster | None = None,
) -> CacertsTargetArgs:
    """Where the cluster's `cacerts` goes, and the roots its takeover guard compares a found one with."""
    args = CacertsTargetArgs(
        cluster_name=cluster.name,
        issuer_cert_pem=issuer_cert_pem,
        trusted_root_pems=trusted_root_pems,
        namespace=cluster.namespace,
        create_namespace=cluster.create_namespace,
        retain_cacerts=cluster.retain_cacerts,
        replace_foreign_cacerts=cluster.replace_foreign_cacerts,
    )
    _reach(args, cluster, host)
    if cluster.render_directory is not None:
        args["render_directory"] = cluster.render_directory
    return args


def _reach(args: ExistingRootArgs | CacertsTargetArgs, cluster: ClusterSettings, host: HostCluster | None) -> None:
    """How a component reaches the cluster: its kubeconfig and context, or the host stack's provider (and the
    kubeconfig given with it, for the reads made before writing)."""
    if cluster.kubeconfig is not None:
        args["kubeconfig"] = provider_kubeconfig(cluster.kubeconfig)
    if host is not None:
        args["provider"] = host["provider"]
        if "kubeconfig" in host:
            args["kubeconfig"] = host["kubeconfig"]
    if cluster.context is not None:
        args["context"] = cluster.context


def workload_certs_args(workload: WorkloadSettings, root: Root) -> WorkloadCertsArgs:
    return WorkloadCertsArgs(
        # mypy's strict check wants the optional `key_generation` in the ** item; workloads keep generation 1.
        **certificate_args(workload.intermediate),  # type: ignore[typeddict-item]
        renew_before_hours=workload.intermediate_renew_before_hours,
        namespace=workload.namespace,
        issuer_cert_pem=root.signer.cert_pem,
        issuer_private_key_pem=root.signer.private_key_pem,
        trusted_root_pems=root.trusted_root_pems,
        dns_names=list(workload.dns_names),
        service_account=workload.service_account,
        trust_domain=workload.trust_domain,
        workload_common_name=workload.common_name,
        workload_validity_days=workload.validity_days,
        workload_renew_before_hours=workload.renew_before_hours,
    )


def provider_kubeconfig(path: str) -> pulumi.Input[str]:
    """The kubeconfig path, or its contents with relative file paths resolved as kubectl does (a secret)."""
    value = for_the_provider(path)
    return value if value == path else pulumi.Output.secret(value)


def root_settings_output(root: CertificateSettings) -> dict[str, object]:
    """The root settings as a stack output, so the next run can tell when they changed."""
    return {
        "org": root.organization,
        "commonName": root.common_name,
        "days": root.validity_days,
        "keyAlgorithm": root.key.algorithm,
        "keySize": root.key.size,
    }
