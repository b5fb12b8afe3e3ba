"""Idempotent, transactional writes and the reads the pipeline needs. Records in, records out."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from tonevakt.models import (
    TONE_LABELS,
    Document,
    FetchLogEntry,
    FetchStatus,
    HumanLabel,
    IdenticalText,
    ItemOutcome,
    PendingItem,
    Score,
    Source,
)
from tonevakt.storage import story_index
from tonevakt.storage.db import Database
from tonevakt.storage.kept_tone import active_model, rebuild_tone, refresh_tone
from tonevakt.storage.polling import HEALTH_INPUTS, backoff_delay, source_after_fetch
from tonevakt.storage.stories import DOCUMENT_KEY_SQL
from tonevakt.urls import canonical_url

DOCUMENT_COLUMNS = (
    "id",
    "source_id",
    "voice",
    "kind",
    "url",
    "canonical_url",
    "title",
    "lead",
    "text",
    "author",
    "outlet",
    "published_at",
    "published_estimated",
    "collected_at",
    "language",
    "relevant",
    "matched",
    "topics",
    "regions",
    "region",
    "paywalled",
    "rating",
    "app_version",
    "story_id",
    "redactions",
    "extra",
)

INSERT_CHUNK = 250  # documents per INSERT statement


def _now() -> datetime:
    return datetime.now(UTC)


# -- sources -------------------------------------------------------------------------------------


def sync_sources(db: Database, sources: Iterable[Source]) -> None:
    """Insert or update configured sources; health columns are kept. Sources removed from the config
    stay (their documents refer to them) but are marked disabled."""
    sources = list(sources)
    with db.transaction():
        for s in sources:
            db.execute(
                """INSERT INTO sources (id, kind, voice, name, region, url, enabled, interval_minutes, updated_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, voice = excluded.voice,
                     name = excluded.name, region = excluded.region, url = excluded.url,
                     enabled = excluded.enabled, interval_minutes = excluded.interval_minutes,
                     updated_at = excluded.updated_at""",
                [
                    s.id,
                    s.kind,
                    s.voice,
                    s.name,
                    s.region,
                    s.url or s.path or s.app_id,
                    s.enabled,
                    s.interval_minutes,
                    _now(),
                ],
            )
        ids = [s.id for s in sources]
        if ids:
            db.execute("UPDATE sources SET enabled = FALSE WHERE id NOT IN (SELECT unnest(?))", [ids])


def source_state(db: Database) -> dict[str, dict[str, Any]]:
    """Per source: conditional-GET validators, body hash, health and when it is next due."""
    return {r["id"]: r for r in db.rows("SELECT * FROM sources")}


def record_fetch(db: Database, entry: FetchLogEntry, interval_minutes: int = 60) -> None:
    """Append to the fetch log and update the source's health (`polling.source_after_fetch`; call inside the
    batch's transaction)."""
    db.execute(
        """INSERT INTO fetch_log (source_id, url, status, http_status, reason, started_at, duration_ms, bytes,
                                  items, new_documents) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        [
            entry.source_id,
            entry.url,
            entry.status.value,
            entry.http_status,
            entry.reason,
            entry.started_at,
            entry.duration_ms,
            entry.bytes,
            entry.items,
            entry.new_documents,
        ],
    )
    if not entry.primary:
        return
    rows = db.rows(f"SELECT {', '.join(HEALTH_INPUTS)} FROM sources WHERE id = ?", [entry.source_id])
    health = source_after_fetch(rows[0] if rows else None, entry, interval_minutes)
    db.execute(
        f"UPDATE sources SET {', '.join(f'{k} = ?' for k in health)} WHERE id = ?",
        [*health.values(), entry.source_id],
    )


def source_health(db: Database) -> list[dict[str, Any]]:
    return db.rows(
        """SELECT id, kind, voice, region, enabled, last_status, last_success_at, last_error_at, last_error,
                  failing_since, consecutive_failures, next_due_at, effective_interval_minutes,
                  coalesce(pending_items, 0) AS pending_items, coalesce(items_given_up, 0) AS items_given_up,
                  (SELECT p.last_error FROM pending_items p WHERE p.source_id = s.id AND p.gave_up_at IS NULL
                   ORDER BY p.last_attempt_at DESC NULLS LAST LIMIT 1) AS pending_reason,
                  (SELECT count(*) FROM documents d WHERE d.source_id = s.id) AS documents
           FROM sources s ORDER BY id"""
    )


# -- pending items (failed or deferred article pages and feed pages) ------------------------------


def pending_items(db: Database) -> dict[str, list[PendingItem]]:
    """Per source: the items still to fetch (not given up), oldest first. The pass hands them to the
    source's collector, which tries those that are due."""
    out: dict[str, list[PendingItem]] = {}
    for r in db.rows(
        """SELECT source_id, url, kind, attempts, coalesce(last_error, '') AS last_error, next_due_at
           FROM pending_items WHERE gave_up_at IS NULL ORDER BY first_seen_at, url"""
    ):
        out.setdefault(r["source_id"], []).append(PendingItem(**r))
    return out


def record_items(
    db: Database,
    source_id: str,
    interval_minutes: int,
    items: Sequence[ItemOutcome],
    max_attempts: int,
    now: datetime | None = None,
) -> None:
    """Remember what became of a source's items (call inside the batch's transaction).

    Done (fetched, or gone for good): forgotten. Failed: attempts + 1, next try after
    `backoff_delay(interval, attempts - 1)` (the source's next poll, then twice as long each time), given up
    after `max_attempts`. Not tried (time budget, pass deadline, per-pass cap): due again at once, no attempt
    counted. The source's `pending_items` and `items_given_up` are brought up to date."""
    now = now or _now()
    for item in items:
        if item.done:
            db.execute("DELETE FROM pending_items WHERE source_id = ? AND url = ?", [source_id, item.url])
            continue
        row = db.fetchone(
            "SELECT attempts, gave_up_at FROM pending_items WHERE source_id = ? AND url = ?",
            [source_id, item.url],
        )
        attempts = row[0] if row else 0
        gave_up = row[1] if row else None
        status = item.status.value if item.status is not None else "waiting"
        if item.tried:
            attempts += 1
            due: datetime | None = now + backoff_delay(interval_minutes, attempts - 1)
            if attempts >= max_attempts:
                due, gave_up = None, now
        else:
            due = now
        db.execute(
            """INSERT INTO pending_items (source_id, url, kind, attempts, first_seen_at, last_attempt_at,
                                          last_status, last_error, next_due_at, gave_up_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (source_id, url) DO UPDATE SET kind = excluded.kind, attempts = excluded.attempts,
                 last_attempt_at = coalesce(excluded.last_attempt_at, pending_items.last_attempt_at),
                 last_status = excluded.last_status, last_error = excluded.last_error,
                 next_due_at = excluded.next_due_at, gave_up_at = excluded.gave_up_at""",
            [
                source_id,
                item.url,
                item.kind,
                attempts,
                now,
                now if item.tried else None,
                status,
                item.reason,
                due,
                gave_up,
            ],
        )
    db.execute(
        """UPDATE sources SET
             pending_items = (SELECT count(*) FROM pending_items WHERE source_id = ? AND gave_up_at IS NULL),
             items_given_up = (SELECT count(*) FROM pending_items WHERE source_id = ? AND gave_up_at IS NOT NULL)
           WHERE id = ?""",
        [source_id, source_id, source_id],
    )


# -- documents -----------------------------------------------------------------------------------


def _doc_row(d: Document) -> list[Any]:
    collected = d.collected_at or _now()
    return [
        d.id,
        d.source_id,
        d.voice,
        d.kind,
        d.url,
        canonical_url(d.url) if d.url else None,
        d.title,
        d.lead,
        d.text,
        d.author,
        d.outlet,
        d.published_at or collected,
        d.published_estimated or d.published_at is None,
        collected,
        d.language,
        d.relevant,
        list(d.matched),
        list(d.topics),
        list(d.regions),
        d.region,
        d.paywalled,
        d.rating,
        d.app_version,
        d.story_id,
        d.redactions,
        json.dumps(d.extra, ensure_ascii=False, default=str) if d.extra else None,
    ]


def existing_ids(db: Database, ids: Sequence[str]) -> set[str]:
    if not ids:
        return set()
    return {r[0] for r in db.fetchall("SELECT id FROM documents WHERE id IN (SELECT unnest(?))", [list(ids)])}


def insert_documents(
    db: Database, docs: Sequence[Document], known: Collection[str] | None = None
) -> list[str]:
    """Insert documents not stored yet; return the ids that were new. `known`: the ids of `docs` already
    stored, when the caller has just asked (`existing_ids`), so the query is not run twice. Call inside a
    transaction for all-or-nothing batches (`store_batch` does)."""
    seen: set[str] = set()
    unique = []
    for d in docs:
        if d.id not in seen:
            seen.add(d.id)
            unique.append(d)
    if known is None:
        known = existing_ids(db, [d.id for d in unique])
    new = [d for d in unique if d.id not in known]
    # Multi-row VALUES in chunks: DuckDB's executemany runs one statement per row, about 20 times slower
    # (a 10,000-item feed took minutes and held the database lock meanwhile; tests/test_reliability_content.py).
    row = "(" + ", ".join("?" for _ in DOCUMENT_COLUMNS) + ")"
    for i in range(0, len(new), INSERT_CHUNK):
        chunk = new[i : i + INSERT_CHUNK]
        db.execute(
            f"INSERT INTO documents ({', '.join(DOCUMENT_COLUMNS)}) VALUES {', '.join([row] * len(chunk))} "
            "ON CONFLICT DO NOTHING",
            [v for d in chunk for v in _doc_row(d)],
        )
    return [d.id for d in new]


def store_batch(
    db: Database,
    docs: Sequence[Document],
    fetches: Sequence[tuple[FetchLogEntry, int]] = (),
    imported_files: Sequence[tuple[str, str, str, int]] = (),
    items: Sequence[tuple[str, int, Sequence[ItemOutcome]]] = (),
    max_item_attempts: int | None = None,
    known: Collection[str] | None = None,
    signatures: Mapping[str, np.ndarray | None] | None = None,
    since: datetime | None = None,
) -> list[str]:
    """One all-or-nothing batch: documents, fetch log rows (with each source's interval), for imported files
    their (content hash, source id, path, rows), and per source (id, interval, item outcomes) what became of
    its pending items (`max_item_attempts`, from collect.max_item_attempts, is then required). `known`: the
    ids of `docs` already stored, if the caller has asked (`insert_documents`). `signatures` (by document id) and
    `since`: the new documents' near-copy signatures, stored with them for those published since then
    (`story_index.add`). Returns the ids of new documents."""
    if items and max_item_attempts is None:
        raise ValueError("store_batch: items need max_item_attempts")
    with db.transaction():
        new = insert_documents(db, docs, known)
        if signatures and since is not None:
            story_index.add(db, new, signatures, since)
        for entry, interval in fetches:
            record_fetch(db, entry, interval)
        for source_id, interval, outcomes in items:
            record_items(db, source_id, interval, outcomes, max_item_attempts or 1)
        for content_hash, source_id, path, rows in imported_files:
            db.execute(
                "INSERT INTO imported_files VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [content_hash, source_id, path, rows, _now()],
            )
    return new


def imported_hashes(db: Database) -> set[str]:
    """Content hashes of every imported file (an inbox file is read once)."""
    return {r[0] for r in db.fetchall("SELECT content_hash FROM imported_files")}


def known_urls(db: Database) -> set[str]:
    """Canonical URLs already stored (plus the news-search links they came from, and items given up after
    collect.max_item_attempts): collectors skip them, so that article pages are fetched and extracted only once."""
    return {
        r[0]
        for r in db.fetchall(
            """SELECT canonical_url FROM documents WHERE canonical_url IS NOT NULL
           UNION SELECT json_extract_string(extra, '$.search_link') FROM documents
           WHERE extra LIKE '%"search_link"%' AND json_extract_string(extra, '$.search_link') IS NOT NULL
           UNION SELECT url FROM pending_items WHERE gave_up_at IS NOT NULL"""
        )
    }


def imported_file(db: Database, content_hash: str) -> dict[str, Any] | None:
    """The `imported_files` row of a file's content (source_id, path, rows, imported_at), if it was imported."""
    rows = db.rows("SELECT * FROM imported_files WHERE content_hash = ?", [content_hash])
    return rows[0] if rows else None


def identical_texts(db: Database, texts: Sequence[str]) -> list[IdenticalText]:
    """Stored documents whose text is one of `texts`, oldest first: input to `stories.share_identical_stories`."""
    if not texts:
        return []
    return [
        IdenticalText(r[0], r[1], r[2], r[3])
        for r in db.fetchall(
            f"""SELECT coalesce(story_id, id), source_id, voice, {DOCUMENT_KEY_SQL} FROM documents
                WHERE text IN (SELECT unnest(?)) ORDER BY collected_at, id""",
            [list(dict.fromkeys(texts))],
        )
    ]


SCORING_COLUMNS = "id, source_id, voice, title, lead, text, url, language, matched, kind"


def document_for_scoring(row: Sequence[Any]) -> Document:
    """A `Document` with what scoring reads, from a row of `SCORING_COLUMNS` (the one place that maps them)."""
    return Document(
        id=row[0],
        source_id=row[1],
        voice=row[2],
        title=row[3],
        lead=row[4] or "",
        text=row[5],
        url=row[6],
        language=row[7],
        matched=list(row[8] or []),
        kind=row[9],
    )


def labelled_documents(db: Database) -> list[HumanLabel]:
    """The documents that carry a human label, with that label, in the order they were labelled."""
    rows = db.fetchall(
        f"""SELECT {", ".join("d." + c for c in SCORING_COLUMNS.split(", "))}, l.label
            FROM labels l JOIN documents d ON d.id = l.document_id ORDER BY l.labelled_at, d.id"""
    )
    return [HumanLabel(document_for_scoring(r), str(r[-1])) for r in rows]


def documents_to_score(
    db: Database, model: str, rescore: bool = False, limit: int | None = None
) -> list[Document]:
    """Relevant documents without a score from `model` (all relevant ones with `rescore`)."""
    sql = f"SELECT {SCORING_COLUMNS} FROM documents d WHERE relevant"
    if not rescore:
        sql += " AND NOT EXISTS (SELECT 1 FROM scores s WHERE s.document_id = d.id AND s.model = ?)"
    sql += " ORDER BY published_at"
    if limit:
        sql += f" LIMIT {int(limit)}"
    return [document_for_scoring(r) for r in db.fetchall(sql, [] if rescore else [model])]


# -- models, scores, labels ----------------------------------------------------------------------


def register_model(
    db: Database,
    model_id: str,
    backend: str,
    description: str = "",
    dev_macro_f1: float | None = None,
    active: bool = True,
    dev_set: str | None = None,
) -> None:
    """Record a model (and make it the active one); `dev_set` names the data set `dev_macro_f1` was measured on."""
    with db.transaction():
        before = active_model(db)
        if active:
            db.execute("UPDATE models SET active = FALSE WHERE active AND id <> ?", [model_id])
        db.execute(
            """INSERT INTO models (id, backend, description, dev_macro_f1, active, registered_at, dev_set)
               VALUES (?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (id) DO UPDATE SET backend = excluded.backend, description = excluded.description,
                 dev_macro_f1 = coalesce(excluded.dev_macro_f1, models.dev_macro_f1), active = excluded.active,
                 dev_set = coalesce(excluded.dev_set, models.dev_set)""",
            [model_id, backend, description, dev_macro_f1, active, _now(), dev_set],
        )
        if active_model(db) != before:  # every kept tone came from the previous model's scores
            rebuild_tone(db)


def save_scores(db: Database, scores: Sequence[Score]) -> int:
    """Store (or replace) one row per (document, model); other models' rows are never touched."""
    if not scores:
        return 0
    now = _now()
    latest = {(s.document_id, s.model): s for s in scores}  # one statement cannot replace a row twice
    rows = [
        [
            s.document_id,
            s.model,
            s.tone,
            s.label,
            s.p_negative,
            s.p_neutral,
            s.p_positive,
            s.passage,
            s.n_passages,
            now,
        ]
        for s in latest.values()
    ]
    marks = "(" + ", ".join("?" * 10) + ")"
    with db.transaction():
        # Multi-row VALUES, as insert_documents: executemany runs one statement per row (200 scores took 8 s
        # against a 1M-document database, benchmarks/README.md).
        for i in range(0, len(rows), INSERT_CHUNK):
            chunk = rows[i : i + INSERT_CHUNK]
            db.execute(
                """INSERT OR REPLACE INTO scores (document_id, model, tone, label, p_negative, p_neutral, p_positive,
                                                  passage, n_passages, scored_at) VALUES """
                + ", ".join([marks] * len(chunk)),
                [v for r in chunk for v in r],
            )
        active = active_model(db)
        refresh_tone(db, [s.document_id for s in scores if s.model == active])
    return len(scores)


def set_label(
    db: Database, document_id: str, label: str, labelled_by: str | None = None, note: str | None = None
) -> int:
    """Store (or replace) a human label; returns its `label_history` id (what `labels.undo_label` takes)."""
    from tonevakt.errors import TonevaktError

    label = label.strip().lower()
    if label not in TONE_LABELS:
        raise TonevaktError(f"label must be one of {', '.join(TONE_LABELS)} (got {label!r})")
    if not db.scalar("SELECT count(*) FROM documents WHERE id = ?", [document_id]):
        raise TonevaktError(f"no document with id {document_id!r}")
    now = _now()
    with db.transaction():
        prev = db.fetchone(
            "SELECT label, labelled_by, note, labelled_at FROM labels WHERE document_id = ?", [document_id]
        )
        db.execute(
            """INSERT INTO labels VALUES (?, ?, ?, ?, ?) ON CONFLICT (document_id) DO UPDATE SET
                 label = excluded.label, labelled_by = excluded.labelled_by, note = excluded.note,
                 labelled_at = excluded.labelled_at""",
            [document_id, label, labelled_by, note, now],
        )
        refresh_tone(db, [document_id])
        # The history keeps what the label replaced, so that `tonevakt label --undo` can bring it back.
        return int(
            db.scalar(
                """INSERT INTO label_history (document_id, label, labelled_by, labelled_at, previous_label,
                                          previous_labelled_by, previous_note, previous_labelled_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id""",
                [document_id, label, labelled_by, now, *(prev or (None, None, None, None))],
            )
        )


__all__ = [
    "FetchStatus",
    "existing_ids",
    "insert_documents",
    "pending_items",
    "record_items",
    "record_fetch",
    "register_model",
    "save_scores",
    "set_label",
    "source_health",
    "source_state",
    "store_batch",
    "sync_sources",
]
