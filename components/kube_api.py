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
import yaml
from kubernetes import client as kube_client
from kubernetes import config as kube_config

REQUEST_TIMEOUT_SECONDS = 15


class Unreachable(Exception):
    """The API server did not answer."""


@contextmanager
def api_client(kubeconfig: str, context: str | None) -> Iterator[kube_client.ApiClient]:
    """A client for the cluster a kubeconfig (a path, or its contents) and context point at."""
    if os.path.isfile(kubeconfig):
        api = kube_config.new_client_from_config(config_file=kubeconfig, context=context)  # type: ignore[no-untyped-call]
    else:
        config = yaml.safe_load(kubeconfig)
        api = kube_config.new_client_from_config_dict(config, context=context)  # type: ignore[no-untyped-call]
    server = api.configuration.host
    api.configuration.retries = 1
    try:
        with api:
            yield api
    except (urllib3.exceptions.HTTPError, OSError) as error:
        reason = getattr(error, "reason", None) or error
        raise Unreachable(f"the API server {server} did not answer ({str(reason).rsplit(': ', 1)[-1]})") from None
