"""Story tone kept, not recomputed: the rows of `document_tone_kept` (migration 0008).

`document_tone_computed` is the one definition of a document's tone (a human label wins over the active
model's score) and of a story's first copy; it reads every document. The kept table holds its rows, and the
writes that can change them call `refresh_tone` (the stories of the documents they touched) or
`rebuild_tone` (the active model changed) inside their own transaction, so the analyst views read a stored
table and never recompute the archive (benchmarks/bench_storage_reports.py).

What changes a row: a score from the active model (`save_scores`), a human label (`set_label`), a document
that changes story or relevance (whoever changes it calls `refresh_tone` with its id), and the active model
(`register_model`). A new document enters only once it is scored or labelled.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from tonevakt.storage.db import Database

logger = logging.getLogger(__name__)

KEPT = "document_tone_kept"
DEFINITION = "document_tone_computed"
# Past this many stories touched at once (a rescore of the archive), one full recomputation is cheaper.
REBUILD_ABOVE = 50_000


def refresh_tone(db: Database, document_ids: Sequence[str]) -> None:
    """Recompute the kept rows of every story these documents belong to, before or after the change (a
    document that changed story leaves one and joins another). Call inside the write's transaction."""
    ids = sorted(set(document_ids))
    if not ids:
        return
    stories = [
        r[0]
        for r in db.fetchall(
            f"""SELECT story FROM {KEPT} WHERE list_contains(?, document_id)
            UNION SELECT coalesce(story_id, id) FROM documents WHERE list_contains(?, id)""",
            [ids, ids],
        )
    ]
    if len(stories) > REBUILD_ABOVE:
        rebuild_tone(db)
        return
    # A story's rows in every voice are recomputed: the definition's window partitions by (voice, story), so
    # whole partitions come back. The filter is a constant list on a partition column, which DuckDB applies
    # before the window and the joins (a semi-join with a subquery would be applied after: the whole archive).
    db.execute(f"DELETE FROM {KEPT} WHERE list_contains(?, story)", [stories])
    db.execute(
        f"INSERT INTO {KEPT} SELECT * FROM {DEFINITION} WHERE list_contains(?, story) "
        "ORDER BY published_at, document_id",
        [stories],
    )


def rebuild_tone(db: Database) -> int:
    """Recompute every kept row (the active model changed). Call inside the write's transaction."""
    db.execute(f"DELETE FROM {KEPT}")
    db.execute(f"INSERT INTO {KEPT} SELECT * FROM {DEFINITION} ORDER BY published_at, document_id")
    n = int(db.scalar(f"SELECT count(*) FROM {KEPT}"))
    logger.info("recomputed the tone of %d documents for the active model", n)
    return n


def active_model(db: Database) -> str | None:
    """The id the views read scores from (as the definition chooses it)."""
    return db.scalar("SELECT id FROM models WHERE active LIMIT 1")
