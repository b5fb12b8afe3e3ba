"""The spool: a buffer of pending writes, for when another process holds the main database.

DuckDB allows one writing process per file, and an analyst's connection (or the `duckdb` CLI) blocks the
daemon. A pass that has collected documents but cannot get into the database in time writes its batch here
(`<database folder>/spool/*.jsonl`, one file per batch, written to a temporary file and renamed into place,
so a batch is either wholly there or not at all), and the next successful open writes it to the database
before anything newer. Nothing is dropped, and nothing is stored twice:

- documents have content/URL-based ids and are inserted with "skip if known";
- a fetch log row already in the database (same source, URL and start time) is not written again, so a crash
  between the commit and the removal of the spool file replays harmlessly;
- imported files are keyed by their content hash.

A batch file that cannot be read is moved to `spool/rejected/` and logged as an error, never deleted.

While batches wait here, a pass that cannot get into the database reads source state from the analyst snapshot
with the buffered fetches applied (`overlay_state`, through the same `polling.source_after_fetch` as the
database), so that it does not fetch again what is buffered. `storage/pass_store.py` decides when a batch goes
here and when the spool is replayed.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from tonevakt.errors import StorageError
from tonevakt.models import Document, FetchLogEntry, FetchStatus, ItemOutcome, Source, SourceOutcome
from tonevakt.storage.batch import store_outcomes
from tonevakt.storage.db import Database
from tonevakt.storage.polling import source_after_fetch

logger = logging.getLogger(__name__)

SPOOL_FORMAT = 1
SUFFIX = ".jsonl"


@dataclass
class SpooledBatch:
    """One buffered batch, as read back from its file."""

    path: Path
    created_at: datetime
    documents: list[Document]
    outcomes: list[SourceOutcome]


def spool_dir(db_path: Path) -> Path:
    """The spool folder of a database: `spool/` beside the database file."""
    return Path(db_path).parent / "spool"


# -- encoding ------------------------------------------------------------------------------------

_DOC_DATES = {"published_at", "collected_at"}


def _iso(v: datetime | None) -> str | None:
    return v.isoformat() if v is not None else None


def _date(v: str | None) -> datetime | None:
    return datetime.fromisoformat(v) if v else None


def _encode_document(d: Document) -> dict[str, Any]:
    out = asdict(d)
    for k in _DOC_DATES:
        out[k] = _iso(out[k])
    return out


def _decode_document(data: dict[str, Any]) -> Document:
    known = {f.name for f in fields(Document)}
    args = {k: v for k, v in data.items() if k in known}
    for k in _DOC_DATES:
        args[k] = _date(args.get(k))
    return Document(**args)


def _encode_fetch(f: FetchLogEntry) -> dict[str, Any]:
    out = asdict(f)
    out["status"] = f.status.value
    out["started_at"] = _iso(f.started_at)
    return out


def _decode_fetch(data: dict[str, Any]) -> FetchLogEntry:
    known = {f.name for f in fields(FetchLogEntry)}
    args = {k: v for k, v in data.items() if k in known}
    args["status"] = FetchStatus(args["status"])
    args["started_at"] = _date(args["started_at"])
    return FetchLogEntry(**args)


def _encode_outcome(o: SourceOutcome) -> dict[str, Any]:
    return {
        "source": asdict(o.source),
        "document_ids": [d.id for d in o.documents],
        "fetches": [_encode_fetch(f) for f in o.fetches],
        "imported_files": [list(x) for x in o.imported_files],
        "skipped": o.skipped,
        "items": [
            {"url": i.url, "kind": i.kind, "status": i.status.value if i.status else None, "reason": i.reason}
            for i in o.items
        ],
    }


def _decode_outcome(data: dict[str, Any], docs: dict[str, Document]) -> SourceOutcome:
    known = {f.name for f in fields(Source)}
    source = Source(**{k: v for k, v in data["source"].items() if k in known})
    return SourceOutcome(
        source=source,
        documents=[docs[i] for i in data["document_ids"] if i in docs],
        fetches=[_decode_fetch(f) for f in data["fetches"]],
        imported_files=[(str(h), str(s), str(p), int(n)) for h, s, p, n in data["imported_files"]],
        skipped=bool(data.get("skipped", False)),
        items=[
            ItemOutcome(
                url=str(i["url"]),
                kind=str(i["kind"]),
                reason=str(i.get("reason") or ""),
                status=FetchStatus(i["status"]) if i.get("status") else None,
            )
            for i in data.get("items", [])
        ],
    )


# -- writing and reading -------------------------------------------------------------------------


def write_batch(
    folder: Path, docs: Sequence[Document], outcomes: Sequence[SourceOutcome] = ()
) -> Path | None:
    """Buffer one batch atomically (temporary file, fsync, rename). Returns the spool file (None when the
    batch holds nothing to write: every source was skipped as not due)."""
    folder = Path(folder)
    if not docs and not any(o.fetches or o.imported_files or o.items for o in outcomes):
        return None
    now = datetime.now().astimezone()
    lines = [{"spool": SPOOL_FORMAT, "created_at": now.isoformat(), "pid": os.getpid()}]
    lines += [
        {"outcome": _encode_outcome(o)}
        for o in outcomes
        if o.fetches or o.documents or o.imported_files or o.items
    ]
    lines += [{"document": _encode_document(d)} for d in docs]
    lines.append({"end": len(lines)})
    name = f"{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(3)}{SUFFIX}"
    target = folder / name
    tmp = folder / f".{name}.tmp"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as f:
            for line in lines:
                f.write(json.dumps(line, ensure_ascii=False, default=str))
                f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
        _fsync_dir(folder)
    except OSError as e:
        if tmp.exists():
            tmp.unlink()
        raise StorageError(f"cannot write the spool file {target}: {e}") from e
    n_fetches = sum(len(o.fetches) for o in outcomes)
    logger.warning(
        "database busy: buffered %d documents and %d fetch log rows in %s; they are written at the next "
        "successful open",
        len(docs),
        n_fetches,
        target,
    )
    return target


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def pending(folder: Path) -> list[Path]:
    """Buffered batch files, oldest first (temporary files of an interrupted write are not batches)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.name.endswith(SUFFIX) and not p.name.startswith(".")
    )


def read_batch(path: Path) -> SpooledBatch:
    """Read one batch file back. Raises StorageError if it is incomplete or not ours."""
    try:
        text = Path(path).read_text(encoding="utf-8")
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise StorageError(f"cannot read spool file {path}: {e}") from e
    if not records or records[0].get("spool") != SPOOL_FORMAT:
        raise StorageError(f"spool file {path} has no header of format {SPOOL_FORMAT}")
    if records[-1].get("end") != len(records) - 1:
        raise StorageError(f"spool file {path} is incomplete (no end marker)")
    try:
        docs = [_decode_document(r["document"]) for r in records if "document" in r]
        by_id = {d.id: d for d in docs}
        outcomes = [_decode_outcome(r["outcome"], by_id) for r in records if "outcome" in r]
        created = _date(records[0]["created_at"])
    except (KeyError, TypeError, ValueError) as e:
        raise StorageError(f"spool file {path} has a malformed record: {e}") from e
    return SpooledBatch(Path(path), created or datetime.now().astimezone(), docs, outcomes)


def _reject(path: Path, reason: str) -> None:
    rejected = path.parent / "rejected"
    try:
        rejected.mkdir(exist_ok=True)
        os.replace(path, rejected / path.name)
    except OSError as e:
        logger.error("spool file %s cannot be read (%s) nor moved aside: %s", path, reason, e)
        return
    logger.error(
        "spool file %s cannot be read (%s); moved to %s for a person to look at", path, reason, rejected
    )


def _drop_recorded_fetches(db: Database, outcomes: Sequence[SourceOutcome]) -> int:
    """Remove fetch entries the database already holds (a replay after a crash between commit and unlink)."""
    dropped = 0
    for o in outcomes:
        keep = []
        for f in o.fetches:
            exists = db.scalar(
                "SELECT count(*) FROM fetch_log WHERE source_id = ? AND url IS NOT DISTINCT FROM ? AND started_at = ?",
                [f.source_id, f.url, f.started_at],
            )
            if exists:
                dropped += 1
            else:
                keep.append(f)
        o.fetches[:] = keep
    return dropped


def replay(db: Database, folder: Path, max_item_attempts: int) -> tuple[int, int]:
    """Write every buffered batch into the open database, oldest first (`batch.store_outcomes`); each file is
    removed once its batch is committed. Returns (batches written, new documents)."""
    batches = 0
    new_docs = 0
    for path in pending(folder):
        try:
            batch = read_batch(path)
        except StorageError as e:
            _reject(path, str(e))
            continue
        _drop_recorded_fetches(db, batch.outcomes)
        new = store_outcomes(db, batch.documents, batch.outcomes, max_item_attempts=max_item_attempts)
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        batches += 1
        new_docs += len(new)
        logger.info(
            "wrote buffered batch %s (from %s): %d documents, %d new",
            path.name,
            batch.created_at.isoformat(timespec="seconds"),
            len(batch.documents),
            len(new),
        )
    if batches:
        _fsync_dir(Path(folder))
        logger.info("database free again: wrote %d buffered batches (%d new documents)", batches, new_docs)
    return batches, new_docs


def overlay_state(
    state: dict[str, dict[str, Any]], folder: Path
) -> tuple[dict[str, dict[str, Any]], set[str]]:
    """Source state as it will be once the buffered batches are written, and the content hashes of the
    imported files in them, from one read of each batch file: when the database is busy the pass reads state
    from the snapshot, and without this overlay it would fetch again what is buffered (and read an inbox file
    twice)."""
    out = {k: dict(v) for k, v in state.items()}
    files: set[str] = set()
    for path in pending(folder):
        try:
            batch = read_batch(path)
        except StorageError:
            continue
        for o in batch.outcomes:
            row = out.setdefault(o.source.id, {"id": o.source.id, "consecutive_failures": 0})
            for f in o.fetches:
                if f.primary:  # as repository.record_fetch will do at the replay
                    row.update(source_after_fetch(row, f, o.source.interval_minutes))
            files.update(h for h, _, _, _ in o.imported_files)
    return out, files
