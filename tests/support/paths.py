"""Where the tests find the repository, their fixture files and the labelled data sets in ../shared beside the
repository, and the one rule for missing data: a test that needs ../shared is skipped when ../shared is not there
(`needs_shared`), and fails when ../shared is there but the file it needs is missing (`shared_file`)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent.parent
FIXTURES = REPO / "tests" / "fixtures"
SHARED = REPO.parent / "shared"
NOREC = SHARED / "data" / "norec_sentence"
TONE_DATA = SHARED / "data" / "helseplattformen_tone"

needs_shared = pytest.mark.skipif(
    not SHARED.exists(), reason="../shared (the labelled data sets) not beside the repo"
)


def shared_file(path: Path) -> Path:
    """A data file the test needs: ../shared is there, so a missing file is a failure, not a skip."""
    assert path.exists(), f"{path} is missing although ../shared is present"
    return path


def tonevakt_command() -> str:
    """The installed console script `tonevakt` beside the interpreter that runs the tests, for the tests that
    run it as a real subprocess (as a user or systemd does)."""
    exe = shutil.which("tonevakt", path=str(Path(sys.executable).parent))
    assert exe, "the console script 'tonevakt' is installed beside the interpreter (make install)"
    return exe
