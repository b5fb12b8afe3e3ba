"""One pass: collect → enrich → store → score → publish the analyst snapshot.

The database is opened only for the length of each step that needs it, so that analysts and other
processes are blocked as briefly as possible; the network is used only while the database is closed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tonevakt import spool
from tonevakt.collectors.base import SourceOutcome
from tonevakt.collectors.dedup import assign_stories
from tonevakt.collectors.files import read_rows, rows_to_documents
from tonevakt.config import Settings
from tonevakt.errors import DatabaseLockedError, ImportFileError
from tonevakt.models import Document, PassSummary, Source
from tonevakt.nlp.enrich import Enricher
from tonevakt.storage import repository as repo
from tonevakt.storage.db import Database, database, open_for_reading
from tonevakt.storage.snapshot import publish_exports, publish_snapshot

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # (what, done, total)
STORY_WINDOW = timedelta(days=14)


def ensure_inboxes(settings: Settings) -> None:
    """Create the inbox folders of `files` sources, so a fresh install starts with an empty inbox, not an error."""
    for s in settings.sources:
        if s.kind == "files" and s.path and ".." not in Path(s.path).parts:
            folder = settings.path(s.path)
            if not folder.exists():
                try:
                    folder.mkdir(parents=True)
                    logger.info("created the inbox folder %s for source %s", folder, s.id)
                except OSError as e:  # the collector then reports the source as failing, with the reason
                    logger.warning("cannot create the inbox folder %s: %s", folder, e)


def init(settings: Settings) -> list[int]:
    """Create the database (migrations) and register the configured sources."""
    ensure_inboxes(settings)
    with database(settings.db_path, settings.database.lock_timeout_s) as db:
        applied = db.applied_migrations()
        repo.sync_sources(db, settings.source_records())
        publish_snapshot(db, settings.snapshot_path)
    return applied


def store_documents(
    settings: Settings,
    docs: list[Document],
    enricher: Enricher | None = None,
    outcomes: Sequence[SourceOutcome] = (),
    spool_on_lock: bool = False,
) -> list[str]:
    """Enrich, group into stories and store documents (+ fetch log rows) atomically. Returns new ids.

    With `spool_on_lock`, a batch that cannot get into the database (another process holds it longer than
    database.lock_timeout_s) is buffered in the spool and written at the next successful open (tonevakt/spool.py).
    """
    enricher = enricher or Enricher(settings)
    enricher.enrich(docs)
    opener = spool.database_unless_stopping if spool_on_lock else database
    try:
        with opener(settings.db_path, settings.database.lock_timeout_s) as db:
            _replay_spool(settings, db)
            return _write_batch(db, docs, list(outcomes))
    except DatabaseLockedError:
        if not spool_on_lock:
            raise
        spool.write_batch(spool.spool_dir(settings.db_path), docs, outcomes)
        return []


def _write_batch(db: Database, docs: list[Document], outcomes: list[SourceOutcome]) -> list[str]:
    """Group into stories and store one batch (documents, fetch log rows, imported files) in one transaction."""
    ids = {d.id for d in docs}
    known = repo.existing_ids(db, list(ids))
    fresh = [d for d in docs if d.id not in known]
    if fresh:  # only new documents need a story; a pass with nothing new reads no text back
        assign_stories(fresh, repo.recent_story_keys(db, datetime.now(UTC) - STORY_WINDOW))
    fetches = []
    for o in outcomes:
        n_new = len({d.id for d in o.documents} - known)
        for i, f in enumerate(o.fetches):
            if i == 0:
                f.new_documents = n_new
            fetches.append((f, o.source.interval_minutes))
    files = [f for o in outcomes for f in o.imported_files]
    return repo.store_batch(db, docs, fetches, files)


def _replay_spool(settings: Settings, db: Database) -> None:
    """Write batches buffered while the database was busy (oldest first), before anything newer."""
    spool.replay(db, spool.spool_dir(settings.db_path), _write_batch)


def _state_from_snapshot(settings: Settings) -> tuple[dict[str, dict[str, Any]], set[str]]:
    """Source state and imported files when the database is busy: the snapshot plus the spool."""
    folder = spool.spool_dir(settings.db_path)
    state: dict[str, dict[str, Any]] = {}
    known_files: set[str] = set()
    if settings.snapshot_path.exists():
        snap = open_for_reading(settings.snapshot_path, lock_timeout_s=settings.database.lock_timeout_s)
        try:
            state = repo.source_state(snap)
            known_files = {r[0] for r in snap.fetchall("SELECT content_hash FROM imported_files")}
        finally:
            snap.close()
    logger.warning("database %s is busy: reading source state from the snapshot %s", settings.db_path,
                   settings.snapshot_path)  # fmt: skip
    return spool.overlay_state(state, folder), known_files | spool.buffered_files(folder)


def import_file(
    settings: Settings, path: Path, source_id: str, voice: str | None = None
) -> tuple[int, int, list[str]]:
    """`tonevakt import`: read a file into the database. Returns (rows read, new documents, warnings)."""
    source = _source_for_import(settings, source_id, voice)
    fr = read_rows(path)
    docs = rows_to_documents(fr, source, voice=voice)
    if not docs:
        raise ImportFileError(f"{path}: no row has any text")
    if source.relevance == "always":
        for d in docs:
            d.relevant, d.matched = True, ["(source: always relevant)"]
    with database(settings.db_path, settings.database.lock_timeout_s) as db:
        if source_id not in {s["id"] for s in db.rows("SELECT id FROM sources")}:
            repo.sync_sources(db, [*settings.source_records(), source])
    outcome = SourceOutcome(source=source, documents=docs,
                            imported_files=[(fr.content_hash, source.id, str(path), len(fr.rows))])  # fmt: skip
    new = store_documents(settings, docs, outcomes=[outcome])
    unknown = sorted({k for d in docs for k in d.extra if k not in ("file", "row")})
    warnings = list(fr.warnings)
    if unknown:
        warnings.append(f"kept unknown columns in documents.extra: {', '.join(unknown)}")
    return len(fr.rows), len(new), warnings


def _source_for_import(settings: Settings, source_id: str, voice: str | None) -> Source:
    for s in settings.sources:
        if s.id == source_id:
            return s.to_source()
    if voice is None:
        raise ImportFileError(
            f"source {source_id!r} is not in {settings.file or 'the configuration'}; give --voice to import "
            "into a new source"
        )
    return Source(id=source_id, kind="files", voice=voice, name=source_id, relevance="always")


def _known_urls(db: Database) -> set[str]:
    """Canonical URLs already stored (plus the news-search links they came from): collectors skip them,
    so that article pages are fetched and extracted only once."""
    return {r[0] for r in db.fetchall(
        """SELECT canonical_url FROM documents WHERE canonical_url IS NOT NULL
           UNION SELECT json_extract_string(extra, '$.search_link') FROM documents
           WHERE extra LIKE '%"search_link"%' AND json_extract_string(extra, '$.search_link') IS NOT NULL"""
    )}  # fmt: skip


def collect(settings: Settings, source_ids: Sequence[str] | None = None, progress: Progress | None = None,
            force: bool = False) -> PassSummary:  # fmt: skip
    """Fetch every due source (or the ones named), enrich and store what is new."""
    from tonevakt.collectors.run import collect_sources

    t0 = time.monotonic()
    summary = PassSummary()
    sources = [s for s in settings.source_records() if s.enabled]
    if source_ids:
        unknown = set(source_ids) - {s.id for s in settings.source_records()}
        if unknown:
            from tonevakt.errors import ConfigError

            raise ConfigError(f"unknown source id(s): {', '.join(sorted(unknown))}")
        sources = [s for s in settings.source_records() if s.id in source_ids]
        force = True
    try:
        with spool.database_unless_stopping(settings.db_path, settings.database.lock_timeout_s) as db:
            _replay_spool(settings, db)
            repo.sync_sources(db, settings.source_records())
            state = repo.source_state(db)
            known_files = {r[0] for r in db.fetchall("SELECT content_hash FROM imported_files")}
            known_urls = _known_urls(db)
    except DatabaseLockedError:
        state, known_files = _state_from_snapshot(settings)
        known_urls = set()  # articles are fetched again; storing still keeps each document once
    ensure_inboxes(settings)
    enricher = Enricher(settings)
    outcomes = collect_sources(
        sources, state, settings, is_candidate=enricher.is_candidate, known_files=known_files,
        progress=progress, force=force, base_dir=Path(settings.base_dir), known_urls=known_urls,
    )  # fmt: skip
    docs = [d for o in outcomes for d in o.documents]
    for o in outcomes:
        if o.skipped:
            summary.sources_skipped += 1
        elif o.failed:
            summary.sources_failed += 1
            summary.failures.append((o.source.id, o.reason))
        else:
            summary.sources_ok += 1
    summary.documents_seen = len(docs)
    new = store_documents(settings, docs, enricher, outcomes, spool_on_lock=True)
    summary.documents_new = len(new)
    summary.duration_s = time.monotonic() - t0
    return summary


def score(settings: Settings, rescore: bool = False, progress: Progress | None = None,
          limit: int | None = None) -> int:  # fmt: skip
    """Score relevant documents the active model has not scored (all of them with `rescore`)."""
    from tonevakt.nlp.sentiment import load_scorer

    scorer = load_scorer(settings.sentiment)
    with database(settings.db_path, settings.database.lock_timeout_s) as db:
        repo.register_model(db, scorer.model_id, scorer.backend, scorer.description, scorer.dev_macro_f1)
        todo = repo.documents_to_score(db, scorer.model_id, rescore=rescore, limit=limit)
    if not todo:
        return 0
    scores = scorer.score_documents(todo, progress=progress)
    with database(settings.db_path, settings.database.lock_timeout_s) as db:
        return repo.save_scores(db, scores)


def publish(settings: Settings) -> Path:
    """Publish the analyst snapshot and the Parquet exports."""
    with database(settings.db_path, settings.database.lock_timeout_s) as db:
        _replay_spool(settings, db)
        publish_snapshot(db, settings.snapshot_path)
        publish_exports(db, settings.exports_path)
    return settings.snapshot_path


def run_once(
    settings: Settings, progress: Progress | None = None, score_documents: bool = True
) -> PassSummary:
    """One full pass. Source failures are recorded, not raised; only a pass that cannot run raises."""
    t0 = time.monotonic()
    summary = collect(settings, progress=progress)
    if score_documents:
        summary.documents_scored = score(settings, progress=progress)
    publish(settings)
    summary.duration_s = time.monotonic() - t0
    logger.info("%s", summary.line())
    return summary
