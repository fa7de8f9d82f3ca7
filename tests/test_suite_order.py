"""`make test` runs the suite on two workers, whole files each, the slowest end-to-end files first."""

from __future__ import annotations

from tests.e2e.conftest import SLOWEST_FIRST
from tests.program import PROJECT_DIR


def test_every_file_named_slowest_first_is_an_end_to_end_test_file() -> None:
    e2e = PROJECT_DIR / "tests" / "e2e"
    assert [name for name in SLOWEST_FIRST if not (e2e / name).is_file()] == []
    assert len(set(SLOWEST_FIRST)) == len(SLOWEST_FIRST)


def test_make_test_hands_out_files_in_the_order_collected() -> None:
    """Without --no-loadscope-reorder xdist would hand out the files with the most tests first, whatever they take."""
    makefile = (PROJECT_DIR / "Makefile").read_text()
    assert "-n 2 --dist loadfile --no-loadscope-reorder" in makefile
