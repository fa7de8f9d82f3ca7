"""The Makefile's files on disk, for scripts and GitOps flows that expect them (opt-in).

After `pulumi up` the layout of Makefile.selfsigned.mk is written under one directory:
`root-cert.pem`, `<cluster>/{ca-cert,ca-key,cert-chain,root-cert}.pem` and
`<namespace>/{key,workload-cert,workload-cert-chain,root-cert,ca-cert,ca-key}.pem`.
The root key is never written. A manifest remembers what was written, so the files of a
cluster or namespace dropped from the config are removed, and nothing else ever is.
"""

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pulumi

from istio_ca.certificate import pem_bundle
from istio_ca.outputs import is_key_file
from istio_ca.settings import ClusterSettings

MANIFEST = ".istio-ca-files.json"
KEY_MODE = 0o600
CERT_MODE = 0o644
DIRECTORY_MODE = 0o700
GIT_IGNORE_ALL = "# Written by istio-ca: these files hold CA keys and are never to be committed.\n*\n"

Layout = Mapping[str, tuple[str, int]]
"""Relative path -> (content, file mode)."""


def component_layout(directory: str, files: Mapping[str, str]) -> dict[str, tuple[str, int]]:
    """`<cluster>/` as `<cluster>-cacerts` writes it, or `<namespace>/` as `<namespace>-certs` does:
    the component's published files, keys owner-only."""
    return {
        f"{directory}/{file}": (content, KEY_MODE if is_key_file(file) else CERT_MODE)
        for file, content in files.items()
    }


def write_layout(directory: Path, layout: Layout) -> None:
    """Write every file of the layout and remove those a previous run wrote that it lacks."""
    protect_directory(directory)
    manifest = directory / MANIFEST
    previous = set(json.loads(manifest.read_text())) if manifest.exists() else set()
    for relative, (content, mode) in layout.items():
        write_file(directory / relative, content, mode)
    for relative in sorted(previous - set(layout)):
        stale = directory / relative
        stale.unlink(missing_ok=True)
        if stale.parent != directory and not any(stale.parent.iterdir()):
            stale.parent.rmdir()
    write_file(manifest, json.dumps(sorted(layout), indent=1) + "\n", CERT_MODE)


def write_file(path: Path, content: str, mode: int) -> None:
    """Replace the file whole, created with its final mode, so a key is never readable by others."""
    path.parent.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
        stream.write(content)
    os.chmod(temporary, mode)  # the umask may have narrowed it
    os.replace(temporary, path)


def protect_directory(directory: Path) -> None:
    """A directory that will hold keys: readable by its owner only, and ignored by git, so no key is
    committed by accident (a custom render or export directory inside a repository, say). Parents it
    creates are the owner's only too (the default `rendered/` holds every cluster's directory); parents
    that exist keep their mode."""
    created = [path for path in (directory, *directory.parents) if not path.exists()]
    directory.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    for path in (directory, *created):
        os.chmod(path, DIRECTORY_MODE)
    ignore = directory / ".gitignore"
    if not ignore.exists():
        write_file(ignore, GIT_IGNORE_ALL, CERT_MODE)


def protect_render_directories(clusters: Sequence[ClusterSettings]) -> None:
    """Each rendered cluster's directory, before `up` writes a key there (a preview writes nothing)."""
    if pulumi.runtime.is_dry_run():
        return
    for cluster in clusters:
        if cluster.render_directory is not None:
            protect_directory(Path(cluster.render_directory))


def export_when_applied(
    directory: str,
    trusted_root_pems: pulumi.Input[Sequence[str]],
    layouts: list[pulumi.Output[Any]],
    applied: list[pulumi.Output[Any]],
) -> None:
    """Write the files once `pulumi up` has applied every `cacerts` (`applied` resolves only then), so the
    files never differ from what the clusters hold; previews and failed runs write nothing."""
    if pulumi.runtime.is_dry_run():
        return

    def write(values: dict[str, Any]) -> None:
        layout: dict[str, tuple[str, int]] = {"root-cert.pem": (pem_bundle(values["roots"]), CERT_MODE)}
        for part in values["layouts"]:
            layout.update(part)
        write_layout(Path(directory), layout)

    pulumi.Output.all(
        roots=trusted_root_pems, layouts=pulumi.Output.all(*layouts), applied=pulumi.Output.all(*applied)
    ).apply(write)
