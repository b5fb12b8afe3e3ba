"""The stored side of near-copy grouping (`stories.py`): every document of the grouping window with its MinHash
signature (`story_signatures`) and its LSH band keys (`story_bands`, migration 0010).

A document is signed once, when it is stored (`add`, inside the batch's transaction). A pass then asks SQL for
the stored documents that share a bucket with one of its new documents (`candidates`) instead of reading and
signing every text of the last `stories.STORY_WINDOW`: the work of a pass follows its batch, not the window, and
memory holds the candidates' signatures only. `refresh` prunes rows that left the window and signs documents of
the window that have none (stored before migration 0010, or written by a path other than `batch.store_outcomes`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import numpy as np

from tonevakt.models import StoryMember
from tonevakt.storage.db import Database
from tonevakt.storage.stories import (
    BANDS,
    DOCUMENT_KEY_SQL,
    MAX_BUCKET_STORIES,
    band_keys,
    text_signature,
    to_bytes,
)

REFRESH_CHUNK = 5_000  # documents read and signed per step of a backfill (bounded memory)


def _insert(db: Database, signed: Sequence[tuple[str, np.ndarray | None]], since: datetime) -> None:
    """Store the signatures of stored documents, after the rows already there and in the order given; a
    document published before `since` (read from `documents`, as stored) never enters the window."""
    if not signed:
        return
    first = int(db.scalar("SELECT coalesce(max(seq), 0) FROM story_signatures")) + 1
    db.execute(
        """INSERT INTO story_signatures (document_id, story_id, published_at, seq, signature)
           SELECT d.id, coalesce(d.story_id, d.id), d.published_at, n.seq, n.signature
           FROM (SELECT unnest(?) AS id, unnest(?) AS seq, unnest(?) AS signature) n
           JOIN documents d ON d.id = n.id
           WHERE d.published_at >= ?""",
        [
            [i for i, _ in signed],
            list(range(first, first + len(signed))),
            [to_bytes(s) for _, s in signed],
            since,
        ],
    )
    with_bands = [(i, s) for i, s in signed if s is not None]
    if with_bands:
        db.execute(
            """INSERT INTO story_bands (band, bucket, seq)
               SELECT n.band, n.bucket, s.seq
               FROM (SELECT unnest(?) AS id, unnest(?) AS band, unnest(?) AS bucket) n
               JOIN story_signatures s ON s.document_id = n.id AND s.seq >= ?""",
            [
                [i for i, _ in with_bands for _ in range(BANDS)],
                list(range(BANDS)) * len(with_bands),
                [k for _, s in with_bands for k in band_keys(s)],
                first,
            ],
        )


def add(
    db: Database, new_ids: Sequence[str], signatures: Mapping[str, np.ndarray | None], since: datetime
) -> None:
    """Store the signatures of newly stored documents (call inside the batch's transaction, after the insert)."""
    _insert(db, [(i, signatures[i]) for i in new_ids if i in signatures], since)


def refresh(db: Database, since: datetime) -> int:
    """Prune rows published before `since`; sign the window's documents that have no row yet, oldest stored
    first, `REFRESH_CHUNK` at a time. Returns how many documents were signed."""
    with db.transaction():
        db.execute(
            "DELETE FROM story_bands WHERE seq IN (SELECT seq FROM story_signatures WHERE published_at < ?)",
            [since],
        )
        db.execute("DELETE FROM story_signatures WHERE published_at < ?", [since])
    missing = [
        r[0]
        for r in db.fetchall(
            """SELECT d.id FROM documents d ANTI JOIN story_signatures s ON s.document_id = d.id
               WHERE d.published_at >= ? ORDER BY d.collected_at, d.id""",
            [since],
        )
    ]
    for start in range(0, len(missing), REFRESH_CHUNK):
        chunk = missing[start : start + REFRESH_CHUNK]
        texts = dict(
            db.fetchall(
                f"""SELECT id, {DOCUMENT_KEY_SQL} FROM documents
                    WHERE published_at >= ? AND id IN (SELECT unnest(?))""",
                [since, chunk],
            )
        )
        with db.transaction():
            _insert(db, [(i, text_signature(texts[i])) for i in chunk if i in texts], since)
    return len(missing)


def candidates(db: Database, since: datetime, wanted: Sequence[tuple[int, int]]) -> list[StoryMember]:
    """The stored documents published since `since` that `stories.StoryIndex` would keep in the wanted
    (band, key) buckets: in each bucket the first member of each story, at most `MAX_BUCKET_STORIES` stories,
    earliest first. Grouping a batch against these gives the same stories as grouping it against the whole
    window, since a new document only ever looks into its own buckets."""
    if not wanted:
        return []
    rows = db.fetchall(
        """WITH wanted AS (SELECT unnest(?) AS band, unnest(?) AS bucket),
           hits AS (
               SELECT b.band, b.bucket, s.document_id, s.story_id, s.seq, s.signature
               FROM story_bands b
               JOIN wanted w ON b.band = w.band AND b.bucket = w.bucket
               JOIN story_signatures s ON s.seq = b.seq
               WHERE s.published_at >= ?),
           first_of_story AS (
               SELECT *, row_number() OVER (PARTITION BY band, bucket, story_id ORDER BY seq) AS nth FROM hits),
           kept AS (
               SELECT *, row_number() OVER (PARTITION BY band, bucket ORDER BY seq) AS place
               FROM first_of_story WHERE nth = 1)
           SELECT DISTINCT document_id, story_id, signature, seq FROM kept WHERE place <= ? ORDER BY seq""",
        [[w[0] for w in wanted], [w[1] for w in wanted], since, MAX_BUCKET_STORIES],
    )
    return [StoryMember(r[0], r[1], r[2]) for r in rows]
