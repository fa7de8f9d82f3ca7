"""The profiles describe what Istio's Makefile.selfsigned.mk really issues.

The Makefile's own openssl config and commands issue a root and an intermediate here;
the checks the end-to-end suite applies to pulumi-tls certificates must accept them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509

from istio_ca.profiles import INTERMEDIATE_CA, ROOT_CA
from istio_ca.settings import CertificateSettings, KeySettings
from tests.makefile import issue_like_the_makefile
from tests.x509_checks import check_certificate, check_key_matches, check_path_length, subject_of

ROOT = CertificateSettings("Istio", "Root CA", 3650, KeySettings("RSA", 2048))
INTERMEDIATE = CertificateSettings("Istio", "Intermediate CA", 730, KeySettings("RSA", 2048))


@pytest.fixture(scope="module")
def makefile_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return issue_like_the_makefile(tmp_path_factory.mktemp("makefile"))


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
