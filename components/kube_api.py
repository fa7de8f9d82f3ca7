"""Direct reads from a cluster's API server, for the checks that must happen before Pulumi acts.

The Kubernetes provider cannot tell the program whether an object exists, or what it holds, before
it plans to write it; these reads can. A cluster that does not answer raises `Unreachable` with one
line naming its API server, never a traceback.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import urllib3
from kubernetes import client as kube_client
from kubernetes.config.kube_config import KubeConfigLoader

from istio_ca.kubeconfig import parse

REQUEST_TIMEOUT_SECONDS = 15


class Unreachable(Exception):
    """The API server did not answer."""


_clients: dict[tuple[str, str | None], kube_client.ApiClient] = {}
"""One client per kubeconfig and context for the program's run: the first read of every cluster and its
takeover guard share a connection, and a credential plugin (`exec`) runs once per cluster, not per read."""


@contextmanager
def api_client(kubeconfig: str, context: str | None) -> Iterator[kube_client.ApiClient]:
    """A client for the cluster a kubeconfig (a path, or its contents) and context point at."""
    key = (kubeconfig, context)
    api = _clients.get(key) or _clients.setdefault(key, _new_client(kubeconfig, context))
    server = api.configuration.host
    try:
        yield api
    except (urllib3.exceptions.HTTPError, OSError) as error:
        reason = getattr(error, "reason", None) or error
        raise Unreachable(f"the API server {server} did not answer ({str(reason).rsplit(': ', 1)[-1]})") from None


def _new_client(kubeconfig: str, context: str | None) -> kube_client.ApiClient:
    """As kubectl reads the kubeconfig: file references from its own directory (or, for contents, from here)."""
    base = ""
    if os.path.isfile(kubeconfig):
        base = os.path.dirname(os.path.abspath(kubeconfig))
        with open(kubeconfig, encoding="utf-8") as stream:
            kubeconfig = stream.read()
    configuration = kube_client.Configuration()
    loader = KubeConfigLoader(config_dict=parse(kubeconfig), active_context=context, config_base_path=base)  # type: ignore[no-untyped-call]
    loader.load_and_set(configuration)  # type: ignore[no-untyped-call]
    configuration.retries = 1
    return kube_client.ApiClient(configuration)
