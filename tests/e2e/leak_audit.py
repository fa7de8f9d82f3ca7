"""Every private key an end-to-end run makes or uses, and every place it must never appear in plain text.

Keys are remembered where the tests meet them (a Secret read back, a config value piped to the CLI,
stack outputs read with --show-secrets), in any encoding istio_ca.private_keys reads. At the end of the
session `leaks` searches everything the CLI printed, the state backend (checkpoints, history, backups)
and the CLI's temporary directory for any whole private key in any of those encodings (PEM, escaped or
not, base64 at any depth, DER in base64), remembered or not, and for single body lines of the remembered
keys (a fragment printed without its armour). Files that hold a key by design (render and export
directories) must be mode 0600 in directories of mode 0700.
"""

from __future__ import annotations

import base64
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from istio_ca.private_keys import find_private_keys, holds_private_key

FULL_LINE = 64
"""Only whole base64 lines are searched for: a short last line could occur anywhere by chance."""
WRAP_WIDTHS = (64, 70, 76)
"""How a key's base64 is wrapped when printed: PEM, OpenSSH (ssh-keygen), MIME (`base64`)."""


@dataclass
class LeakAudit:
    keys: set[bytes] = field(default_factory=set)
    """The public keys (DER SubjectPublicKeyInfo) of the private keys seen: one per key, whatever its encoding."""
    key_lines: set[str] = field(default_factory=set)
    """The first FULL_LINE characters of each line of the remembered keys' base64, wrapped as it is printed."""
    transcripts: list[str] = field(default_factory=list)
    key_directories: set[Path] = field(default_factory=set)
    """Directories whose files may hold keys by design (render, export)."""
    plain_places: set[Path] = field(default_factory=set)
    """Directories where no key may be in plain text: the backend, temporary files, project copies."""

    def remember(self, value: Any) -> None:
        """Remember every private key in a string, in any encoding, or in the strings of a nested value."""
        if isinstance(value, str):
            for found in find_private_keys(value):
                self.keys.add(found.public_key)
                public = _public_texts(found.public_key)
                lines = _lines(base64.b64encode(found.encoding).decode())
                # A line of public material alone (the public point, in every certificate and CSR of the key): no leak.
                self.key_lines |= {line for line in lines if not any(line in text for text in public)}
        elif isinstance(value, dict):
            for item in value.values():
                self.remember(item)
        elif isinstance(value, list):
            for item in value:
                self.remember(item)

    def remember_key_files(self) -> None:
        """Keys written to render and export directories are keys of this run too (a rendered Secret's
        base64 `data` included)."""
        for path in _files(self.key_directories):
            self.remember(path.read_text(errors="replace"))

    def exposes(self, text: str) -> bool:
        """Whether `text` holds a whole private key (any, in any encoding) or a line of a remembered one."""
        return holds(text, self.key_lines) or holds_private_key(text)

    def leaks(self) -> list[str]:
        """Where a key shows up: transcripts, and every file below the plain places."""
        found = [f"CLI output #{index}" for index, text in enumerate(self.transcripts) if self.exposes(text)]
        for path in _files(self.plain_places):
            by_design = any(path.is_relative_to(directory) for directory in self.key_directories)
            if not by_design and self.exposes(path.read_text(errors="replace")):
                found.append(str(path))
        return found

    def loose_key_files(self) -> list[str]:
        """Files holding a key, or their directories, that others could read."""
        loose = []
        for directory in self.key_directories:
            for path in _files([directory]):
                if self.exposes(path.read_text(errors="replace")):
                    if stat.S_IMODE(path.stat().st_mode) != 0o600:
                        loose.append(f"{path} is mode {stat.S_IMODE(path.stat().st_mode):o}")
                    for parent in [path.parent, *path.parent.parents]:
                        if parent == directory.parent:
                            break
                        if stat.S_IMODE(parent.stat().st_mode) & 0o077:
                            loose.append(f"{parent} is mode {stat.S_IMODE(parent.stat().st_mode):o}")
        return sorted(set(loose))


def _files(places: Iterable[Path]) -> list[Path]:
    """Regular files below the places, symlinks (the linked virtualenv) not followed."""
    found = []
    for place in places:
        for directory, _, names in os.walk(place):
            found += [Path(directory, name) for name in names if not Path(directory, name).is_symlink()]
    return sorted(found)


def _public_texts(public_key_der: bytes) -> list[str]:
    """The public key's base64 as any text may hold it: its DER and its OpenSSH blob, at each byte alignment."""
    blobs = [public_key_der]
    key = serialization.load_der_public_key(public_key_der)
    if isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
        openssh = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        blobs.append(base64.b64decode(openssh.split()[1]))
    return [base64.b64encode(blob[shift:]).decode() for blob in blobs for shift in range(3)]


def _lines(encoded: str) -> set[str]:
    """The lines of a key's base64 as each of WRAP_WIDTHS wraps it, those of FULL_LINE characters or more cut
    to FULL_LINE: what `holds` reads of each printed line."""
    return {
        encoded[start : start + FULL_LINE]
        for width in WRAP_WIDTHS
        for start in range(0, len(encoded) - FULL_LINE + 1, width)
    }


BASE64_RUN = re.compile(rf"[A-Za-z0-9+/=]{{{FULL_LINE},}}")


def holds(text: str, lines: set[str]) -> bool:
    """Whether `text` holds one of the key lines: on a line of its own, after an escaped newline (JSON),
    or within a run of base64 whose newlines were dropped. One pass over the text, whatever the number
    of keys: every key line starts a run or a 64-character step of one."""
    for run in BASE64_RUN.findall(text.replace("\\n", "\n")):
        if any(run[start : start + FULL_LINE] in lines for start in range(0, len(run) - FULL_LINE + 1, FULL_LINE)):
            return True
    return False


AUDIT = LeakAudit()
