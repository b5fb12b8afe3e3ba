"""One pass: collect → enrich → store → score → publish the analyst snapshot.

The database is opened only for the length of each step that needs it, so that analysts and other
processes are blocked as briefly as possible; the network is used only while the database is closed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from tonevakt.collectors.files import file_hash, load_documents, read_file
from tonevakt.config import Settings
from tonevakt.errors import ConfigError, DatabaseLockedError, ImportFileError
from tonevakt.models import Document, ImportSummary, PassSummary, Source, SourceOutcome
from tonevakt.nlp.enrich import Enricher
from tonevakt.nlp.shares import estimate_shares, indomain_confusion, inputs_key
from tonevakt.storage import repository as repo
from tonevakt.storage import share_store
from tonevakt.storage.db import database
from tonevakt.storage.kept_tone import active_model
from tonevakt.storage.pass_store import PassStore
from tonevakt.storage.snapshot import publish_exports, publish_snapshot

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # (what, done, total)


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


def pass_store(settings: Settings, stop: threading.Event | None = None) -> PassStore:
    """Where a pass reads and writes (`storage/pass_store.py`), from the settings. `stop`: the daemon's stop
    signal, which ends a wait for a busy database at once."""
    return PassStore(
        db_path=settings.db_path,
        snapshot_path=settings.snapshot_path,
        lock_timeout_s=settings.database.lock_timeout_s,
        max_item_attempts=settings.collect.max_item_attempts,
        stop=stop,
    )


def store_documents(
    settings: Settings,
    docs: list[Document],
    enricher: Enricher | None = None,
    outcomes: Sequence[SourceOutcome] = (),
    spool_on_lock: bool = False,
) -> list[str]:
    """Enrich, group into stories and store documents (+ fetch log rows) atomically. Returns new ids.

    With `spool_on_lock`, a batch that cannot get into the database (another process holds it longer than
    database.lock_timeout_s) is buffered in the spool and written at the next successful open
    (tonevakt/storage/spool.py)."""
    (enricher or Enricher(settings)).enrich(docs)
    return pass_store(settings).store(docs, list(outcomes), spool_on_lock=spool_on_lock) or []


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
    loaded = load_documents(data, Path(path), source, voice=voice, max_rows=max_rows)  # a bad file: no db
    fr, docs = loaded.rows, loaded.documents
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


def collect(
    settings: Settings,
    source_ids: Sequence[str] | None = None,
    progress: Progress | None = None,
    force: bool = False,
    stop: threading.Event | None = None,
) -> PassSummary:
    """Fetch every due source (or the ones named), enrich and store what is new: read the state (storage), fetch
    (collectors), enrich (nlp), store (storage), source by source as they finish.

    `stop`: the daemon's stop signal; once set, a wait for a busy database ends at once (state is read from the
    snapshot, batches go to the spool). The pass itself still runs to its end."""
    from tonevakt.collectors.collect import collect_sources

    t0 = time.monotonic()
    summary = PassSummary()
    sources = [s for s in settings.source_records() if s.enabled]
    if source_ids:
        unknown = set(source_ids) - {s.id for s in settings.source_records()}
        if unknown:
            raise ConfigError(f"unknown source id(s): {', '.join(sorted(unknown))}")
        sources = [s for s in settings.source_records() if s.id in source_ids]
        force = True
    store = pass_store(settings, stop)
    state = store.read_state(settings.source_records())
    ensure_inboxes(settings)
    enricher = Enricher(settings)
    spooling = False

    def store_batch(batch: list[SourceOutcome]) -> None:
        """Enrich and store the sources that finished, at once: a slow source does not hold the others'
        documents. Once a batch had to wait for the database and went to the spool, the rest of the pass goes
        there too."""
        nonlocal spooling
        docs = [d for o in batch for d in o.documents]
        enricher.enrich(docs)
        new = store.store(docs, batch, spool_on_lock=True, spool_now=spooling)
        spooling = new is None
        summary.documents_seen += len(docs)
        summary.documents_new += len(new or [])

    outcomes = collect_sources(
        sources,
        state.sources,
        settings,
        is_candidate=enricher.is_candidate,
        known_files=state.known_files,
        progress=progress,
        force=force,
        base_dir=Path(settings.base_dir),
        known_urls=state.known_urls,
        pending=state.pending,
        on_outcome=store_batch,
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
        repo.register_model(
            db,
            scorer.model_id,
            scorer.backend,
            scorer.description,
            scorer.dev_macro_f1,
            dev_set=scorer.dev_set,
        )
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
        model = active_model(db)
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
        if active_model(db) == model:
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
    with pass_store(settings).open() as db:
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
