"""Every private key an end-to-end run makes or uses, and every place it must never appear in plain text.

Keys are remembered where the tests meet them (a Secret read back, a config value piped to the CLI,
stack outputs read with --show-secrets); at the end of the session `audit` searches for each key's
body lines, not only for a PEM header, in everything the CLI printed, the state backend (checkpoints,
history, backups) and the CLI's temporary directory. Files that hold a key by design (render and
export directories) must be mode 0600 in directories of mode 0700.
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

KEY_BLOCK = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----\n(.+?)\n-----END [A-Z ]*PRIVATE KEY-----", re.DOTALL)
FULL_LINE = 64
"""Only whole base64 lines are searched for: a short last line could occur anywhere by chance."""


@dataclass
class LeakAudit:
    keys: set[str] = field(default_factory=set)
    transcripts: list[str] = field(default_factory=list)
    key_directories: set[Path] = field(default_factory=set)
    """Directories whose files may hold keys by design (render, export)."""
    plain_places: set[Path] = field(default_factory=set)
    """Directories where no key may be in plain text: the backend, temporary files, project copies."""

    def remember(self, value: Any) -> None:
        """Remember every key block in a string, or in the strings of a nested value."""
        if isinstance(value, str):
            self.keys |= {match.group(1) for match in KEY_BLOCK.finditer(value)}
        elif isinstance(value, dict):
            for item in value.values():
                self.remember(item)
        elif isinstance(value, list):
            for item in value:
                self.remember(item)

    def remember_key_files(self) -> None:
        """Keys written to render and export directories are keys of this run too."""
        for path in _files(self.key_directories):
            self.remember(path.read_text(errors="replace"))
            if path.suffix == ".yaml":  # a rendered Secret holds its files base64-encoded
                for encoded in re.findall(r"^\s+[\w.-]+: ([A-Za-z0-9+/=]{100,})$", path.read_text(), re.MULTILINE):
                    self.remember(base64.b64decode(encoded).decode(errors="replace"))

    def key_lines(self) -> set[str]:
        return {line for body in self.keys for line in body.splitlines() if len(line) == FULL_LINE}

    def leaks(self) -> list[str]:
        """Where a key line shows up: transcripts, and every file below the plain places."""
        lines = self.key_lines()
        found = [f"CLI output #{index}" for index, text in enumerate(self.transcripts) if holds(text, lines)]
        for path in _files(self.plain_places):
            by_design = any(path.is_relative_to(directory) for directory in self.key_directories)
            if not by_design and holds(path.read_text(errors="replace"), lines):
                found.append(str(path))
        return found

    def loose_key_files(self) -> list[str]:
        """Files holding a key, or their directories, that others could read."""
        lines = self.key_lines()
        loose = []
        for directory in self.key_directories:
            for path in _files([directory]):
                if holds(path.read_text(errors="replace"), lines):
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
