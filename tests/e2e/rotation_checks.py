"""What each cluster's `cacerts` holds during a root rotation, read and parsed after every step: which
roots `root-cert.pem` trusts and which root issued `ca-cert.pem` (and ends `cert-chain.pem`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from cryptography import x509

from tests.e2e.local_cluster import LocalCluster
from tests.x509_checks import load_certificates, signed_by

NOT_STARTED = (("old",), "old")
TRUST_BOTH = (("old", "new"), "old")
SWITCH = (("old", "new"), "new")
RETIRE = (("new",), "new")


class Roots:
    """The old and the new root, once known, to name what a cluster holds."""

    def __init__(self, old: x509.Certificate) -> None:
        self.old = old
        self.new: x509.Certificate | None = None

    def name(self, cert: x509.Certificate) -> str:
        return "old" if cert == self.old else "new" if cert == self.new else "other"

    def held(self, cluster: LocalCluster, namespace: str) -> tuple[tuple[str, ...], str]:
        """(the roots `root-cert.pem` trusts, the root that issued `ca-cert.pem`), checked against the chain."""
        files = cluster.secret_data(namespace, "cacerts")
        trusted = tuple(self.name(root) for root in load_certificates(files["root-cert.pem"]))
        (intermediate,) = load_certificates(files["ca-cert.pem"])
        issuers = [root for root in (self.old, self.new) if root is not None and signed_by(intermediate, root)]
        assert len(issuers) == 1, cluster.name
        assert load_certificates(files["cert-chain.pem"]) == [intermediate, issuers[0]], cluster.name
        return trusted, self.name(issuers[0])


@contextmanager
def down(cluster: LocalCluster) -> Iterator[None]:
    cluster.stop_api_server()
    try:
        yield
    finally:
        cluster.start_api_server()
