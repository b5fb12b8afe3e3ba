"""The seed behind the report, dashboard and trend tests (tests/support/seed.py) checked on its own: every
document it writes is stored, and every relevant one with an active model's score reaches the document_tone
view that the reports read."""

from __future__ import annotations

from typing import Any

from tests.support.seed import seed, seed_settings
from tonevakt.storage.db import database


def test_seed_writes_what_the_views_read(make_settings: Any) -> None:
    """The seed itself: every relevant document with an active score reaches document_tone."""
    settings = seed_settings(make_settings)
    written = seed(settings, history_weeks=2)
    with database(settings.db_path) as db:
        in_view = db.scalar("SELECT count(*) FROM document_tone")
        stored = db.scalar("SELECT count(*) FROM documents")
    relevant_active = sum(1 for d in written["docs"] if d.relevant and d.title not in ("Gammel modell",))
    assert stored == len(written["docs"])
    assert in_view == relevant_active
