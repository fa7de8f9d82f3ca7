"""The one mapping from an X.509 profile to pulumi-tls: every profile field changes what is issued."""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

import pytest

from istio_ca.certificate import ProfileError, extensions, subject_alt_names
from istio_ca.profiles import INTERMEDIATE_CA, ROOT_CA, WORKLOAD, CertificateProfile

PROFILES = {"root": ROOT_CA, "intermediate": INTERMEDIATE_CA, "workload": WORKLOAD}
SANS = {"dns_names": ["istiod.istio-system.svc"], "uris": ["spiffe://cluster.local/ns/a/sa/b"]}


def issued_arguments(profile: CertificateProfile, self_signed: bool) -> dict[str, object]:
    """Every argument the profile decides, for the certificate and its CSR."""
    sans = SANS if profile.subject_alt_names else {"dns_names": None, "uris": None}
    return {**extensions(profile, self_signed=self_signed), **subject_alt_names(profile, **sans)}


@pytest.mark.parametrize("name", PROFILES)
def test_every_profile_field_changes_the_provider_arguments(name: str) -> None:
    profile = PROFILES[name]
    self_signed = profile is ROOT_CA
    baseline = issued_arguments(profile, self_signed)
    changes: dict[str, Any] = {
        "is_ca": not profile.is_ca,
        "key_usages": (*profile.key_usages, "crl_signing"),
        "extended_key_usages": (*profile.extended_key_usages, "code_signing"),
        "max_path_length": 1 if profile.max_path_length is None else None,
        "subject_key_identifier": not profile.subject_key_identifier,
        "subject_alt_names": not profile.subject_alt_names,
    }
    if self_signed:
        changes["authority_key_identifier"] = not profile.authority_key_identifier
    assert set(changes) | {"authority_key_identifier"} == {f.name for f in fields(CertificateProfile)}
    for field, value in changes.items():
        assert issued_arguments(replace(profile, **{field: value}), self_signed) != baseline, field


def test_a_locally_signed_certificate_without_an_authority_key_identifier_is_refused() -> None:
    with pytest.raises(ProfileError, match="always carries an authorityKeyIdentifier"):
        extensions(replace(INTERMEDIATE_CA, authority_key_identifier=False), self_signed=False)


def test_names_for_a_profile_without_a_subject_alt_name_are_refused() -> None:
    with pytest.raises(ProfileError, match="carries no subjectAltName"):
        subject_alt_names(ROOT_CA, dns_names=["x.example"], uris=None)
    assert subject_alt_names(INTERMEDIATE_CA, **SANS) == SANS


def test_the_intermediate_profile_maps_to_the_makefiles_extensions() -> None:
    assert extensions(INTERMEDIATE_CA, self_signed=False) == {
        "allowed_uses": ["digital_signature", "content_commitment", "key_encipherment", "cert_signing"],
        "is_ca_certificate": True,
        "max_path_length": 0,
        "set_subject_key_id": True,
    }
    assert extensions(ROOT_CA, self_signed=True)["set_authority_key_id"] is False
