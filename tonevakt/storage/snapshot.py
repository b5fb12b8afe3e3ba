"""The analyst snapshot: a read-only copy of the database plus Parquet exports, swapped in atomically.

Analysts open `data/analyst.duckdb` (or the Parquet files) at any time, even while the scheduler writes the
main file: the copy is written to a temporary file beside the target and renamed over it in one step.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import duckdb

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
    _clear_stale_copies(snapshot.parent)
    fd, tmp = tempfile.mkstemp(prefix=".snapshot-", suffix=".duckdb.tmp", dir=snapshot.parent)
    os.close(fd)
    try:
        # We hold the write lock, so nobody changes the file while we copy it; after CHECKPOINT the
        # file holds every committed change and the WAL is empty.
        shutil.copyfile(db.path, tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
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
        tmp = folder / f".{name}.parquet.tmp"
        try:
            db.execute(f"COPY (SELECT * FROM {name}) TO '{_sql_str(str(tmp))}' (FORMAT parquet)")
            os.replace(tmp, target)
        except (duckdb.Error, OSError) as e:  # e.g. the disk is full: the previous export file stays
            tmp.unlink(missing_ok=True)
            raise StorageError(f"cannot write the export {target}: {e}") from e
        out.append(target)
    logger.info("exported %d Parquet files to %s", len(out), folder)
    return out


def _sql_str(s: str) -> str:
    return s.replace("'", "''")
