"""The end-to-end suite's leak search finds a key line in every form it could leak in, and nothing else."""

from __future__ import annotations

import base64
import json
from base64 import b64decode, b64encode
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from tests.e2e.leak_audit import FULL_LINE, LeakAudit, holds
from tests.roots import make_root


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


def der_base64(key: rsa.RSAPrivateKey, form: serialization.PrivateFormat) -> str:
    return base64.b64encode(key.private_bytes(serialization.Encoding.DER, form, serialization.NoEncryption())).decode()


def secret_manifest(files: dict[str, str]) -> str:
    """A Secret as `kubectl get secret -o json` prints it: each file base64-encoded in `data`."""
    data = {name: base64.b64encode(text.encode()).decode() for name, text in files.items()}
    return json.dumps({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "cacerts"}, "data": data})


def test_the_audit_remembers_and_finds_a_key_seen_only_in_base64(tmp_path: Path) -> None:
    """A key met only in a Secret's base64 `data`, or as base64 DER, is remembered, and found whole in a
    transcript or a plain-place file; certificates are never reported."""
    audit = LeakAudit()
    in_secret, as_der = rsa.generate_private_key(65537, 2048), rsa.generate_private_key(65537, 2048)
    pem = in_secret.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()
    certificate = make_root()[0]
    audit.remember({"items": [secret_manifest({"ca-key.pem": pem, "ca-cert.pem": certificate})]})
    audit.remember(f"key: {der_base64(as_der, serialization.PrivateFormat.PKCS8)}")
    assert len(audit.keys) == 2
    assert holds(pem, audit.key_lines)  # the key's own lines, for a fragment printed without its armour

    plain, rendered = tmp_path / "state", tmp_path / "state" / "rendered"
    rendered.mkdir(parents=True, mode=0o700)
    audit.plain_places.add(plain)
    audit.key_directories.add(rendered)
    (plain / "certificates.json").write_text(
        secret_manifest({"ca-cert.pem": certificate, "root-cert.pem": certificate})
    )
    (rendered / "cacerts.yaml").write_text(secret_manifest({"ca-key.pem": pem}))  # by design: no leak, but 0644
    audit.transcripts += ["$ pulumi up\nUpdating (dev)\n", f"$ pulumi stack output\n{certificate}"]
    assert audit.leaks() == []
    assert audit.loose_key_files() == [f"{rendered / 'cacerts.yaml'} is mode 644"]

    audit.transcripts.append("$ kubectl get secret -o json\n" + secret_manifest({"ca-key.pem": pem}))
    audit.transcripts.append(f"$ pulumi stack output\nkey: {der_base64(as_der, serialization.PrivateFormat.PKCS8)}\n")
    (plain / "checkpoint.json").write_text(json.dumps({"outputs": {"data": secret_manifest({"ca-key.pem": pem})}}))
    (plain / "backup.json").write_text(json.dumps({"keyDer": der_base64(as_der, serialization.PrivateFormat.PKCS8)}))
    assert audit.leaks() == [
        "CLI output #2",
        "CLI output #3",
        str(plain / "backup.json"),
        str(plain / "checkpoint.json"),
    ]


def test_the_audit_reports_any_private_key_even_one_it_never_saw(tmp_path: Path) -> None:
    audit = LeakAudit(plain_places={tmp_path})
    unseen = rsa.generate_private_key(65537, 2048)
    (tmp_path / "log.txt").write_text(f"loaded {der_base64(unseen, serialization.PrivateFormat.TraditionalOpenSSL)}")
    assert audit.leaks() == [str(tmp_path / "log.txt")] and not audit.keys


def test_the_public_half_of_a_remembered_key_is_no_leak() -> None:
    """A CSR or certificate of the key holds its public point, as some lines of the key's own encodings do:
    printing them is no leak, whatever the alignment (the suite once failed on a CSR line that matched)."""
    for _ in range(20):
        key = ec.generate_private_key(ec.SECP256R1())
        audit = LeakAudit()
        for encoding in (serialization.Encoding.PEM, serialization.Encoding.DER):
            for form in (serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL):
                blob = key.private_bytes(encoding, form, serialization.NoEncryption())
                audit.remember(blob.decode() if encoding is serialization.Encoding.PEM else b64encode(blob).decode())
        ssh = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
        audit.remember(ssh.decode())
        request = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Intermediate CA")]))
            .sign(key, hashes.SHA256())
        )
        public_key = key.public_key()
        spki = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        openssh = public_key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        # The public key at every byte alignment, each whole base64 line of it on a line of its own.
        lines = [
            text[start : start + FULL_LINE]
            for blob in (spki, b64decode(openssh.split()[1]))
            for text in (b64encode(blob[shift:]).decode() for shift in range(3))
            for start in range(0, len(text) - FULL_LINE + 1, 4)
        ]
        public = "\n".join([request.public_bytes(serialization.Encoding.PEM).decode(), openssh.decode(), *lines])
        assert not audit.exposes(public)
        assert audit.exposes(ssh.decode().replace("-----BEGIN", "").replace("-----END", ""))  # its private lines are
