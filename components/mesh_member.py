"""The cluster half of a split layout: one cluster's intermediate key and CSR, made and kept in that cluster's
own stack, and its `cacerts` once the PKI stack (MeshPKI) has signed the request.

The key never leaves this stack: the PKI reads the CSR from this component's record and records the
certificate in its own; this component reads that back and writes `cacerts` only when the certificate
is for its key.
"""

from collections.abc import Mapping
from functools import partial
from typing import Any, NotRequired, TypedDict

import pulumi
import pulumi_tls as tls
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from istio_ca.cacerts import CacertsError, Target, read_live, stack_owner
from istio_ca.certificate import key_and_request
from istio_ca.cluster_ca import HostCluster, cacerts_secret
from istio_ca.cluster_trust import applied_trust, fingerprints, read_live_cacerts
from istio_ca.component_args import cacerts_target_args, certificate_args
from istio_ca.config import parse_settings
from istio_ca.config_schema import MeshConfig
from istio_ca.file_export import component_layout, export_when_applied, protect_render_directories
from istio_ca.kube_api import Unreachable
from istio_ca.mesh_pki import MESH_MEMBER_TYPE, PKI_EXCHANGE, PKI_ONLY
from istio_ca.outputs import published_files, register_declared_outputs
from istio_ca.pem import certificate_pem, certificates_in
from istio_ca.plain_values import as_input, plain, plain_mesh
from istio_ca.profiles import INTERMEDIATE_CA
from istio_ca.settings import ClusterSettings, StackSettings
from istio_ca.stack_exchange import read_exchange, text_at
from istio_ca.stack_state import component_record, qualified_type, read_last_resources
from istio_ca.validation import ConfigError


class MeshMemberArgs(TypedDict):
    """One cluster of a split layout, and where its PKI is."""

    mesh: MeshConfig
    """The cluster in MeshCA's keys: `clusters` with this one cluster (its kubeconfig, or none with
    `host_cluster`), and `intermediate` and `istioNamespace` as the PKI stack has them."""
    pki_stack: str
    """The PKI stack, `organization/project/stack`, which exports its MeshPKI's `exchange` as `istioCaPki`."""
    host_cluster: NotRequired[HostCluster]
    """The host stack's provider for the cluster (see MeshCA); its `kubeconfig`, when given, lets this
    component check a new trust bundle against the one the cluster holds before writing it."""


class MeshMember(pulumi.ComponentResource):
    """A cluster's key and CSR, and its `cacerts` once the PKI stack signed the CSR."""

    csr_pem: pulumi.Output[str]
    """The certificate signing request of the cluster's intermediate, PEM: what the PKI stack reads."""
    applied_roots: pulumi.Output[dict[str, Any]]
    """What the written `cacerts` holds, by SHA-256 fingerprints: `trusted` and `issuer` (empty before)."""
    cacerts_uid: pulumi.Output[str]
    """The applied Secret's uid; empty until the PKI stack has signed this cluster's request."""
    cacerts_key_generation: pulumi.Output[int]
    """The key generation whose key `cacerts` holds (0 before one is written): that key stays in the
    state until the PKI stack has signed the next generation's request."""
    exchange: pulumi.Output[dict[str, Any]]
    """What the PKI stack reads: export it as the stack output `istioCaMember`. Public values only."""

    def __init__(self, name: str, args: MeshMemberArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        host: HostCluster | None = as_input(args.get("host_cluster"), "host_cluster")
        settings = _member_settings(name, plain_mesh(args["mesh"]), host)
        cluster = settings.clusters[0]
        held = _held_key_generation(name, opts, cluster)
        signed = _signed(name, plain(args["pki_stack"], "pki_stack"), cluster, host)

        super().__init__(MESH_MEMBER_TYPE, name, None, opts)
        protect_render_directories([cluster])
        keys: dict[int, tls.PrivateKey] = {}
        requests: dict[int, tls.CertRequest] = {}
        for generation in sorted({held, cluster.key_generation} - {0}):
            keys[generation], requests[generation] = key_and_request(
                # `<cluster>-key` for generation 1, as the single stack names it; `<cluster>-g2-key` after.
                name if generation == 1 else f"{name}-g{generation}",
                args=certificate_args(cluster.intermediate),
                profile=INTERMEDIATE_CA,
                locality=name,
                dns_names=list(cluster.dns_names),
                parent=self,
            )
        self.csr_pem = requests[cluster.key_generation].cert_request_pem
        self.applied_roots = pulumi.Output.from_input({"trusted": [], "issuer": None})
        self.cacerts_uid = pulumi.Output.from_input("")
        self.cacerts_key_generation = pulumi.Output.from_input(held)
        trust: pulumi.Output[dict[str, Any]] = pulumi.Output.from_input({})
        if signed is not None:
            trust = self._write_cacerts(name, cluster, signed, keys, host, opts, settings.export_directory)
        # What the written cacerts holds: the PKI's rotation gate reads it.
        self.exchange = pulumi.Output.all(cluster=name, csrPem=self.csr_pem, trust=trust)
        register_declared_outputs(self)

    def _write_cacerts(
        self,
        name: str,
        cluster: ClusterSettings,
        signed: Mapping[str, str],
        keys: Mapping[int, tls.PrivateKey],
        host: HostCluster | None,
        opts: pulumi.ResourceOptions | None,
        export_directory: str | None,
    ) -> pulumi.Output[dict[str, Any]]:
        """`cacerts` with the PKI's certificate and the key it is for; what it holds once written."""
        where = f"stack {signed['pki_stack']}, output {PKI_EXCHANGE}"
        certificate = signed["cert"]
        # The key the PKI's certificate is for: the new generation's once signed, the held one until then.
        chosen = pulumi.Output.all(
            *(key.public_key_pem.apply(lambda pem, g=g: (g, pem)) for g, key in keys.items())
        ).apply(lambda pairs: _generation_for(certificate, dict(pairs), name, where))
        key_pem = pulumi.Output.all(chosen, *(key.private_key_pem for key in keys.values())).apply(
            lambda values: values[1 + list(keys).index(values[0])]
        )
        files = published_files(
            {
                "ca-cert.pem": certificate,
                "ca-key.pem": pulumi.Output.secret(key_pem),
                "root-cert.pem": signed["roots"],
                "cert-chain.pem": signed["chain"],
            }
        )
        if host is not None and "kubeconfig" in host:
            # Read the cluster through the host's kubeconfig once it is known (at `up`, if unknown in preview).
            checked = pulumi.Output.from_input(host["kubeconfig"]).apply(
                lambda kubeconfig: refuse_a_bundle_that_skips_a_phase(
                    cluster,
                    signed["roots"],
                    Target(name, kubeconfig, cluster.context, cluster.namespace, stack_owner()),
                )
            )
            files = pulumi.Output.all(files, checked).apply(lambda values: values[0])
        roots = [certificate_pem(root) for root in certificates_in(signed["roots"])]
        target = cacerts_target_args(cluster, signed["issuer"], roots, host)
        secret = cacerts_secret(self, name, target, opts, files, lambda part: None)
        self.cacerts_uid = secret.metadata.apply(lambda metadata: metadata.uid or "")
        written = pulumi.Output.unsecret(secret.data.apply(applied_trust))
        self.applied_roots = written.apply(
            lambda trust: trust.to_output() if trust else {"trusted": [], "issuer": None}
        )
        self.cacerts_key_generation = pulumi.Output.all(chosen, self.cacerts_uid).apply(lambda values: values[0])
        if export_directory is not None:
            # This cluster's files alone, as the Makefile lays them out, once its cacerts is written.
            export_when_applied(
                export_directory,
                roots,
                [files.apply(partial(component_layout, name))],
                applied=[self.cacerts_uid],
            )
        return written.apply(lambda trust: trust.to_report() if trust else {})


def _member_settings(name: str, mesh: Mapping[str, Any], host: HostCluster | None) -> StackSettings:
    """The one cluster of a member, refusing what belongs to the PKI stack."""
    for key in PKI_ONLY:
        if key in mesh:
            raise ConfigError(f"{key}: set on the PKI stack's mesh (MeshPKI), not a cluster's")
    settings = parse_settings(mesh, frozenset([name]) if host is not None else frozenset())
    if [cluster.name for cluster in settings.clusters] != [name]:
        raise ConfigError(f"clusters: a MeshMember holds one cluster, {name!r}")
    return settings


def _held_key_generation(name: str, opts: pulumi.ResourceOptions | None, cluster: ClusterSettings) -> int:
    """The key generation cacerts holds, as this component recorded it: kept until its successor is signed."""
    record = component_record(
        read_last_resources(), qualified_type(MESH_MEMBER_TYPE, opts.parent if opts else None), name
    )
    held = int((record[1] if record else {}).get("cacerts_key_generation") or 0)
    if cluster.key_generation < held:
        raise ConfigError(
            f"clusters[0].keyGeneration is {cluster.key_generation}, lower than the {held} cacerts holds: "
            f"only raise it (to {held + 1} for a new key)"
        )
    return held


def _signed(name: str, pki_stack: str, cluster: ClusterSettings, host: HostCluster | None) -> dict[str, str] | None:
    """The PKI's certificate for this cluster, its chain and the roots, once it has signed; the bundle is
    checked against the one the cluster holds where it can be read now."""
    where = f"stack {pki_stack}, output {PKI_EXCHANGE}"
    pki = read_exchange(pki_stack, PKI_EXCHANGE)
    if pki is None or name not in (pki.get("clusters") or {}):
        pulumi.log.warn(
            f"{name}: stack {pki_stack} has not signed this cluster's request yet: run it next, then this stack"
        )
        return None
    signed = {
        "pki_stack": pki_stack,
        "cert": text_at(pki, ("clusters", name, "certPem"), where),
        "chain": text_at(pki, ("clusters", name, "certChainPem"), where),
        "roots": text_at(pki, ("trustedRootsPem",), where),
        "issuer": text_at(pki, ("rootCertPem",), where),
    }
    if cluster.kubeconfig is not None:
        live = read_live_cacerts([cluster], stack_owner()).get(cluster.name)
        held = live.files.get("root-cert.pem", "") if live is not None and live.exists else ""
        _refuse_a_skipped_phase(cluster.name, held, signed["roots"])
    elif host is None and pulumi.runtime.is_dry_run():
        pulumi.log.warn(
            f"{name} is rendered, so its trust bundle cannot be checked against the one the cluster holds: apply "
            "its manifests only once the cluster holds the bundle before (every phase of a rotation in turn)"
        )
    elif host is not None and "kubeconfig" not in host and pulumi.runtime.is_dry_run():
        pulumi.log.warn(
            f"{name} is reached through the host's provider alone, so its trust bundle cannot be checked against "
            "the one the cluster holds: give host_cluster a kubeconfig"
        )
    return signed


def refuse_a_bundle_that_skips_a_phase(cluster: ClusterSettings, bundle: str, target: Target) -> bool:
    """_refuse_a_skipped_phase against the cluster `target` reaches (a host cluster); True once checked."""
    try:
        live = read_live(target)
    except Unreachable:
        return True  # the write fails against a cluster that does not answer; nothing is lost
    _refuse_a_skipped_phase(cluster.name, live.files.get("root-cert.pem", "") if live.exists else "", bundle)
    return True


def _refuse_a_skipped_phase(cluster: str, held_bundle: str, bundle: str) -> None:
    """A `cacerts` goes from one trust bundle to one that holds it or that it holds (a rotation's phase),
    never to another: istiod would drop every workload signed under the roots it no longer trusts."""
    held = set(fingerprints([certificate_pem(c) for c in certificates_in(held_bundle)]))
    given = set(fingerprints([certificate_pem(c) for c in certificates_in(bundle)]))
    if held and not (held <= given or given <= held):
        raise CacertsError(
            f"{cluster}: the PKI stack's trust bundle ({sorted(given)}) neither holds nor is held by the one "
            f"cacerts holds now ({sorted(held)}); writing it would cut workloads off: cacerts is not written"
        )


def _generation_for(cert_pem: str, public_keys: dict[int, str], cluster: str, where: str) -> int:
    """The key generation the signed certificate is for; refused when it is for none of this cluster's keys."""
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    given = cert.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    for generation, public_key_pem in public_keys.items():
        if given.decode().strip() == public_key_pem.strip():
            return generation
    raise CacertsError(
        f"{cluster}: the certificate {where} holds is for another key than this cluster's; cacerts is not "
        "written: run that stack, then this one"
    )
