"""Whether a cluster's existing `cacerts` may be written: by ownership first, then by the root it chains to."""

from __future__ import annotations

import pytest

from istio_ca.cacerts import CacertsError, LiveCacerts, Target, chains_to, found_root, judge
from istio_ca.pem import sha256_fingerprint, single_certificate
from tests.roots import make_intermediate, make_root

OURS = "organization/istio-ca/prod"
TARGET = Target(cluster="east", kubeconfig="unused", context=None, namespace="istio-system", owner=OURS)
ROOT_CERT, ROOT_KEY = make_root(organization="Ours")
OTHER_ROOT_CERT, OTHER_ROOT_KEY = make_root(organization="Theirs")
OUR_INTERMEDIATE, OUR_INTERMEDIATE_KEY = make_intermediate(ROOT_CERT, ROOT_KEY)
THEIR_INTERMEDIATE, THEIR_INTERMEDIATE_KEY = make_intermediate(OTHER_ROOT_CERT, OTHER_ROOT_KEY)


def makefile_cacerts(intermediate: str, key: str, root: str, **extra: str) -> dict[str, str]:
    """What `kubectl create secret generic cacerts --from-file=...` makes from the Makefile's files."""
    return {
        "ca-cert.pem": intermediate,
        "ca-key.pem": key,
        "root-cert.pem": root,
        "cert-chain.pem": intermediate + root,
    }


FOREIGN_OURS = LiveCacerts(
    exists=True,
    type="Opaque",
    files={**makefile_cacerts(OUR_INTERMEDIATE, OUR_INTERMEDIATE_KEY, ROOT_CERT), "istio-generated": ""},
)
FOREIGN_THEIRS = LiveCacerts(
    exists=True, type="Opaque", files=makefile_cacerts(THEIR_INTERMEDIATE, THEIR_INTERMEDIATE_KEY, OTHER_ROOT_CERT)
)


OURS_WITH_THEIR_ROOT = LiveCacerts(exists=True, owner=OURS, type="Opaque", files=FOREIGN_THEIRS.files)


@pytest.mark.parametrize(
    ("live", "roots", "replace_foreign", "take_over"),
    [
        (LiveCacerts(exists=False), [], False, False),
        (LiveCacerts(exists=True, owner=OURS, type="Opaque", files={}), [ROOT_CERT], False, False),
        # Ours, trusting one of the roots the stack holds (its own renewals and rotations).
        (
            LiveCacerts(exists=True, owner=OURS, type="Opaque", files=FOREIGN_OURS.files),
            [OTHER_ROOT_CERT, ROOT_CERT],
            False,
            False,
        ),
        (OURS_WITH_THEIR_ROOT, None, False, False),  # the stack's roots cannot be told now: judged before
        (OURS_WITH_THEIR_ROOT, [ROOT_CERT], True, False),  # replaced on purpose
        (FOREIGN_OURS, [ROOT_CERT], False, True),
        (FOREIGN_OURS, [OTHER_ROOT_CERT, ROOT_CERT], False, True),  # a renamed stack's, mid-rotation
        (FOREIGN_THEIRS, [ROOT_CERT], True, True),
        (FOREIGN_THEIRS, [], True, True),
    ],
    ids=[
        "absent",
        "ours",
        "ours, a root we trust",
        "ours, roots unknown",
        "ours, opted in",
        "foreign, chains to our root",
        "foreign, chains to a trusted root",
        "foreign, opted in",
        "opted in, new root",
    ],
)
def test_what_may_be_written(
    live: LiveCacerts, roots: list[str] | None, replace_foreign: bool, take_over: bool
) -> None:
    assert judge(TARGET, live, roots, replace_foreign) is take_over


@pytest.mark.parametrize("roots", [[ROOT_CERT], []], ids=["another root", "no root yet (destroyed)"])
def test_our_own_cacerts_holding_a_root_the_stack_no_longer_has_is_refused(roots: list[str]) -> None:
    with pytest.raises(CacertsError) as error:
        judge(TARGET, OURS_WITH_THEIR_ROOT, roots, replace_foreign=False)
    message = str(error.value)
    assert message.startswith("east: Secret istio-system/cacerts was written by this stack, but holds a root")
    assert found_root(OURS_WITH_THEIR_ROOT) in message
    assert "pulumi stack import" in message and "existingRoot" in message
    assert "`replaceForeignCacerts: true` in east's entry" in message


@pytest.mark.parametrize(
    ("live", "root"),
    [
        (FOREIGN_THEIRS, [ROOT_CERT]),
        (FOREIGN_OURS, []),  # a root still to be created cannot have signed it
        (
            LiveCacerts(
                exists=True, owner="organization/istio-ca/other-stack", type="Opaque", files=FOREIGN_THEIRS.files
            ),
            [ROOT_CERT],
        ),
    ],
    ids=["another root", "root not created yet", "another stack's"],
)
def test_a_foreign_cacerts_with_another_root_is_refused_with_both_ways_forward(
    live: LiveCacerts, root: list[str]
) -> None:
    with pytest.raises(CacertsError) as error:
        judge(TARGET, live, root, replace_foreign=False)
    message = str(error.value)
    assert message.startswith("east: Secret istio-system/cacerts was not written by this stack")
    assert found_root(live) in message
    assert "existingRoot" in message and "`replaceForeignCacerts: true` in east's entry" in message
    assert "PRIVATE KEY" not in message


def test_the_refusal_names_the_root_found_by_subject_and_fingerprint() -> None:
    fingerprint = sha256_fingerprint(single_certificate(OTHER_ROOT_CERT))
    assert found_root(FOREIGN_THEIRS) == f"O=Theirs (SHA-256 {fingerprint})"
    no_root = LiveCacerts(exists=True, type="Opaque", files={"ca-cert.pem": THEIR_INTERMEDIATE})
    assert found_root(no_root) == "no root-cert.pem; its ca-cert.pem is issued by O=Theirs"


def test_a_cacerts_of_another_type_is_refused_even_when_opted_in() -> None:
    live = LiveCacerts(exists=True, type="istio.io/ca-root", files=FOREIGN_OURS.files)
    with pytest.raises(CacertsError, match=r"has type 'istio\.io/ca-root', not 'Opaque'.*delete secret cacerts"):
        judge(TARGET, live, [ROOT_CERT], replace_foreign=True)


def test_chaining_is_a_verified_signature_not_a_name() -> None:
    assert chains_to(FOREIGN_OURS, [ROOT_CERT])
    assert not chains_to(FOREIGN_THEIRS, [ROOT_CERT])
    # Same subject as our root, other key: the names match, the signature does not.
    impostor_cert, impostor_key = make_root(organization="Ours")
    impostor = LiveCacerts(
        exists=True, type="Opaque", files={"ca-cert.pem": make_intermediate(impostor_cert, impostor_key)[0]}
    )
    assert not chains_to(impostor, [ROOT_CERT])
    assert not chains_to(LiveCacerts(exists=True, type="Opaque", files={"ca-cert.pem": "junk"}), [ROOT_CERT])
