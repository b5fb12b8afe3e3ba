"""One pass: collect → enrich → store → score → publish the analyst snapshot.

The database is opened only for the length of each step that needs it, so that analysts and other
processes are blocked as briefly as possible; the network is used only while the database is closed.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tonevakt import spool
from tonevakt.collectors.base import SourceOutcome
from tonevakt.collectors.dedup import assign_stories, share_identical_stories
from tonevakt.collectors.files import file_hash, load_documents, read_file
from tonevakt.config import CollectSettings, Settings
from tonevakt.errors import DatabaseLockedError, ImportFileError
from tonevakt.models import Document, ImportSummary, PassSummary, Source
from tonevakt.nlp.enrich import Enricher
from tonevakt.nlp.shares import estimate_shares, indomain_confusion, inputs_key
from tonevakt.storage import repository as repo
from tonevakt.storage import share_store
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
    new = _store_or_spool(settings, docs, enricher or Enricher(settings), list(outcomes), spool_on_lock)
    return new or []


def _store_or_spool(
    settings: Settings,
    docs: list[Document],
    enricher: Enricher,
    outcomes: list[SourceOutcome],
    spool_on_lock: bool,
    spool_now: bool = False,
) -> list[str] | None:
    """store_documents; returns None when the batch went to the spool (at once with `spool_now`)."""
    enricher.enrich(docs)
    if spool_now:
        spool.write_batch(spool.spool_dir(settings.db_path), docs, outcomes)
        return None
    opener = spool.database_unless_stopping if spool_on_lock else database
    try:
        with opener(settings.db_path, settings.database.lock_timeout_s) as db:
            _replay_spool(settings, db)
            return _batch_writer(settings)(db, docs, outcomes)
    except DatabaseLockedError:
        if not spool_on_lock:
            raise
        spool.write_batch(spool.spool_dir(settings.db_path), docs, outcomes)
        return None


def _batch_writer(settings: Settings) -> spool.BatchWriter:
    return functools.partial(_write_batch, max_item_attempts=settings.collect.max_item_attempts)


def _write_batch(
    db: Database,
    docs: list[Document],
    outcomes: list[SourceOutcome],
    *,
    max_item_attempts: int = CollectSettings().max_item_attempts,
) -> list[str]:
    """Group into stories and store one batch (documents, fetch log rows, imported files, what became of
    pending items) in one transaction."""
    ids = {d.id for d in docs}
    known = repo.existing_ids(db, list(ids))
    fresh = [d for d in docs if d.id not in known]
    if fresh:  # only new documents need a story; a pass with nothing new reads no text back
        assign_stories(fresh, repo.recent_story_keys(db, datetime.now(UTC) - STORY_WINDOW))
        share_identical_stories(fresh, repo.identical_texts(db, [d.text for d in fresh]))
    fetches = []
    for o in outcomes:
        n_new = len({d.id for d in o.documents} - known)
        for i, f in enumerate(o.fetches):
            if i == 0:
                f.new_documents = n_new
            fetches.append((f, o.source.interval_minutes))
    files = [f for o in outcomes for f in o.imported_files]
    items = [(o.source.id, o.source.interval_minutes, o.items) for o in outcomes if o.items]
    return repo.store_batch(db, docs, fetches, files, items, max_item_attempts)


def _replay_spool(settings: Settings, db: Database) -> None:
    """Write batches buffered while the database was busy (oldest first), before anything newer."""
    spool.replay(db, spool.spool_dir(settings.db_path), _batch_writer(settings))


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
    logger.warning(
        "database %s is busy: reading source state from the snapshot %s",
        settings.db_path,
        settings.snapshot_path,
    )
    return spool.overlay_state(state, folder), known_files | spool.buffered_files(folder)


def import_file(
    settings: Settings,
    path: Path,
    source_id: str,
    voice: str | None = None,
    *,
    relevance: str | None = None,
    again: bool = False,
    max_rows: int | None = None,
) -> ImportSummary:
    """`tonevakt import`: read a file into the database.

    `relevance` ("always" or "query") overrides the source's: by default a configured source keeps its own, and
    a new source judges relevance with the relevance query unless it is patient feedback (always relevant).
    A file whose content was already imported into another source is refused unless `again` is given (its
    documents would count twice; with `again`, identical texts of one voice share a story and count once).
    """
    source = _source_for_import(settings, source_id, voice)
    if relevance is not None:
        if relevance not in IMPORT_RELEVANCE:
            raise ImportFileError(
                f"relevance must be one of {', '.join(IMPORT_RELEVANCE)} (got {relevance!r})"
            )
        source = replace(source, relevance=IMPORT_RELEVANCE[relevance])
    data = read_file(path)
    digest = file_hash(data)
    fr, docs = load_documents(data, Path(path), source, voice=voice, max_rows=max_rows)  # a bad file: no db
    if not docs:
        raise ImportFileError(f"{path}: no row has any text")
    warnings: list[str] = []
    with database(settings.db_path, settings.database.lock_timeout_s) as db:
        earlier = repo.imported_file(db, digest)
        if earlier is not None:
            when = earlier["imported_at"].date().isoformat()
            if earlier["source_id"] != source.id and not again:
                raise ImportFileError(
                    f"{path}: this file's content was already imported into source {earlier['source_id']!r} on "
                    f"{when} (as {earlier['path']}); importing it into {source.id!r} would count its documents "
                    "twice. Give --again to import it anyway (identical texts of one voice then count once)"
                )
            warnings.append(
                f"{path}: already imported into source {earlier['source_id']!r} on {when}; "
                + (
                    "identical texts of one voice share a story"
                    if earlier["source_id"] != source.id
                    else "rows stored then are not stored again"
                )
            )
        if source_id not in {s["id"] for s in db.rows("SELECT id FROM sources")}:
            repo.sync_sources(db, [*settings.source_records(), source])
    enricher = Enricher(settings)
    if source.relevance == "always":
        for d in docs:  # (no query to run: 100,000 rows of a survey export cost a third more time with it)
            d.relevant, d.matched = True, ["(source: always relevant)"]
    else:  # `--relevance query` for a source configured as always relevant
        enricher.always_relevant.discard(source.id)
    outcome = SourceOutcome(
        source=source, documents=docs, imported_files=[(digest, source.id, str(path), len(fr.rows))]
    )
    new = store_documents(settings, docs, enricher, outcomes=[outcome])
    unknown = sorted({k for d in docs for k in d.extra if k not in ("file", "row")})
    warnings[:0] = fr.warnings
    if unknown:
        warnings.append(f"kept unknown columns in documents.extra: {', '.join(unknown)}")
    return ImportSummary(
        rows=len(fr.rows),
        new=len(new),
        documents=len(docs),
        relevant=sum(1 for d in docs if d.relevant),
        relevance="always" if source.relevance == "always" else "query",
        warnings=warnings,
    )


# `--relevance` of `tonevakt import` → a source's `relevance`
IMPORT_RELEVANCE = {"always": "always", "query": "match"}


def _source_for_import(settings: Settings, source_id: str, voice: str | None) -> Source:
    for s in settings.sources:
        if s.id == source_id:
            return s.to_source()
    if voice is None:
        raise ImportFileError(
            f"source {source_id!r} is not in {settings.file or 'the configuration'}; give --voice to import "
            "into a new source"
        )
    # Patient feedback is about the care and the systems by nature; news, union and official archives are not:
    # the relevance query decides for those (an analyst's news archive holds off-topic items).
    relevance = "always" if voice == "patient" else "match"
    return Source(id=source_id, kind="files", voice=voice, name=source_id, relevance=relevance)


def _known_urls(db: Database) -> set[str]:
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


def collect(
    settings: Settings,
    source_ids: Sequence[str] | None = None,
    progress: Progress | None = None,
    force: bool = False,
) -> PassSummary:
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
            pending = repo.pending_items(db)
    except DatabaseLockedError:
        state, known_files = _state_from_snapshot(settings)
        known_urls = set()  # articles are fetched again; storing still keeps each document once
        pending = {}  # pending items wait in the database for a pass that can read it
    ensure_inboxes(settings)
    enricher = Enricher(settings)
    spooling = False

    def store(batch: list[SourceOutcome]) -> None:
        """Store the sources that finished, at once: a slow source does not hold the others' documents.
        Once a batch had to wait for the database and went to the spool, the rest of the pass goes there too."""
        nonlocal spooling
        docs = [d for o in batch for d in o.documents]
        new = _store_or_spool(settings, docs, enricher, batch, spool_on_lock=True, spool_now=spooling)
        spooling = new is None
        summary.documents_seen += len(docs)
        summary.documents_new += len(new or [])

    outcomes = collect_sources(
        sources,
        state,
        settings,
        is_candidate=enricher.is_candidate,
        known_files=known_files,
        progress=progress,
        force=force,
        base_dir=Path(settings.base_dir),
        known_urls=known_urls,
        pending=pending,
        on_outcome=store,
    )
    for o in outcomes:
        if o.deferred:
            summary.sources_deferred += 1
        elif o.skipped:
            summary.sources_skipped += 1
        elif o.failed:
            summary.sources_failed += 1
            summary.failures.append((o.source.id, o.reason))
        else:
            summary.sources_ok += 1
        summary.items_pending += o.items_left
    summary.duration_s = time.monotonic() - t0
    return summary


def score(
    settings: Settings, rescore: bool = False, progress: Progress | None = None, limit: int | None = None
) -> int:
    """Score relevant documents the active model has not scored (all of them with `rescore`)."""
    from tonevakt.nlp.sentiment import load_scorer

    scorer = load_scorer(settings.sentiment, settings.models_path)
    confusion = indomain_confusion(scorer.info())
    with database(settings.db_path, settings.database.lock_timeout_s) as db:
        repo.register_model(db, scorer.model_id, scorer.backend, scorer.description, scorer.dev_macro_f1)
        share_store.save_confusion(db, scorer.model_id, confusion)
        todo = repo.documents_to_score(db, scorer.model_id, rescore=rescore, limit=limit)
    n = 0
    if todo:
        scores = scorer.score_documents(todo, progress=progress)
        with database(settings.db_path, settings.database.lock_timeout_s) as db:
            n = repo.save_scores(db, scores)
    refresh_shares(settings)
    return n


def refresh_shares(settings: Settings) -> int:
    """Bring every week's corrected shares (`weekly_shares`) up to date with the stored labels and scores: after
    scoring, and before a report or the dashboard, so that new human labels count. A cell whose inputs (its
    counts and the confusion) did not change keeps its estimate. Returns the cells estimated anew.

    The database is open only to read the counts and to write the estimates, not while the bootstrap runs."""
    with database(settings.db_path, settings.database.lock_timeout_s) as db:
        model = share_store.active_model(db)
        if model is None:
            return 0
        base = share_store.load_confusion(db, model)
        human = share_store.human_confusion(db, model)
        cells = share_store.week_counts(db)
        stored = share_store.stored_inputs(db, model)
    confusion = base.plus(human) if base is not None else (human if human.n else None)
    todo = [c for c in cells if stored.get((c.week, c.voice)) != inputs_key(c, confusion)]
    current = [(c.week, c.voice) for c in cells]
    if not todo and set(stored) == set(current):
        return 0
    estimates = estimate_shares(todo, confusion)
    with database(settings.db_path, settings.database.lock_timeout_s) as db:
        if share_store.active_model(db) == model:
            share_store.write_estimates(db, model, estimates, current)
    logger.info(
        "weekly shares: %d of %d week-and-voice cells estimated anew; the correction rests on %d labelled "
        "documents",
        len(estimates),
        len(cells),
        confusion.n if confusion else 0,
    )
    return len(estimates)


def refresh_shares_if_free(settings: Settings) -> None:
    """`refresh_shares` before a report: when the database is busy the stored estimates are used as they are;
    when there is no database yet, nothing is created (the report names the problem)."""
    if not settings.db_path.exists():
        return
    try:
        refresh_shares(settings)
    except DatabaseLockedError as e:
        logger.warning("weekly shares not refreshed (database busy: %s); the report uses the last ones", e)


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
