"""Private keys in any text, in every encoding one could leak in, for the checks that no key is in plain text.

A key leaks as PEM (any private key label: PKCS#8, PKCS#1, SEC1, OpenSSH), with its newlines escaped
(JSON) or dropped; as base64 of text that holds one (a Secret's `data`, again inside a JSON string, base64
of base64 ...); or as its DER in base64 without armour. One pass over the text finds the candidates: PEM
blocks with a private key label, and runs of base64 (a wrapped run's lines joined). Only a decoded run that
starts like a private key (a DER SEQUENCE whose first field is a version INTEGER, or OpenSSH's magic) is
handed to `cryptography`; one that decodes to text is searched again, down to MAX_DEPTH. Certificates,
CSRs and public keys start otherwise and are never parsed. Keys are named by their public key, so the
PEM, PKCS#8 and OpenSSH forms of one key are one key. Nothing here prints or logs what it reads.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Iterator
from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_der_private_key,
    load_ssh_private_key,
)
from cryptography.hazmat.primitives.serialization.ssh import SSHPrivateKeyTypes

MAX_DEPTH = 8
"""How many times base64-encoded text is decoded and searched again; each level is 3/4 of the one above."""
MIN_RUN = 64
"""Base64 characters of the smallest key (Ed25519 or X25519 PKCS#8, 48 bytes); shorter runs are skipped."""
MAX_PEM_BODY = 1 << 16
"""How far past a BEGIN line its END line is looked for (a 16384-bit RSA key's PEM is under 13 kB)."""
MAX_WRAP = 128
"""A run's lines are one wrapped value only up to this width (PEM wraps at 64, OpenSSH at 70, MIME at 76);
longer lines one after another are separate values, as in `kubectl get secret -o yaml`."""

_B64 = "[A-Za-z0-9+/]"
PEM_BEGIN = re.compile(r"-----BEGIN ((?:[A-Z0-9]+ )*PRIVATE KEY)-----")
BASE64_RUN = re.compile(
    rf"{_B64}{{16,}}={{0,2}}"
    # Further lines of a wrapped value: alone on their line, or closed by a quote or an END line.
    rf"(?:[ \t]*\r?\n[ \t]*{_B64}+={{0,2}}(?=[ \t]*(?:\r?\n|\Z)|[\"'<,;)}}\]-]))*"
)
ESCAPED_BREAK = re.compile(r"\\+[nrt]")
"""A newline as JSON prints it, or JSON inside a JSON string (`\\\\n`): no base64 holds a backslash."""
ESCAPED_SLASH = re.compile(r"\\+/")
PEM_BASE64 = re.compile(rf"{_B64}+={{0,2}}")
OPENSSH_MAGIC = b"openssh-key-v1\0"
OPENSSH_LABEL = b"OPENSSH PRIVATE KEY"
"""The PEM label `cryptography` wants around an OpenSSH key found without its armour."""
PRIVATE_KEY_VERSIONS = (b"\x02\x01\x00", b"\x02\x01\x01")
"""INTEGER 0 or 1, the first field of PKCS#8 (v1, v2), PKCS#1 and SEC1; a certificate, CSR or public key
starts with a SEQUENCE instead, an encrypted PKCS#8 key too."""


@dataclass(frozen=True)
class FoundKey:
    """One private key found: `public_key` names it whatever its encoding; `encoding` is its DER
    (PKCS#8, PKCS#1 or SEC1) or OpenSSH bytes as found, for callers that search for fragments of it."""

    public_key: bytes
    """DER SubjectPublicKeyInfo."""
    encoding: bytes


def find_private_keys(text: str) -> set[FoundKey]:
    """Every unencrypted private key in `text`, in each encoding it was found in."""
    return set(_keys_in(text, 0, set()))


def private_keys_in(text: str) -> set[bytes]:
    """The public keys (DER SubjectPublicKeyInfo) of the private keys in `text`: one per key, whatever
    its encoding or how often it occurs."""
    return {found.public_key for found in _keys_in(text, 0, set())}


def holds_private_key(text: str) -> bool:
    """Whether `text` holds any private key; stops at the first."""
    return next(_keys_in(text, 0, set()), None) is not None


def _keys_in(text: str, depth: int, seen: set[str]) -> Iterator[FoundKey]:
    """The keys in PEM blocks first, then in every base64 run; `seen` keeps a run from being decoded twice."""
    text = ESCAPED_BREAK.sub("\n", text)
    if "\\" in text:
        text = ESCAPED_SLASH.sub("/", text)
    for begin in PEM_BEGIN.finditer(text):
        # Up to the next BEGIN line at most, so that many BEGIN lines without an END are one pass too.
        stop = text.find("-----BEGIN ", begin.end(), begin.end() + MAX_PEM_BODY)
        stop = begin.end() + MAX_PEM_BODY if stop < 0 else stop
        end = text.find(f"-----END {begin.group(1)}-----", begin.end(), stop)
        if end >= 0:
            body = "".join(text[begin.end() : end].split())
            if PEM_BASE64.fullmatch(body):  # not an encrypted key's headers
                yield from _keys_in_base64(body, depth, seen)
    for run in BASE64_RUN.finditer(text):
        for value in _values(run.group()):
            yield from _keys_in_base64(value, depth, seen)


def _values(run: str) -> list[str]:
    """The base64 values in a run: its lines joined when they are one wrapped value, else each line."""
    lines = run.split()
    width = len(lines[0])
    if width <= MAX_WRAP and all(len(line) == width for line in lines[:-1]) and len(lines[-1]) <= width:
        return ["".join(lines)]
    return lines


def _keys_in_base64(value: str, depth: int, seen: set[str]) -> Iterator[FoundKey]:
    if len(value) < MIN_RUN or value in seen:
        return
    seen.add(value)
    core = value.rstrip("=")
    core = core[: len(core) - 1] if len(core) % 4 == 1 else core
    try:
        data = binascii.a2b_base64(core + "=" * (-len(core) % 4))
    except binascii.Error:
        return
    found = _parsed(data)
    if found is not None:
        yield found
    elif depth < MAX_DEPTH:
        try:
            inner = data.decode()
        except UnicodeDecodeError:  # DER, or noise
            return
        yield from _keys_in(inner, depth + 1, seen)


def _parsed(data: bytes) -> FoundKey | None:
    """The key `data` encodes, if it starts like one and `cryptography` reads it as one."""
    key: PrivateKeyTypes | SSHPrivateKeyTypes
    try:
        if data.startswith(OPENSSH_MAGIC):
            armoured = b"".join(
                [
                    b"-----BEGIN %s-----\n" % OPENSSH_LABEL,
                    binascii.b2a_base64(data),
                    b"-----END %s-----\n" % OPENSSH_LABEL,
                ]
            )
            key = load_ssh_private_key(armoured, password=None)
        else:
            der = _private_key_der(data)
            if der is None:
                return None
            data = der
            key = load_der_private_key(der, password=None, unsafe_skip_rsa_key_validation=True)
    except (ValueError, TypeError, UnsupportedAlgorithm):  # not a key, an encrypted one, or an unknown kind
        return None
    return FoundKey(key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo), data)


def _private_key_der(data: bytes) -> bytes | None:
    """The DER SEQUENCE `data` starts with (whatever a run glued on after it cut off), if its first
    field is a private key's version; None for anything else. Only the outer tag and length are read."""
    if len(data) < 8 or data[0] != 0x30:
        return None
    if data[1] < 0x80:
        header, length = 2, data[1]
    elif 1 <= data[1] - 0x80 <= 3:
        header = 2 + data[1] - 0x80
        length = int.from_bytes(data[2:header], "big")
    else:
        return None
    if data[header : header + 3] not in PRIVATE_KEY_VERSIONS or header + length > len(data):
        return None
    return data[: header + length]
