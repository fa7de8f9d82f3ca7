"""What istiod rejects, it rejects in our tests too.

One `pulumi up` writes a correct `cacerts`; istiod starts on it (the positive control). Then the files
projected into istiod's ROOT_CA_DIR are edited, not the stack, into what istiod must refuse: a key
that is not the intermediate's, or an intermediate our root did not issue. istiod must not start
(nor fall back to a self-signed CA of its own), and must say why in its own words, from
`security/pkg/pki/util/keycertbundle.go` (`Verify`) as wrapped by `NewPluggedCertIstioCAOptions`.
Last, with ISTIO_MULTIROOT_MESH=true, a running istiod handed a `cacerts` whose `root-cert.pem` holds
only another root refuses to switch to it and keeps signing under our root.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from istio_ca.pem import certificate_pem
from tests.e2e.istiod import (
    PLUGGED_IN_CA_LINES,
    SELF_SIGNED_CA_LINES,
    Istiod,
    load_chain,
    prepared_istiod,
    processes_in,
    project_secret,
    start_refused,
)
from tests.e2e.leak_audit import AUDIT
from tests.e2e.local_cluster import LocalCluster
from tests.e2e.pulumi_cli import Toolchain
from tests.e2e.stacks import FAST_KEYS, namespaced_workspace
from tests.roots import sign_certificate
from tests.x509_checks import load_certificates

NAMESPACE = "istio-istiod-rejects"
"""istiod's namespace: this module's alone."""
WORKLOADS = "istiod-rejects-workloads"
SERVICE_ACCOUNT = "sleep"
REFUSAL_SECONDS = 60
"""How long a refusing istiod may take to exit (it takes about a second)."""
WATCH_SECONDS = 30

REFUSED = "failed to create discovery service: failed to create CA: failed to create an istiod CA: "
"""How istiod's fatal start-up error begins when its plugged-in CA bundle fails verification."""
KEY_MISMATCH = "failed to create CA KeyCertBundle (the cert does not match the key: "
UNKNOWN_ISSUER = (
    "failed to create CA KeyCertBundle (cannot verify the cert with the provided root chain and cert pool "
    "with error: x509: certificate signed by unknown authority"
)
IMPOSTOR_HINT = "while trying to verify candidate authority certificate"
CACERTS_UPDATE = "Update Istiod cacerts"
ROOT_SWAP_REFUSED = "Updating new ROOT-CA not supported"
"""istiod's handleEvent (pilot/pkg/bootstrap/istio_ca.go): the new root bundle and the current one
are not a subset of one another, so nothing is loaded."""
RELOADED = "Istiod has detected the newly added intermediate CA and updated its key and certs accordingly"

log = logging.getLogger(__name__)


@dataclass
class Rejects:
    cluster: LocalCluster
    istiod: Istiod
    good: dict[str, str]
    """The `cacerts` `pulumi up` wrote: istiod must accept it."""

    def root(self) -> x509.Certificate:
        (root,) = load_certificates(self.good["root-cert.pem"])
        return root

    def intermediate(self) -> x509.Certificate:
        (intermediate,) = load_certificates(self.good["ca-cert.pem"])
        return intermediate


@pytest.fixture(scope="module")
def rejects(
    pulumi_env: dict[str, str],
    clusters: dict[str, LocalCluster],
    toolchain: Toolchain,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Rejects]:
    cluster = clusters["cluster1"]
    workspace = namespaced_workspace(
        pulumi_env, {"cluster1": cluster}, tmp_path_factory, NAMESPACE, intermediate=FAST_KEYS
    )
    workspace.up()
    good = cluster.secret_data(NAMESPACE, "cacerts")
    workdir = tmp_path_factory.mktemp("istiod-rejects")
    with prepared_istiod(cluster, NAMESPACE, toolchain, workdir) as istiod:
        yield Rejects(cluster=cluster, istiod=istiod, good=good)
    assert istiod.process is None
    assert processes_in(workdir) == [], "an istiod process is left"


# --- certificates of another CA, made here -----------------------------------------------------


PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def key_like(certificate: x509.Certificate) -> PrivateKey:
    """A fresh key of the same algorithm and size as `certificate`'s."""
    public = certificate.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        return rsa.generate_private_key(65537, public.key_size)
    assert isinstance(public, ec.EllipticCurvePublicKey), type(public)
    return ec.generate_private_key(public.curve)


def private_pem(key: PrivateKey, like: str) -> str:
    """`key` in the same PEM format as the key `like`: PKCS#8 (`PRIVATE KEY`), or SEC1/PKCS#1."""
    traditional = "BEGIN EC PRIVATE KEY" in like or "BEGIN RSA PRIVATE KEY" in like
    form = serialization.PrivateFormat.TraditionalOpenSSL if traditional else serialization.PrivateFormat.PKCS8
    return key.private_bytes(serialization.Encoding.PEM, form, serialization.NoEncryption()).decode()


def ca_certificate(
    subject: x509.Name,
    key: PrivateKey,
    issuer: x509.Name,
    issuer_key: PrivateKey,
    path_length: int | None,
) -> x509.Certificate:
    return sign_certificate(
        subject, key, issuer, issuer_key, days=30, ca=True, path_length=path_length, authority_key_id=True
    )


@dataclass
class ForeignCA:
    """A root of another CA and an intermediate it signed, with keys of the same kinds as ours."""

    root: x509.Certificate
    intermediate: x509.Certificate
    intermediate_key: str

    def cacerts(self, root_cert_pem: str) -> dict[str, str]:
        """Its intermediate as a `cacerts` would hold it, under the root bundle `root_cert_pem`."""
        files = {
            "ca-cert.pem": certificate_pem(self.intermediate),
            "ca-key.pem": self.intermediate_key,
            "cert-chain.pem": certificate_pem(self.intermediate) + certificate_pem(self.root),
            "root-cert.pem": root_cert_pem,
        }
        AUDIT.remember(files)
        return files


def foreign_ca(good: dict[str, str], root_subject: x509.Name) -> ForeignCA:
    """Another root named `root_subject`, and an intermediate it signed with our intermediate's subject."""
    (our_root,) = load_certificates(good["root-cert.pem"])
    (ours,) = load_certificates(good["ca-cert.pem"])
    root_key, intermediate_key = key_like(our_root), key_like(ours)
    root = ca_certificate(root_subject, root_key, root_subject, root_key, path_length=None)
    intermediate = ca_certificate(ours.subject, intermediate_key, root_subject, root_key, path_length=0)
    return ForeignCA(root, intermediate, private_pem(intermediate_key, like=good["ca-key.pem"]))


def assert_refused(rejects: Rejects, files: dict[str, str], *error: str) -> None:
    """istiod, given `files` as its plugged-in CA, exits non-zero without falling back to a CA of its
    own, and its log gives the reason: one error line holding every part of `error`."""
    istiod = rejects.istiod
    project_secret(istiod.ca_dir, files)
    started = time.monotonic()
    status = start_refused(istiod, REFUSAL_SECONDS)
    elapsed = time.monotonic() - started
    text = istiod.log_text()
    with istiod.log_on_failure():
        assert status not in (None, 0), f"istiod did not exit (status {status}) within {REFUSAL_SECONDS}s"
        assert any(all(part in line for part in (REFUSED, *error)) for line in text.splitlines()), (REFUSED, error)
        assert "Use local CA certificate" in text  # it did read our files...
        assert not any(line in text for line in SELF_SIGNED_CA_LINES)  # ...and did not fall back
        assert not istiod.istio_ca_secret_exists()
        assert istiod.process is None
    log.info("istiod refused in %.1fs with exit status %s", elapsed, status)


# --- the positive control, then the refusals ----------------------------------------------------


def test_istiod_starts_on_the_cacerts_pulumi_wrote(rejects: Rejects, tmp_path: Path) -> None:
    istiod = rejects.istiod
    project_secret(istiod.ca_dir, rejects.good)
    istiod.start()
    try:
        lines = istiod.ca_log_lines()
        for expected in PLUGGED_IN_CA_LINES:
            assert any(expected.format(dir=istiod.ca_dir) in line for line in lines), (expected, lines)
        assert not any(unexpected in line for unexpected in SELF_SIGNED_CA_LINES for line in lines), lines
        assert REFUSED not in istiod.log_text()
        trusted = tmp_path / "root-cert.pem"
        trusted.write_text(rejects.good["root-cert.pem"])
        chain = istiod.served_chain(trusted)  # openssl verified it against our root
        assert chain[1:] == [rejects.intermediate(), rejects.root()]
        assert not istiod.istio_ca_secret_exists()
    finally:
        istiod.stop()


def test_istiod_refuses_a_key_that_is_not_the_intermediates(rejects: Rejects) -> None:
    fresh = private_pem(key_like(rejects.intermediate()), like=rejects.good["ca-key.pem"])
    files = {**rejects.good, "ca-key.pem": fresh}
    AUDIT.remember(files)
    assert_refused(rejects, files, KEY_MISMATCH + "tls: private key does not match public key)")


@pytest.mark.parametrize("root_named", ["differently", "like ours"])
def test_istiod_refuses_an_intermediate_our_root_did_not_issue(rejects: Rejects, root_named: str) -> None:
    """Our `root-cert.pem` kept; `ca-cert.pem`, `ca-key.pem` and `cert-chain.pem` those of an intermediate
    another root signed: one with another name, or an impostor with our root's very name (only the
    signature tells them apart)."""
    other_name = x509.Name([x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, "Another CA")])
    subject = other_name if root_named == "differently" else rejects.root().subject
    files = foreign_ca(rejects.good, subject).cacerts(root_cert_pem=rejects.good["root-cert.pem"])
    assert files["ca-key.pem"] != rejects.good["ca-key.pem"]
    if root_named == "differently":
        assert_refused(rejects, files, UNKNOWN_ISSUER + ")")
    else:  # Go's verifier found our root by name, and says its signature is not on this intermediate
        assert_refused(rejects, files, UNKNOWN_ISSUER + " (possibly because of ", IMPOSTOR_HINT)


def test_a_running_multiroot_istiod_refuses_a_root_swap_and_keeps_signing_under_our_root(
    rejects: Rejects, toolchain: Toolchain, tmp_path: Path
) -> None:
    """ISTIO_MULTIROOT_MESH=true: istiod loads a new root bundle only if it holds the current one or the
    current one holds it (a rotation's phases). One holding only another root is not loaded."""
    settings = {"ISTIO_MULTIROOT_MESH": "true"}
    workdir = tmp_path / "istiod"
    with prepared_istiod(rejects.cluster, NAMESPACE, toolchain, workdir, settings) as istiod:
        project_secret(istiod.ca_dir, rejects.good)
        istiod.start()
        rejects.cluster.create_namespace(WORKLOADS)  # after istiod started: it publishes its root there
        root_pem = rejects.good["root-cert.pem"]
        assert istiod.published_root(WORKLOADS) == root_pem
        before = load_chain(istiod.workload_certificate(WORKLOADS, SERVICE_ACCOUNT, root_pem.encode())[1])
        assert before[1:3] == [rejects.intermediate(), rejects.root()]

        other = foreign_ca(rejects.good, x509.Name([x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, "New CA")]))
        project_secret(istiod.ca_dir, other.cacerts(root_cert_pem=certificate_pem(other.root)))
        deadline = time.monotonic() + WATCH_SECONDS
        while not any(line.endswith(f"\twarn\t{ROOT_SWAP_REFUSED}") for line in istiod.log_text().splitlines()):
            assert time.monotonic() < deadline, f"istiod did not log {ROOT_SWAP_REFUSED!r} in {WATCH_SECONDS}s"
            time.sleep(0.2)
        text = istiod.log_text()
        assert f"\tinfo\t{CACERTS_UPDATE}\n" in text.split(ROOT_SWAP_REFUSED, 1)[0]  # the watcher saw the new files
        assert RELOADED not in text

        after = load_chain(istiod.workload_certificate(WORKLOADS, SERVICE_ACCOUNT, root_pem.encode())[1])
        assert after[1:3] == [rejects.intermediate(), rejects.root()], [c.subject for c in after]
        after[0].verify_directly_issued_by(rejects.intermediate())
        assert istiod.published_root(WORKLOADS) == root_pem
        chain = istiod.served_chain(_written(tmp_path / "root-cert.pem", root_pem))
        assert chain[1:] == [rejects.intermediate(), rejects.root()]
    assert istiod.process is None
    assert processes_in(workdir) == []


def _written(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
