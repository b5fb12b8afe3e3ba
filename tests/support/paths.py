"""Where the tests find the repository, their fixture files and the NoReC data beside the repository."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
FIXTURES = REPO / "tests" / "fixtures"
NOREC = REPO.parent / "shared" / "data" / "norec_sentence"
