"""The end-to-end suite's leak search finds a key line in every form it could leak in, and nothing else."""

from __future__ import annotations

import json

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.e2e.leak_audit import FULL_LINE, holds


def key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def test_a_key_line_is_found_as_printed_in_json_or_without_its_newlines() -> None:
    pem, other = key_pem(), key_pem()
    body = pem.splitlines()[1:-1]
    lines = {line for line in body if len(line) == FULL_LINE}
    assert len(lines) > 10
    assert holds(f"Outputs:\n  key: {pem}", lines)
    assert holds(json.dumps({"outputs": {"key": pem}}), lines)  # newlines escaped
    assert holds("".join(body), lines)  # newlines dropped
    assert holds(f"x {body[3]} y", lines)
    assert not holds(other + json.dumps({"key": other}) + "".join(other.splitlines()[1:-1]), lines)
    assert not holds(body[3][:-1], lines)
