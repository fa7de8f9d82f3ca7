"""The trust design: which X.509 extensions each certificate carries.

Each profile mirrors one section of Istio's ``tools/certs/Makefile.selfsigned.mk``
(``root-ca.conf`` and ``<cluster>/intermediate.conf``). The components pass these
values to pulumi-tls, and the tests check issued certificates against the same data.
"""

from __future__ import annotations

from dataclasses import dataclass

# pulumi-tls names for the key usages in the Makefile's
# `keyUsage = critical, digitalSignature, nonRepudiation, keyEncipherment, keyCertSign`.
CA_KEY_USAGES: tuple[str, ...] = (
    "digital_signature",
    "content_commitment",  # nonRepudiation
    "key_encipherment",
    "cert_signing",
)


@dataclass(frozen=True)
class CertificateProfile:
    """The extensions of one kind of certificate.

    Usages are pulumi-tls ``allowed_uses`` names. CA profiles have no extended key
    usage because istiod verifies its CA with Go's serverAuth default, which any EKU
    list without serverAuth would break. ``max_path_length`` of ``None`` means the
    basicConstraints carry no pathlen.
    """

    is_ca: bool
    key_usages: tuple[str, ...]
    extended_key_usages: tuple[str, ...]
    max_path_length: int | None
    subject_key_identifier: bool
    authority_key_identifier: bool
    subject_alt_names: bool

    @property
    def allowed_uses(self) -> list[str]:
        """The pulumi-tls `allowed_uses` argument."""
        return [*self.key_usages, *self.extended_key_usages]


ROOT_CA = CertificateProfile(
    is_ca=True,
    key_usages=CA_KEY_USAGES,
    extended_key_usages=(),
    max_path_length=None,
    subject_key_identifier=True,
    authority_key_identifier=False,
    subject_alt_names=False,
)

INTERMEDIATE_CA = CertificateProfile(
    is_ca=True,
    key_usages=CA_KEY_USAGES,
    extended_key_usages=(),
    max_path_length=0,
    subject_key_identifier=True,
    authority_key_identifier=True,
    subject_alt_names=True,
)

# A VM's workload certificate, as the Makefile's `<namespace>/workload.conf`.
WORKLOAD = CertificateProfile(
    is_ca=False,
    key_usages=("digital_signature", "key_encipherment"),
    extended_key_usages=("server_auth", "client_auth"),
    max_path_length=None,
    subject_key_identifier=True,
    authority_key_identifier=True,
    subject_alt_names=True,
)
