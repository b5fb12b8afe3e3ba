"""The analyst snapshot: a read-only copy of the database plus Parquet exports, swapped in atomically.

Analysts open `data/analyst.duckdb` (or the Parquet files) at any time, even while the scheduler writes the
main file: the copy is written to a temporary file beside the target and renamed over it in one step.

The Parquet exports a pass publishes (`publish_exports`) cost what changed, not what is stored: the tables
that grow with the archive are written as one file per week (`documents/2026-W47.parquet`, by the week the
rows were collected, scored, fetched or, for document_tone, published), and a week's file is rewritten only
when its rows changed, which a fingerprint per week (row count and a hash of the row keys) tells, recorded in
`manifest.json`; `columns.parquet` beside the weeks has no rows, so that a glob over the folder always finds the
columns. The small tables and weekly_tone are written whole. `export_parquet` (`tonevakt export`)
still writes one file per table and view.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import duckdb

from tonevakt.dates import week_sql
from tonevakt.errors import StorageError
from tonevakt.storage.db import Database

logger = logging.getLogger(__name__)

STALE_COPY_S = 3600
EXPORT_TABLES = (
    "sources",
    "documents",
    "scores",
    "labels",
    "models",
    "fetch_log",
    "weekly_tone",
    "document_tone",
)


def publish_snapshot(db: Database, snapshot: Path) -> Path:
    """Checkpoint the open (writing) database and swap a copy of it in at `snapshot`."""
    if db.path is None:
        raise StorageError("cannot snapshot an in-memory database")
    snapshot = Path(snapshot)
    snapshot.parent.mkdir(parents=True, exist_ok=True)
    try:
        db.execute("CHECKPOINT")
    except duckdb.Error as e:  # a full disk: committed batches stay in the WAL, replayed at the next open
        raise StorageError(f"cannot publish the analyst snapshot {snapshot}: checkpoint failed: {e}") from e
    source = os.stat(db.path)
    if _same_file_version(snapshot, source):
        # Nothing was written since the last publish (the snapshot job after a collect that published): the
        # copy, which costs the whole file (benchmarks/README.md: 11 s at 10M documents), is skipped.
        logger.info("analyst snapshot %s is up to date", snapshot)
        return snapshot
    _clear_stale_copies(snapshot.parent)
    fd, tmp = tempfile.mkstemp(prefix=".snapshot-", suffix=".duckdb.tmp", dir=snapshot.parent)
    os.close(fd)
    try:
        # We hold the write lock, so nobody changes the file while we copy it; after CHECKPOINT the
        # file holds every committed change and the WAL is empty.
        shutil.copyfile(db.path, tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.utime(
            tmp, ns=(source.st_atime_ns, source.st_mtime_ns)
        )  # the version it copies, for the next publish
        os.replace(tmp, snapshot)
        stale_wal = Path(str(snapshot) + ".wal")
        if stale_wal.exists():
            stale_wal.unlink()
    except OSError as e:
        raise StorageError(f"cannot publish the analyst snapshot {snapshot}: {e}") from e
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    logger.info("published analyst snapshot %s", snapshot)
    return snapshot


def _same_file_version(snapshot: Path, source: os.stat_result) -> bool:
    """The snapshot is a copy of the database file as it is now: same size and modification time (a publish
    sets the copy's time to the original's; readers of the snapshot open it read-only and never change it)."""
    try:
        st = snapshot.stat()
    except OSError:
        return False
    return st.st_size == source.st_size and st.st_mtime_ns == source.st_mtime_ns


def _clear_stale_copies(folder: Path) -> None:
    """Remove temporary copies left by a publish killed mid-copy (an hour old: another database's publish
    into the same folder may be running now)."""
    for stale in folder.glob(".snapshot-*.duckdb.tmp"):
        try:
            if time.time() - stale.stat().st_mtime > STALE_COPY_S:
                stale.unlink()
                logger.info("removed %s, left by an interrupted publish", stale)
        except OSError:
            pass


def export_parquet(db: Database, folder: Path) -> list[Path]:
    """Write each table and view as `<name>.parquet` (temporary file + atomic rename for each)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StorageError(f"cannot create the export folder {folder}: {e}") from e
    out = []
    for name in EXPORT_TABLES:
        target = folder / f"{name}.parquet"
        _copy(db, f"SELECT * FROM {name}", target)
        out.append(target)
    logger.info("exported %d Parquet files to %s", len(out), folder)
    return out


def _sql_str(s: str) -> str:
    return s.replace("'", "''")


# Tables and views that grow with the archive: (name, the rows, the timestamp or week column that partitions
# them, what identifies a version of a row). A week's fingerprint is its row count and the xor of the row
# hashes: an added, removed or replaced row changes it.
PARTITIONED = (
    ("documents", "documents", "collected_at", "hash(id, story_id, relevant, collected_at)"),
    ("scores", "scores", "scored_at", "hash(document_id, model, scored_at)"),
    ("fetch_log", "fetch_log", "started_at", "hash(id)"),
    # document_tone's rows change when a label or the active model does: fingerprinted on the kept rows, by
    # the week of publication, and written through the view's macro for that week's instants
    (
        "document_tone",
        "document_tone_kept",
        "published_at",
        "hash(document_id, model, tone, label, human_label, story_id, first_copy)",
    ),
)
WHOLE = ("sources", "labels", "models", "weekly_tone")
MANIFEST = "manifest.json"
SCHEMA_FILE = "columns.parquet"


def publish_exports(db: Database, folder: Path) -> dict[str, int]:
    """Bring the Parquet exports up to date, writing only the weeks whose rows changed since the last publish.
    Returns the number of files written per table."""
    folder = Path(folder)
    _mkdir(folder)
    manifest_path = folder / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.exists() else {}
    except (OSError, ValueError):
        manifest = {}  # unreadable: every week is written again
    written: dict[str, int] = {}
    for name in WHOLE:
        _copy(db, f"SELECT * FROM {name}", folder / f"{name}.parquet")
        written[name] = 1
    for name, source, column, key in PARTITIONED:
        week = week_sql(column)
        found = db.fetchall(
            f"SELECT {week} AS w, count(*), bit_xor({key}), min({column}), max({column}) FROM {source} GROUP BY w"
        )
        prints = {w: f"{n}:{x}" for w, n, x, _, _ in found}
        bounds = {w: (lo, hi) for w, _, _, lo, hi in found}
        before = manifest.get(name, {})
        sub = folder / name
        _mkdir(sub)
        # no rows, only the columns: `read_parquet('documents/*.parquet')` works on an empty table too
        _copy(db, f"SELECT * FROM {name} LIMIT 0", sub / SCHEMA_FILE)
        count = 0
        for w in sorted(prints):
            target = sub / f"{w}.parquet"
            if before.get(w) == prints[w] and target.exists():
                continue
            # the range first: DuckDB skips the row groups outside it
            lo, hi = (f"'{t.isoformat()}'::TIMESTAMPTZ" for t in bounds[w])
            if name == "document_tone":
                rows = f"SELECT * FROM document_tone_published({lo}, {hi})"
            else:
                rows = (
                    f"SELECT * FROM {name} WHERE {column} BETWEEN {lo} AND {hi} AND {week} = '{_sql_str(w)}'"
                )
            _copy(db, rows, target)
            count += 1
        for stale in set(before) - set(prints):
            (sub / f"{stale}.parquet").unlink(missing_ok=True)
        manifest[name] = prints
        written[name] = count
        # recorded after each table: a publish that fails later does not write these weeks again
        _write_atomic(manifest_path, json.dumps(manifest, indent=1, sort_keys=True))
    logger.info(
        "published the Parquet exports to %s (files written: %s)",
        folder,
        ", ".join(f"{k} {v}" for k, v in written.items()),
    )
    return written


def _mkdir(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StorageError(f"cannot create the export folder {folder}: {e}") from e


def _copy(db: Database, rows: str, target: Path) -> None:
    """`rows` as Parquet at `target`: a temporary file renamed over it, so a reader sees the old or the new."""
    tmp = target.parent / f".{target.name}.tmp"
    try:
        db.execute(f"COPY ({rows}) TO '{_sql_str(str(tmp))}' (FORMAT parquet)")
        os.replace(tmp, target)
    except (duckdb.Error, OSError) as e:  # e.g. the disk is full: the previous export file stays
        tmp.unlink(missing_ok=True)
        raise StorageError(f"cannot write the export {target}: {e}") from e


def _write_atomic(target: Path, text: str) -> None:
    tmp = target.parent / f".{target.name}.tmp"
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise StorageError(f"cannot write the export {target}: {e}") from e
