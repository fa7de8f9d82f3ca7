"""Fixtures of every test."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def working_directory_of_its_own(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A unit test runs in a fresh directory of its own (not its tmp_path, which some tests export to): a
    program run under mocks renders into `rendered/<cluster>` of the working directory, which must be
    neither the checkout (directories for keys left in the tree) nor shared with another test (`make test`
    runs on parallel workers, which would write the same `rendered/*/.gitignore` at once). A test may still
    `monkeypatch.chdir` elsewhere. End-to-end tests run the CLI in directories of their own already."""
    if request.node.get_closest_marker("e2e") is None:
        monkeypatch.chdir(request.getfixturevalue("tmp_path_factory").mktemp("cwd"))
