"""The profile data says, literally, what issue #2 (and the Makefile) specify."""

from istio_ca.profiles import INTERMEDIATE_CA, ROOT_CA, WORKLOAD

MAKEFILE_CA_KEY_USAGES = {"digital_signature", "content_commitment", "key_encipherment", "cert_signing"}


def test_root_profile_matches_makefile_root_ca_conf() -> None:
    assert ROOT_CA.is_ca
    assert set(ROOT_CA.key_usages) == MAKEFILE_CA_KEY_USAGES
    assert ROOT_CA.max_path_length is None
    assert ROOT_CA.subject_key_identifier
    assert not ROOT_CA.authority_key_identifier
    assert not ROOT_CA.subject_alt_names


def test_intermediate_profile_matches_makefile_intermediate_conf() -> None:
    assert INTERMEDIATE_CA.is_ca
    assert set(INTERMEDIATE_CA.key_usages) == MAKEFILE_CA_KEY_USAGES
    assert INTERMEDIATE_CA.max_path_length == 0
    assert INTERMEDIATE_CA.subject_key_identifier
    assert INTERMEDIATE_CA.authority_key_identifier
    assert INTERMEDIATE_CA.subject_alt_names


def test_no_ca_profile_has_an_extended_key_usage() -> None:
    # istiod checks its CA with Go's serverAuth default; an EKU list would break it.
    assert ROOT_CA.extended_key_usages == ()
    assert INTERMEDIATE_CA.extended_key_usages == ()
    assert ROOT_CA.allowed_uses == list(ROOT_CA.key_usages)


def test_workload_profile_matches_makefile_workload_conf() -> None:
    assert not WORKLOAD.is_ca
    assert set(WORKLOAD.key_usages) == {"digital_signature", "key_encipherment"}
    assert set(WORKLOAD.extended_key_usages) == {"server_auth", "client_auth"}
    assert WORKLOAD.allowed_uses == ["digital_signature", "key_encipherment", "server_auth", "client_auth"]
    assert WORKLOAD.max_path_length is None
    assert WORKLOAD.subject_key_identifier
    assert WORKLOAD.authority_key_identifier
    assert WORKLOAD.subject_alt_names
