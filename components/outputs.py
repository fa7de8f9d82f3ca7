"""Glue every component shares: registering the outputs it declares, and the files it publishes.

A component declares its outputs once, as annotated class attributes with a docstring each (the form
Pulumi's component-provider analyzer reads); `register_declared_outputs` registers exactly those.
Which published file is a key is decided here once: its Pulumi output is a secret, and on disk it is
written mode 0600.
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi

KEY_FILES = frozenset({"ca-key.pem", "key.pem"})
"""The files, of every component, that hold a private key."""


def is_key_file(name: str) -> bool:
    return name in KEY_FILES


def published_files(files: Mapping[str, pulumi.Input[str]]) -> pulumi.Output[dict[str, str]]:
    """The files a component publishes, by name; a secret, since some of them are keys."""
    return pulumi.Output.secret(pulumi.Output.all(**files))


def register_declared_outputs(component: pulumi.ComponentResource) -> None:
    """register_outputs with every output the component's class declares, and nothing else."""
    names = type(component).__annotations__
    component.register_outputs({name: getattr(component, name) for name in names})
