"""The profiles describe what Istio's Makefile.selfsigned.mk really issues.

The Makefile's own openssl config and commands issue a root and an intermediate here;
the checks the end-to-end suite applies to pulumi-tls certificates must accept them.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509

from components.config import CertificateSettings, KeySettings
from components.profiles import INTERMEDIATE_CA, ROOT_CA
from tests.x509_checks import check_certificate, check_key_matches, check_path_length, subject_of

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
ROOT = CertificateSettings("Istio", "Root CA", 3650, KeySettings("RSA", 2048))
INTERMEDIATE = CertificateSettings("Istio", "Intermediate CA", 730, KeySettings("RSA", 2048))


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def makefile_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("openssl") is None:
        pytest.fail("openssl is required: the parity test replays the Makefile's openssl commands")
    out = tmp_path_factory.mktemp("makefile")
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
    return out


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_makefile_root_matches_the_root_profile(makefile_output: Path) -> None:
    root = load(makefile_output / "root-cert.pem")
    check_certificate(root, profile=ROOT_CA, settings=ROOT, subject=subject_of(ROOT), issuer=root)
    check_path_length(root, ROOT_CA)
    check_key_matches(root, (makefile_output / "root-key.pem").read_text())


def test_makefile_intermediate_matches_the_intermediate_profile(makefile_output: Path) -> None:
    root = load(makefile_output / "root-cert.pem")
    intermediate = load(makefile_output / "ca-cert.pem")
    check_certificate(
        intermediate,
        profile=INTERMEDIATE_CA,
        settings=INTERMEDIATE,
        subject=subject_of(INTERMEDIATE, locality="cluster1"),
        issuer=root,
        dns_names=("istiod.istio-system.svc",),
    )
    check_path_length(intermediate, INTERMEDIATE_CA)


def test_checks_reject_a_certificate_off_profile(makefile_output: Path) -> None:
    """The checks can fail: the root is not an intermediate."""
    root = load(makefile_output / "root-cert.pem")
    with pytest.raises(AssertionError):
        check_certificate(
            root,
            profile=INTERMEDIATE_CA,
            settings=INTERMEDIATE,
            subject=subject_of(INTERMEDIATE, locality="cluster1"),
            issuer=root,
            dns_names=("istiod.istio-system.svc",),
        )
    with pytest.raises(AssertionError):
        check_path_length(root, INTERMEDIATE_CA)
