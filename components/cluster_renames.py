"""A cluster entry renamed in the config is the same cluster: its resources move to the new name.

Without this, renaming an entry creates the new entry's `cacerts` and then deletes the old entry's,
which with `retainCacerts: false` is the same object: the cluster is left without one. The old entry
is recognised in the state by what it wrote to: the same API server and Istio namespace.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from istio_ca.cluster_trust import SECRET_TYPE_TOKEN
from istio_ca.kubeconfig import kubeconfig_server, parse
from istio_ca.settings import ClusterSettings

CLUSTER_CA_TYPE_TOKEN = "istio-ca:index:ClusterCA"
PROVIDER_TYPE_TOKEN = "pulumi:providers:kubernetes"


def renamed_from(clusters: Sequence[ClusterSettings], resources: Mapping[str, Any]) -> dict[str, str]:
    """The old name of each entry that is new to the state but writes where a departed entry wrote."""
    by_name: dict[tuple[str, str], dict[str, Any]] = {}
    for urn, resource in resources.items():
        by_name[(str(resource.get("type")), urn.rsplit("::", 1)[-1])] = resource.get("outputs") or {}
    recorded = {name for kind, name in by_name if kind == CLUSTER_CA_TYPE_TOKEN}
    wanted = {cluster.name for cluster in clusters}
    departed: dict[tuple[str, str], str] = {}
    for name in sorted(recorded - wanted):
        target = _recorded_target(by_name, name)
        if target is not None:
            departed.setdefault(target, name)
    return {
        cluster.name: departed[(cluster.server, cluster.namespace)]
        for cluster in clusters
        if cluster.name not in recorded
        and cluster.server is not None
        and (cluster.server, cluster.namespace) in departed
    }


def _recorded_target(by_name: Mapping[tuple[str, str], Mapping[str, Any]], name: str) -> tuple[str, str] | None:
    """(API server, namespace) the entry `name` wrote its `cacerts` to, as the state recorded them."""
    provider = by_name.get((PROVIDER_TYPE_TOKEN, f"{name}-k8s"))
    secret = by_name.get((SECRET_TYPE_TOKEN, f"{name}-cacerts"))
    if not provider or not secret:
        return None
    namespace = (secret.get("metadata") or {}).get("namespace")
    kubeconfig = provider.get("kubeconfig")
    if not isinstance(kubeconfig, str) or not isinstance(namespace, str):
        return None
    try:
        if os.path.isfile(kubeconfig):
            with open(kubeconfig, encoding="utf-8") as stream:
                document = parse(stream)
        else:
            document = parse(kubeconfig)
    except (OSError, yaml.YAMLError):
        return None
    if not isinstance(document, dict):
        return None
    context = provider.get("context") or document.get("current-context")
    server = kubeconfig_server(document, str(context)) if context else None
    return (server, namespace) if server else None
