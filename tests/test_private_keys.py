"""The private-key finder finds a key in every encoding it could leak in, names it by its public key, and
reports nothing that is not a private key."""

from __future__ import annotations

import base64
import json
import random
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import NameOID

from istio_ca.private_keys import find_private_keys, holds_private_key, private_keys_in

PEM = serialization.Encoding.PEM
DER = serialization.Encoding.DER
PKCS8 = serialization.PrivateFormat.PKCS8
TRADITIONAL = serialization.PrivateFormat.TraditionalOpenSSL  # PKCS#1 for RSA, SEC1 for EC
OPENSSH = serialization.PrivateFormat.OpenSSH

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
ED_KEY = ed25519.Ed25519PrivateKey.generate()


def public(key: PrivateKeyTypes) -> bytes:
    return key.public_key().public_bytes(DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def encoded(key: PrivateKeyTypes, encoding: serialization.Encoding, form: serialization.PrivateFormat) -> bytes:
    return key.private_bytes(encoding, form, serialization.NoEncryption())


def pem(key: PrivateKeyTypes, form: serialization.PrivateFormat = PKCS8) -> str:
    return encoded(key, PEM, form).decode()


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def wrapped(text: str, width: int = 76) -> str:
    """As `base64` (GNU coreutils) prints it: lines of 76."""
    return "\n".join(text[i : i + width] for i in range(0, len(text), width)) + "\n"


def secret_json(key_pem: str) -> str:
    """A Kubernetes Secret manifest holding the key, as `kubectl get secret -o json` prints it."""
    certificate = certificate_pem(EC_KEY)
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "cacerts", "namespace": "istio-system"},
            "data": {"ca-cert.pem": b64(certificate), "ca-key.pem": b64(key_pem), "root-cert.pem": b64(certificate)},
        },
        indent=2,
    )


def certificate(key: PrivateKeyTypes) -> x509.Certificate:
    assert isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey)
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cluster.local")])
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


def certificate_pem(key: PrivateKeyTypes) -> str:
    return certificate(key).public_bytes(PEM).decode()


def csr_pem(key: PrivateKeyTypes) -> str:
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "workload")])
    return (
        x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256()).public_bytes(PEM).decode()
    )


FOUND: list[tuple[str, PrivateKeyTypes, str]] = [
    ("PEM PKCS#8", RSA_KEY, pem(RSA_KEY)),
    ("PEM PKCS#1", RSA_KEY, pem(RSA_KEY, TRADITIONAL)),
    ("PEM SEC1", EC_KEY, pem(EC_KEY, TRADITIONAL)),
    ("PEM PKCS#8 EC", EC_KEY, pem(EC_KEY)),
    ("OpenSSH ed25519", ED_KEY, pem(ED_KEY, OPENSSH)),
    ("OpenSSH ecdsa", EC_KEY, pem(EC_KEY, OPENSSH)),
    ("OpenSSH rsa", RSA_KEY, pem(RSA_KEY, OPENSSH)),
    ("JSON-escaped PEM", RSA_KEY, json.dumps({"outputs": {"keyPem": pem(RSA_KEY, TRADITIONAL)}})),
    ("JSON in a JSON string", EC_KEY, json.dumps({"plaintext": json.dumps({"keyPem": pem(EC_KEY)})})),
    ("PEM with CRLF", EC_KEY, pem(EC_KEY).replace("\n", "\r\n")),
    ("PEM in indented YAML", EC_KEY, "key: |\n" + "".join(f"    {line}\n" for line in pem(EC_KEY).splitlines())),
    ("PEM, newlines dropped", RSA_KEY, "key: " + pem(RSA_KEY).replace("\n", "") + " printed"),
    ("PEM in a Secret's data", RSA_KEY, secret_json(pem(RSA_KEY, TRADITIONAL))),
    ("Secret JSON in base64 (depth 2)", EC_KEY, f'{{"state": "{b64(secret_json(pem(EC_KEY)))}"}}'),
    ("base64 of base64 of base64", ED_KEY, b64(b64(b64(pem(ED_KEY))))),
    ("DER PKCS#8 in base64", RSA_KEY, f"key={b64(encoded(RSA_KEY, DER, PKCS8))}&x=1"),
    ("DER PKCS#8 in wrapped base64", RSA_KEY, wrapped(b64(encoded(RSA_KEY, DER, PKCS8)))),
    ("DER PKCS#1 in base64", RSA_KEY, f'"{b64(encoded(RSA_KEY, DER, TRADITIONAL))}"'),
    ("DER PKCS#1 in wrapped base64", RSA_KEY, wrapped(b64(encoded(RSA_KEY, DER, TRADITIONAL)), 64)),
    ("DER SEC1 in base64", EC_KEY, b64(encoded(EC_KEY, DER, TRADITIONAL))),
    ("DER SEC1 in wrapped base64", EC_KEY, wrapped(b64(encoded(EC_KEY, DER, TRADITIONAL)), 60)),
    ("DER ed25519 PKCS#8 in base64", ED_KEY, f"seed {b64(encoded(ED_KEY, DER, PKCS8))} printed"),
    ("unpadded DER base64", EC_KEY, b64(encoded(EC_KEY, DER, PKCS8)).rstrip("=")),
    ("JSON-escaped slashes", RSA_KEY, json.dumps(pem(RSA_KEY)).replace("/", "\\/")),
]


@pytest.mark.parametrize(("name", "key", "text"), FOUND, ids=[case[0] for case in FOUND])
def test_a_key_is_found_in_every_encoding(name: str, key: PrivateKeyTypes, text: str) -> None:
    assert private_keys_in(text) == {public(key)}, name
    assert holds_private_key(text), name


def test_one_key_in_many_forms_is_one_key_and_two_keys_are_two() -> None:
    forms = [pem(RSA_KEY), pem(RSA_KEY, TRADITIONAL), pem(RSA_KEY, OPENSSH), b64(encoded(RSA_KEY, DER, PKCS8))]
    assert private_keys_in("\n".join([*forms, secret_json(pem(RSA_KEY))])) == {public(RSA_KEY)}
    assert private_keys_in(pem(RSA_KEY) + json.dumps(pem(EC_KEY))) == {public(RSA_KEY), public(EC_KEY)}
    found = find_private_keys(pem(RSA_KEY) + pem(RSA_KEY, TRADITIONAL))
    assert {item.encoding for item in found} == {encoded(RSA_KEY, DER, PKCS8), encoded(RSA_KEY, DER, TRADITIONAL)}
    assert {item.public_key for item in found} == {public(RSA_KEY)}


def test_several_base64_values_one_per_line_are_each_searched() -> None:
    """As `kubectl get secret -o yaml` or a transcript prints them: long lines of different values."""
    lines = [b64(certificate_pem(EC_KEY)), b64(pem(EC_KEY)), b64(encoded(RSA_KEY, DER, TRADITIONAL))]
    assert private_keys_in("\n".join(lines)) == {public(EC_KEY), public(RSA_KEY)}
    assert private_keys_in("data:\n" + "".join(f"  f{i}.pem: {line}\n" for i, line in enumerate(lines))) == {
        public(EC_KEY),
        public(RSA_KEY),
    }


NOT_KEYS: list[tuple[str, str]] = [
    ("certificate PEM", certificate_pem(RSA_KEY)),
    ("CSR PEM", csr_pem(EC_KEY)),
    (
        "public key PEM",
        RSA_KEY.public_key().public_bytes(PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode(),
    ),
    ("PKCS#1 public key PEM", RSA_KEY.public_key().public_bytes(PEM, serialization.PublicFormat.PKCS1).decode()),
    (
        "OpenSSH public key",
        ED_KEY.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode(),
    ),
    ("certificate DER in base64", b64(certificate(EC_KEY).public_bytes(DER))),
    ("certificate chain in a Secret", secret_json(certificate_pem(RSA_KEY))),
    ("encrypted PKCS#8", EC_KEY.private_bytes(PEM, PKCS8, serialization.BestAvailableEncryption(b"pw")).decode()),
    ("random base64", b64(random.Random(1).randbytes(3000))),
    ("a label without a key", "-----BEGIN {0}-----\nAAAA\n-----END {0}-----\n".format("PRIVATE KEY")),
    ("empty text", ""),
]


@pytest.mark.parametrize(("name", "text"), NOT_KEYS, ids=[case[0] for case in NOT_KEYS])
def test_nothing_but_a_private_key_is_reported(name: str, text: str) -> None:
    assert private_keys_in(text) == set(), name
    assert not holds_private_key(text), name


def test_a_few_megabytes_of_state_are_searched_whole() -> None:
    """A state file's size: many certificates, base64 noise and two keys deep inside it."""
    noise = random.Random(7)
    certificates = [certificate_pem(EC_KEY), certificate_pem(RSA_KEY)]
    resources: list[dict[str, object]] = []
    for index in range(2000):
        resources.append(
            {
                "urn": f"urn:pulumi:dev::istio-ca::kubernetes:core/v1:Secret::cacerts-{index}",
                "outputs": {
                    "certPem": certificates[index % 2],
                    "data": {"root-cert.pem": b64(certificates[index % 2])},
                    "blob": b64(noise.randbytes(600)),
                    "ciphertext": "v1:" + b64(noise.randbytes(200)),
                },
            }
        )
    resources[1234]["outputs"] = {"keyPem": pem(EC_KEY, TRADITIONAL)}
    resources[1789]["outputs"] = {"data": {"ca-key.pem": b64(pem(RSA_KEY))}}
    state = json.dumps({"checkpoint": {"latest": {"resources": resources}}}, indent=4)
    assert len(state) > 3_000_000
    assert private_keys_in(state) == {public(EC_KEY), public(RSA_KEY)}
    del resources[1789], resources[1234]
    assert not holds_private_key(json.dumps({"checkpoint": {"latest": {"resources": resources}}}, indent=4))
