"""Opening the DuckDB file (with lock retries and backoff) and applying ordered, recorded migrations.

DuckDB allows one writing process per file, and that writer blocks every other process. So the pipeline
opens the database only for the length of a job, and retries on a lock rather than failing.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb

from tonevakt.errors import DatabaseLockedError, StorageError

logger = logging.getLogger(__name__)


# DuckDB's buffer pool may otherwise grow to 80 % of the machine's memory as a command reads a large archive
# (a publish at 10M documents peaked at 1.65 GB); past this it evicts and spills to disk instead
# (benchmarks/bench_storage_reports.py: peak memory ≤ 1.5 GB for every command at 10M documents).
MEMORY_LIMIT = "1GB"


def _is_lock_error(e: Exception) -> bool:
    msg = str(e).lower()
    return "lock" in msg and ("conflicting" in msg or "could not set lock" in msg)


def _connect(
    path: Path,
    read_only: bool,
    lock_timeout_s: float,
    config: dict[str, Any] | None = None,
    stop: threading.Event | None = None,
) -> duckdb.DuckDBPyConnection:
    """The one wait for another process's lock: retries with backoff for up to `lock_timeout_s`, and gives up at
    once when `stop` is set (a stopping daemon buffers its batch instead of waiting)."""
    deadline = time.monotonic() + lock_timeout_s
    delay = 0.05
    attempt = 0
    while True:
        attempt += 1
        try:
            return duckdb.connect(
                str(path), read_only=read_only, config={"memory_limit": MEMORY_LIMIT, **(config or {})}
            )
        except duckdb.Error as e:
            if not _is_lock_error(e):
                raise StorageError(f"cannot open database {path}: {e}") from e
            if stop is not None and stop.is_set():
                raise DatabaseLockedError(
                    f"database {path} is locked by another process (stopping: not waiting for it)"
                ) from e
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DatabaseLockedError(
                    f"database {path} is locked by another process; gave up after {attempt} attempts "
                    f"over {lock_timeout_s:.0f}s (close the other program, or read {path.name}'s snapshot)"
                ) from e
            if attempt == 1:
                logger.info("database %s is locked by another process; retrying with backoff", path)
            pause = min(delay * (1 + random.random() * 0.25), remaining)
            if stop is not None:
                stop.wait(pause)  # returns as soon as the stop is set
            else:
                time.sleep(pause)
            delay = min(delay * 2, 5.0)


@dataclass
class Migration:
    version: int
    name: str
    sql: str


def migrations() -> list[Migration]:
    """The ordered migrations shipped in `storage/migrations/NNNN_name.sql`."""
    out = []
    folder = resources.files("tonevakt.storage") / "migrations"
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            num, _, rest = entry.name.partition("_")
            out.append(Migration(int(num), rest.removesuffix(".sql"), entry.read_text(encoding="utf-8")))
    out.sort(key=lambda m: m.version)
    return out


class Database:
    """A connection to the main database for the length of one job."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path | None, read_only: bool) -> None:
        self.con = con
        self.path = path
        self.read_only = read_only

    # -- plumbing --------------------------------------------------------------------------------
    def execute(self, sql: str, params: Any = None) -> duckdb.DuckDBPyConnection:
        return self.con.execute(sql, params) if params is not None else self.con.execute(sql)

    def fetchall(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        return self.execute(sql, params).fetchall()

    def fetchone(self, sql: str, params: Any = None) -> tuple[Any, ...] | None:
        return self.execute(sql, params).fetchone()

    def scalar(self, sql: str, params: Any = None) -> Any:
        row = self.fetchone(sql, params)
        return row[0] if row else None

    def rows(self, sql: str, params: Any = None) -> list[dict[str, Any]]:
        cur = self.execute(sql, params)
        cols = [d[0] for d in cur.description or []]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    @contextmanager
    def transaction(self) -> Iterator[Database]:
        """A batch is stored wholly or not at all."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield self
        except BaseException:
            try:
                self.con.execute("ROLLBACK")
            except duckdb.Error:
                pass  # a failed write (disk full) may have ended the transaction already
            raise
        else:
            try:
                self.con.execute("COMMIT")
            except duckdb.Error as e:  # e.g. the disk is full: DuckDB rolls the whole transaction back
                raise StorageError(
                    f"could not write to the database {self.path or ':memory:'}: {e} "
                    "(nothing of this batch was stored)"
                ) from e

    def close(self) -> None:
        self.con.close()

    # -- migrations ------------------------------------------------------------------------------
    def applied_migrations(self) -> list[int]:
        exists = self.scalar(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'"
        )
        if not exists:
            return []
        return [r[0] for r in self.fetchall("SELECT version FROM schema_migrations ORDER BY version")]

    def migrate(self) -> list[int]:
        """Apply the migrations not applied yet, each in its own transaction. Returns the new versions."""
        self.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            "version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
        )
        done = set(self.applied_migrations())
        new = []
        for m in migrations():
            if m.version in done:
                continue
            try:
                with self.transaction():
                    self.con.execute(m.sql)
                    self.execute(
                        "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                        [m.version, m.name, datetime.now(UTC)],
                    )
            except duckdb.Error as e:
                raise StorageError(f"migration {m.version:04d}_{m.name} failed: {e}") from e
            logger.info("applied migration %04d_%s", m.version, m.name)
            new.append(m.version)
        return new


def open_database(
    path: Path, lock_timeout_s: float = 300.0, migrate: bool = True, stop: threading.Event | None = None
) -> Database:
    """Open the main database for writing (creating folder and file), waiting out another writer (up to
    `lock_timeout_s`, or until `stop` is set: then DatabaseLockedError)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StorageError(f"cannot create the database folder {path.parent}: {e}") from e
    db = Database(
        _connect(path, read_only=False, lock_timeout_s=lock_timeout_s, stop=stop), path, read_only=False
    )
    if migrate:
        try:
            db.migrate()
        except BaseException:
            db.close()
            raise
    return db


@contextmanager
def database(
    path: Path, lock_timeout_s: float = 300.0, stop: threading.Event | None = None
) -> Iterator[Database]:
    """`with database(path) as db:` — open for the length of a job, always closed. `stop`: see `open_database`."""
    db = open_database(path, lock_timeout_s=lock_timeout_s, stop=stop)
    try:
        yield db
    finally:
        db.close()


def _connect_reading(
    path: Path, snapshot: Path | None, lock_timeout_s: float, config: dict[str, Any] | None = None
) -> duckdb.DuckDBPyConnection:
    """Read-only connection; a damaged analyst snapshot is named as such, with what replaces it."""
    try:
        return _connect(path, read_only=True, lock_timeout_s=lock_timeout_s, config=config)
    except DatabaseLockedError:
        raise
    except StorageError as e:
        if snapshot is None or Path(path).resolve() != Path(snapshot).resolve():
            raise
        raise StorageError(
            f"the analyst snapshot {path} cannot be read ({e.__cause__ or e}); it is a copy, replaced at the "
            "next publish ('tonevakt run --once', or the daemon's next pass); the main database is not affected"
        ) from e


def open_for_reading(
    path: Path,
    snapshot: Path | None = None,
    lock_timeout_s: float = 2.0,
    config: dict[str, Any] | None = None,
) -> Database:
    """Open read-only; if the main file is locked by a writer, fall back to the analyst snapshot. `config`: DuckDB
    settings for the connection (`storage/readonly_sql.py` opens analysts' queries in a sandbox)."""
    path = Path(path)
    if path.exists():
        try:
            return Database(_connect_reading(path, snapshot, lock_timeout_s, config), path, read_only=True)
        except DatabaseLockedError:
            if snapshot is None or not Path(snapshot).exists():
                raise
            logger.warning("database %s is busy; reading the analyst snapshot %s", path, snapshot)
    if snapshot is not None and Path(snapshot).exists():
        return Database(
            _connect_reading(Path(snapshot), snapshot, lock_timeout_s, config), Path(snapshot), True
        )
    raise StorageError(f"no database at {path} (run 'tonevakt init' or 'tonevakt run --once' first)")


def memory_database() -> Database:
    """A fresh in-memory database with the schema (tests, benchmarks)."""
    db = Database(duckdb.connect(":memory:"), None, read_only=False)
    db.migrate()
    return db
