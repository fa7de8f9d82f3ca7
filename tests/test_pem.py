"""User-given trust material is read strictly: one certificate or one key, and nothing else."""

from __future__ import annotations

import subprocess

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import Encoding

from istio_ca.pem import PemError, certificate_pem, sha256_fingerprint, single_certificate, single_private_key
from tests.roots import make_intermediate, make_root

ROOT_CERT, ROOT_KEY = make_root()
OTHER_CERT, _ = make_root()
INTERMEDIATE_CERT, _ = make_intermediate(ROOT_CERT, ROOT_KEY)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (ROOT_CERT + ROOT_KEY, "exactly one PEM CERTIFICATE; it holds CERTIFICATE, PRIVATE KEY"),
        (ROOT_KEY + ROOT_CERT, "it holds PRIVATE KEY, CERTIFICATE"),
        (INTERMEDIATE_CERT + ROOT_CERT, "it holds CERTIFICATE, CERTIFICATE"),
        (ROOT_CERT + "trailing words\n", "holds text that is not PEM besides CERTIFICATE"),
        ("not a certificate", "holds text that is not PEM"),
        (ROOT_KEY, "it holds PRIVATE KEY"),
        ("", "it holds nothing"),
        ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "does not parse as an X.509 certificate"),
    ],
    ids=["cert+key", "key+cert", "chain", "trailing text", "garbage", "key alone", "empty", "bad DER"],
)
def test_a_certificate_field_holding_anything_else_is_refused_without_echoing_it(text: str, message: str) -> None:
    with pytest.raises(PemError) as error:
        single_certificate(text)
    assert message in str(error.value)
    for line in text.splitlines():
        if "-----" not in line and len(line) > 20:
            assert line not in str(error.value)


def test_the_certificate_is_re_encoded_from_its_der() -> None:
    messy = "\n\n" + ROOT_CERT.replace("\n", "\r\n") + "\n\n"
    cert = single_certificate(messy)
    assert certificate_pem(cert) == ROOT_CERT
    assert certificate_pem(single_certificate(ROOT_CERT.rstrip("\n"))) == ROOT_CERT


@pytest.mark.parametrize(
    ("key_format", "ecdsa", "label"),
    [("PKCS1", False, "RSA PRIVATE KEY"), ("PKCS8", False, "PRIVATE KEY"), ("PKCS1", True, "EC PRIVATE KEY")],
    ids=["PKCS#1 (istiod)", "PKCS#8", "SEC1"],
)
def test_keys_in_every_form_a_user_has_are_read(key_format: str, ecdsa: bool, label: str) -> None:
    cert_pem, key_pem = make_root(key_format=key_format, ecdsa=ecdsa)
    assert key_pem.startswith(f"-----BEGIN {label}-----")
    key = single_private_key(key_pem)
    assert key.public_key() == single_certificate(cert_pem).public_key()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (ROOT_KEY + ROOT_CERT, "exactly one unencrypted PEM private key"),
        (ROOT_KEY + ROOT_KEY, "it holds PRIVATE KEY, PRIVATE KEY"),
        (ROOT_CERT, "it holds CERTIFICATE"),
        ("x", "holds text that is not PEM"),
    ],
    ids=["key+cert", "two keys", "a certificate", "garbage"],
)
def test_a_key_field_holding_anything_else_is_refused(text: str, message: str) -> None:
    with pytest.raises(PemError, match=message):
        single_private_key(text)


def test_an_encrypted_key_is_refused_without_asking_for_a_password() -> None:
    key = single_private_key(ROOT_KEY)
    encrypted = key.private_bytes(
        Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw")
    ).decode()
    with pytest.raises(PemError, match="exactly one unencrypted PEM private key"):
        single_private_key(encrypted)


def test_fingerprint_is_what_openssl_prints() -> None:
    printed = subprocess.run(
        ["openssl", "x509", "-noout", "-fingerprint", "-sha256"], input=ROOT_CERT, capture_output=True, text=True
    ).stdout
    assert printed.strip().split("=", 1)[1] == sha256_fingerprint(single_certificate(ROOT_CERT))
    assert sha256_fingerprint(single_certificate(ROOT_CERT)) != sha256_fingerprint(single_certificate(OTHER_CERT))
