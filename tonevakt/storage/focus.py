"""Reading a few weeks fast: the analyst views computed once, for the stories that touch those weeks.

`story_tone` (and every weekly view built on it) keeps the earliest copy of each story, so it is computed
over every document each time it is read; a weekly report reads it some thirty times. `focus_since` runs
that computation once, on this connection only, for the stories that have a copy published at or after
`since`, and keeps the result in temporary tables named like the views (`document_tone`, `story_tone`).
DuckDB resolves names in the temporary schema first, so on this connection the views and every query that
reads them use the focused tables; other connections and the file are untouched (a read-only connection
can do this too).

The focused tables are exact for every week from `since` on: a story with a copy in those weeks has all
its copies (earlier ones included) in the focused `document_tone`, so its earliest copy, its week and its
number of copies are the same as in the full views. Weeks before `since` are incomplete: read them
without focusing.
"""

from __future__ import annotations

import logging
from datetime import datetime

import duckdb

from tonevakt.storage.db import Database

logger = logging.getLogger(__name__)

FOCUSED = ("document_tone", "story_tone")
OLDER_CHUNK = 2000  # ids per statement when reading older copies


def focus_since(db: Database, since: datetime) -> bool:
    """Compute `document_tone` and `story_tone` once for the stories with a copy published at or after
    `since`, as temporary tables that stand in for the views on this connection. Returns False (and
    leaves the views as they are) if it cannot."""
    try:
        for name in reversed(FOCUSED):
            db.execute(f"DROP TABLE IF EXISTS temp.{name}")
        # The file's own views, by catalog name: once temp.document_tone exists, "main.document_tone" is it.
        views = '"{}".main'.format(str(db.scalar("SELECT current_database()")).replace('"', '""'))
        db.execute(
            f"CREATE TEMP TABLE document_tone AS SELECT * FROM {views}.document_tone WHERE published_at >= ?",
            [since],
        )
        # Older copies of the stories seen since `since`: found on the documents table, then read from the view
        # by id (a list of constants is filtered in the scan, before the view's joins: a semi-join is not).
        older = [r[0] for r in db.fetchall(
            """WITH recent AS (
                   SELECT DISTINCT voice, coalesce(story_id, id) AS story FROM documents WHERE published_at >= ?
               )
               SELECT d.id FROM documents d
               WHERE d.published_at < ? AND (d.voice, coalesce(d.story_id, d.id)) IN (SELECT voice, story FROM recent)""",
            [since, since],
        )]  # fmt: skip
        for i in range(0, len(older), OLDER_CHUNK):
            ids = older[i : i + OLDER_CHUNK]
            marks = ", ".join("?" * len(ids))
            db.execute(f"INSERT INTO temp.document_tone SELECT * FROM {views}.document_tone WHERE document_id IN ({marks})",
                       ids)  # fmt: skip
        # The file's story_tone view reads `document_tone`, which is now the focused table.
        db.execute(f"CREATE TEMP TABLE story_tone AS SELECT * FROM {views}.story_tone")
    except duckdb.Error as e:
        logger.warning(
            "could not focus the views on the weeks since %s (%s); reading the full views", since, e
        )
        unfocus(db)
        return False
    return True


def unfocus(db: Database) -> None:
    """Drop the focused tables: the views are read in full again."""
    for name in reversed(FOCUSED):
        try:
            db.execute(f"DROP TABLE IF EXISTS temp.{name}")
        except duckdb.Error:  # a connection in a failed state: nothing to drop
            pass
