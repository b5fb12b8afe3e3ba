"""Where the tests find the repository, their fixture files and the NoReC data beside the repository."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
FIXTURES = REPO / "tests" / "fixtures"
NOREC = REPO.parent / "shared" / "data" / "norec_sentence"


def tonevakt_command() -> str:
    """The installed console script `tonevakt` beside the interpreter that runs the tests, for the tests that
    run it as a real subprocess (as a user or systemd does)."""
    exe = shutil.which("tonevakt", path=str(Path(sys.executable).parent))
    assert exe, "the console script 'tonevakt' is installed beside the interpreter (make install)"
    return exe
