"""The storage side of a collect pass (and of `tonevakt import`): the state a pass starts from, and where its
batches go.

DuckDB allows one writing process per file. A pass opens the main database only for the length of each step,
waiting for another process's lock up to `lock_timeout_s` (`db.database`; a stop signal ends the wait at once),
and every successful open first writes the batches buffered in the spool, oldest first, before anything newer.
When the wait ends without the database:

- reading state: the pass reads it from the analyst snapshot, with the buffered fetches applied
  (`spool.overlay_state`), so that it does not fetch again what is buffered nor read a buffered file twice;
- storing a batch: the batch goes to the spool (`spool.write_batch`) and is written at the next open.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tonevakt.errors import DatabaseLockedError
from tonevakt.models import CollectState, Document, Source, SourceOutcome
from tonevakt.storage import repository as repo
from tonevakt.storage import spool
from tonevakt.storage.batch import store_outcomes
from tonevakt.storage.db import Database, database, open_for_reading

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PassStore:
    """Where a pass reads and writes: the main database, its analyst snapshot and the spool beside it.

    `stop`: the daemon's stop signal (set on SIGTERM/SIGINT): a wait for a busy database then ends at once, and
    the batch goes to the spool."""

    db_path: Path
    snapshot_path: Path
    lock_timeout_s: float
    max_item_attempts: int  # collect.max_item_attempts: when a pending item is given up
    stop: threading.Event | None = None

    @property
    def spool_folder(self) -> Path:
        return spool.spool_dir(self.db_path)

    @contextmanager
    def open(self) -> Iterator[Database]:
        """The main database for one step, with the spool's batches written first."""
        with database(self.db_path, self.lock_timeout_s, stop=self.stop) as db:
            self.replay(db)
            yield db

    def replay(self, db: Database) -> None:
        """Write batches buffered while the database was busy (oldest first), before anything newer."""
        spool.replay(db, self.spool_folder, self.max_item_attempts)

    def read_state(self, sources: Iterable[Source]) -> CollectState:
        """Register the configured sources and read what a pass starts from; from the snapshot and the spool
        when the database stays busy."""
        try:
            with self.open() as db:
                repo.sync_sources(db, sources)
                return CollectState(
                    sources=repo.source_state(db),
                    known_files=repo.imported_hashes(db),
                    known_urls=repo.known_urls(db),
                    pending=repo.pending_items(db),
                )
        except DatabaseLockedError:
            return self.state_from_snapshot()

    def state_from_snapshot(self) -> CollectState:
        """Source state and imported files when the database is busy: the snapshot plus the spool. Articles
        already stored are not known (they are fetched again; storing still keeps each document once), and
        pending items wait in the database for a pass that can read it."""
        state = CollectState()
        if self.snapshot_path.exists():
            snap = open_for_reading(self.snapshot_path, lock_timeout_s=self.lock_timeout_s)
            try:
                state.sources = repo.source_state(snap)
                state.known_files = repo.imported_hashes(snap)
            finally:
                snap.close()
        logger.warning(
            "database %s is busy: reading source state from the snapshot %s", self.db_path, self.snapshot_path
        )
        state.sources, buffered_files = spool.overlay_state(state.sources, self.spool_folder)
        state.known_files |= buffered_files
        return state

    def store(
        self,
        docs: list[Document],
        outcomes: Sequence[SourceOutcome],
        *,
        spool_on_lock: bool = False,
        spool_now: bool = False,
    ) -> list[str] | None:
        """Store one batch (`batch.store_outcomes`); returns the new ids. With `spool_on_lock`, a batch that
        cannot get into the database goes to the spool instead (then None); with `spool_now` it goes there
        without trying."""
        if not spool_now:
            try:
                with self.open() as db:
                    return store_outcomes(db, docs, outcomes, max_item_attempts=self.max_item_attempts)
            except DatabaseLockedError:
                if not spool_on_lock:
                    raise
        spool.write_batch(self.spool_folder, docs, outcomes)
        return None
