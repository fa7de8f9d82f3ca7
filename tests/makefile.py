"""Istio's Makefile.selfsigned.mk, replayed: its openssl configs and commands, at test time."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest

# Verbatim in substance from root-ca.conf and %/intermediate.conf in Makefile.selfsigned.mk.
ROOT_CA_CONF = """
[ req ]
encrypt_key = no
prompt = no
utf8 = yes
default_md = sha256
default_bits = 2048
req_extensions = req_ext
x509_extensions = req_ext
distinguished_name = req_dn
[ req_ext ]
subjectKeyIdentifier = hash
basicConstraints = critical, CA:true
keyUsage = critical, digitalSignature, nonRepudiation, keyEncipherment, keyCertSign
[ req_dn ]
O = Istio
CN = Root CA
"""
INTERMEDIATE_CONF = """
[ req ]
encrypt_key = no
prompt = no
utf8 = yes
default_md = sha256
default_bits = 2048
req_extensions = req_ext
x509_extensions = req_ext
distinguished_name = req_dn
[ req_ext ]
subjectKeyIdentifier = hash
basicConstraints = critical, CA:true, pathlen:0
keyUsage = critical, digitalSignature, nonRepudiation, keyEncipherment, keyCertSign
subjectAltName=@san
[ san ]
DNS.1 = istiod.istio-system.svc
[ req_dn ]
O = Istio
CN = Intermediate CA
L = cluster1
"""


def makefile_commands(root: Path, clusters: Mapping[str, Path], key_bits: int) -> list[tuple[list[str], Path]]:
    """`make root-ca <cluster>-cacerts ...` as the openssl commands it runs, in order, each with the directory
    it runs in: the root's files in `root`, each cluster's in its own directory (its config written there)."""
    (root / "root-ca.conf").write_text(ROOT_CA_CONF)
    commands: list[tuple[list[str], Path]] = [
        (["genrsa", "-out", "root-key.pem", str(key_bits)], root),
        (["req", "-sha256", "-new", "-key", "root-key.pem", "-config", "root-ca.conf", "-out", "root-cert.csr"], root),
        (
            [
                *("x509", "-req", "-sha256", "-days", "3650", "-signkey", "root-key.pem", "-extensions", "req_ext"),
                *("-extfile", "root-ca.conf", "-in", "root-cert.csr", "-out", "root-cert.pem"),
            ],
            root,
        ),
    ]
    for name, out in clusters.items():
        out.mkdir(parents=True, exist_ok=True)
        (out / "intermediate.conf").write_text(INTERMEDIATE_CONF.replace("L = cluster1", f"L = {name}"))
        root_cert, root_key = (os.path.relpath(root / file, out) for file in ("root-cert.pem", "root-key.pem"))
        commands += [
            (["genrsa", "-out", "ca-key.pem", str(key_bits)], out),
            (["req", "-new", "-config", "intermediate.conf", "-key", "ca-key.pem", "-out", "cluster-ca.csr"], out),
            (
                [
                    *("x509", "-req", "-sha256", "-days", "730", "-CA", root_cert, "-CAkey", root_key),
                    *("-CAcreateserial", "-extensions", "req_ext", "-extfile", "intermediate.conf"),
                    *("-in", "cluster-ca.csr", "-out", "ca-cert.pem"),
                ],
                out,
            ),
        ]
    return commands


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def issue_like_the_makefile(out: Path) -> Path:
    """`make root-ca cluster1-cacerts`, every file in `out`: root-{cert,key}.pem, ca-{cert,key}.pem, cert-chain.pem."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl is required: these tests replay the Makefile's openssl commands")
    for args, cwd in makefile_commands(out, {"cluster1": out}, key_bits=2048):
        openssl(*args, cwd=cwd)
    chain = (out / "ca-cert.pem").read_text() + (out / "root-cert.pem").read_text()
    (out / "cert-chain.pem").write_text(chain)
    return out
