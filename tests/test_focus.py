"""storage/focus.py: the views computed once for recent weeks give exactly the rows of the full views for
those weeks (stories whose earliest copy is older, copies on both sides of the boundary, human labels), on
a read-only connection, and leave the file untouched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tonevakt.storage.db import open_database, open_for_reading
from tonevakt.storage.focus import focus_since, unfocus

SINCE = datetime(2026, 10, 5, tzinfo=UTC)  # a Monday
VIEWS = ("weekly_tone", "weekly_volume", "weekly_topic_tone", "weekly_region_tone", "weekly_rating")


def _seed(path: Path) -> None:
    db = open_database(path)
    db.execute("INSERT INTO sources (id, kind, voice, name) VALUES ('a', 'rss', 'media', 'A'), "
               "('b', 'appstore', 'patient', 'B')")  # fmt: skip
    db.execute("INSERT INTO models VALUES ('m', 'embedded', '', NULL, TRUE, now())")
    rows = []
    day = timedelta(days=1)
    # (id, source, voice, published, story, tone, rating)
    plan = [
        ("old-1", "a", "media", SINCE - 20 * day, "old-1", -0.5, None),  # before the boundary only
        ("span-1", "a", "media", SINCE - 2 * day, "span-1", -0.8, None),  # a story across the boundary:
        ("span-2", "a", "media", SINCE + 1 * day, "span-1", 0.4, None),  # its first copy is older
        ("new-1", "a", "media", SINCE + 2 * day, "new-1", 0.3, None),
        ("new-2", "a", "media", SINCE + 3 * day, "new-1", 0.1, None),  # a copy of new-1
        ("new-3", "a", "media", SINCE + 9 * day, "new-3", -0.2, None),
        ("pat-1", "b", "patient", SINCE + 4 * day, "pat-1", 0.7, 5),
        ("pat-2", "b", "patient", SINCE - 1 * day, "pat-2", -0.1, 2),
        ("pat-3", "b", "patient", SINCE + 10 * day, None, 0.2, 4),  # no story id at all
    ]
    for doc_id, src, voice, at, story, tone, rating in plan:
        rows.append(doc_id)
        db.execute(
            """INSERT INTO documents (id, source_id, voice, kind, title, text, published_at, collected_at, relevant,
                                      topics, regions, region, rating, story_id)
               VALUES (?, ?, ?, 'article', ?, 'Helseplattformen.', ?, ?, TRUE, ['costs'], ['trondelag'], NULL, ?, ?)""",
            [doc_id, src, voice, doc_id, at, at, rating, story],
        )  # fmt: skip
        label = "negative" if tone < -0.2 else "positive" if tone > 0.2 else "neutral"
        db.execute(
            "INSERT INTO scores VALUES (?, 'm', ?, ?, 0.3, 0.4, 0.3, 'x', 1, now())", [doc_id, tone, label]
        )
    db.execute("INSERT INTO labels VALUES ('new-3', 'positive', 'test', NULL, now())")
    db.close()


def _rows(db, sql: str) -> list[tuple]:  # noqa: ANN001
    return sorted(db.fetchall(sql), key=repr)


def test_focused_views_equal_the_full_views_from_the_boundary_on(tmp_path: Path) -> None:
    path = tmp_path / "t.duckdb"
    _seed(path)
    first_week = "2026-W41"  # the week of SINCE
    full = open_for_reading(path)
    focused = open_for_reading(path)
    try:
        assert focus_since(focused, SINCE)
        # The focused tables hold the recent documents plus every older copy of a recent story.
        ids = {r[0] for r in focused.fetchall("SELECT document_id FROM document_tone")}
        assert ids == {"span-1", "span-2", "new-1", "new-2", "new-3", "pat-1", "pat-3"}
        for view in ("story_tone", "document_tone", *VIEWS):
            expected = _rows(full, f"SELECT * FROM {view} WHERE week >= '{first_week}'")
            assert _rows(focused, f"SELECT * FROM {view} WHERE week >= '{first_week}'") == expected, view
        # span-1's earliest copy is older than the boundary: the story belongs to that older week, not to SINCE's.
        assert focused.fetchall("SELECT document_id FROM story_tone WHERE story_id = 'span-1'") == [
            ("span-1",)
        ]
        copies = "SELECT voice, stories, documents FROM weekly_volume WHERE week = '2026-W41'"
        assert _rows(focused, copies) == _rows(full, copies) == [("media", 1, 2), ("patient", 1, 1)]
        unfocus(focused)
        assert _rows(focused, "SELECT * FROM story_tone") == _rows(full, "SELECT * FROM story_tone")
    finally:
        full.close()
        focused.close()
    # The file itself is unchanged: no table was added to it.
    db = open_for_reading(path)
    try:
        assert db.scalar("SELECT count(*) FROM information_schema.tables WHERE table_name = 'story_tone' "
                         "AND table_type = 'BASE TABLE'") == 0  # fmt: skip
    finally:
        db.close()
