"""Istio's Makefile.selfsigned.mk, replayed: its openssl configs and commands, at test time."""

from __future__ import annotations

import shutil
import subprocess
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


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def issue_like_the_makefile(out: Path) -> Path:
    """`make root-ca cluster1-cacerts` in `out`: root-{cert,key}.pem, ca-{cert,key}.pem, cert-chain.pem."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl is required: these tests replay the Makefile's openssl commands")
    (out / "root-ca.conf").write_text(ROOT_CA_CONF)
    (out / "intermediate.conf").write_text(INTERMEDIATE_CONF)
    openssl("genrsa", "-out", "root-key.pem", "2048", cwd=out)
    openssl(
        "req", "-sha256", "-new", "-key", "root-key.pem", "-config", "root-ca.conf", "-out", "root-cert.csr", cwd=out
    )
    openssl(
        *("x509", "-req", "-sha256", "-days", "3650", "-signkey", "root-key.pem"),
        *("-extensions", "req_ext", "-extfile", "root-ca.conf", "-in", "root-cert.csr", "-out", "root-cert.pem"),
        cwd=out,
    )
    openssl("genrsa", "-out", "ca-key.pem", "2048", cwd=out)
    openssl("req", "-new", "-config", "intermediate.conf", "-key", "ca-key.pem", "-out", "cluster-ca.csr", cwd=out)
    openssl(
        *("x509", "-req", "-sha256", "-days", "730", "-CA", "root-cert.pem", "-CAkey", "root-key.pem"),
        *("-CAcreateserial", "-extensions", "req_ext", "-extfile", "intermediate.conf"),
        *("-in", "cluster-ca.csr", "-out", "ca-cert.pem"),
        cwd=out,
    )
    chain = (out / "ca-cert.pem").read_text() + (out / "root-cert.pem").read_text()
    (out / "cert-chain.pem").write_text(chain)
    return out
