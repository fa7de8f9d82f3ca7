"""What a kubeconfig file says, read as kubectl reads it: the API server a context points at, and its
file references resolved from the kubeconfig's own directory.

The Kubernetes provider resolves a relative `certificate-authority` (or client certificate, key, token
file) from the directory Pulumi runs in; kubectl, and the program's own reads, from the kubeconfig's.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from typing import IO, Any

import yaml

FILE_FIELDS = {
    "clusters": ("cluster", ("certificate-authority",)),
    "users": ("user", ("client-certificate", "client-key", "tokenFile")),
}
"""Where a kubeconfig refers to files, by section: the entry's key, and its path fields."""
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader where PyYAML has it (its wheels do): a kubeconfig parses ten times faster."""


def parse(kubeconfig: str | IO[str]) -> Any:
    """A kubeconfig's document, from its contents or an open file."""
    return yaml.load(kubeconfig, Loader=YAML_LOADER)


def kubeconfig_server(document: Mapping[str, Any], context: str) -> str | None:
    """The `server` of the cluster `context` names, or None when the kubeconfig has none."""
    entries = {e.get("name"): e.get("context") or {} for e in document.get("contexts") or [] if isinstance(e, dict)}
    cluster_name = entries.get(context, {}).get("cluster")
    for entry in document.get("clusters") or []:
        if isinstance(entry, dict) and entry.get("name") == cluster_name:
            server = (entry.get("cluster") or {}).get("server")
            return str(server) if server else None
    return None


def for_the_provider(path: str) -> str:
    """What to hand the Kubernetes provider for the kubeconfig at `path`: the path itself, unless it holds
    relative file references the provider would resolve elsewhere; then its contents with those resolved
    from the kubeconfig's directory (a secret: it may hold credentials)."""
    directory = os.path.dirname(path)
    if directory == os.getcwd():
        return path  # the provider resolves from here too, as every stack made before did
    with open(path, encoding="utf-8") as stream:
        document = parse(stream) or {}
    resolved = copy.deepcopy(document)
    changed = False
    for section, (entry_key, fields) in FILE_FIELDS.items():
        for entry in resolved.get(section) or []:
            inner = entry.get(entry_key) if isinstance(entry, dict) else None
            if not isinstance(inner, dict):
                continue
            for field in fields:
                value = inner.get(field)
                if isinstance(value, str) and value and not os.path.isabs(value):
                    inner[field] = os.path.join(directory, os.path.expanduser(value))
                    changed = True
    return yaml.safe_dump(resolved) if changed else path
