"""Reliability catalogue, storage rows (docs/reliability.md): a full disk, kill -9 in the middle of writes and of
a snapshot publish, a damaged analyst snapshot. Real DuckDB files, real child processes.

A full disk without root: the child process gets `RLIMIT_FSIZE` (the largest file it may write) just above the
database's size and ignores SIGXFSZ, so a write past it fails with EFBIG ("File too large"), as on a full disk.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from tests.support.lock import hold_database
from tests.support.paths import REPO
from tests.support.randomness import SeededRandom
from tonevakt import pipeline
from tonevakt.cli import main
from tonevakt.config import Settings
from tonevakt.errors import StorageError
from tonevakt.models import Document
from tonevakt.storage import repository as repo
from tonevakt.storage.db import database, open_for_reading
from tonevakt.storage.snapshot import publish_snapshot

CHILD = r"""
import os, resource, signal, sys
from pathlib import Path
from tonevakt.errors import StorageError
from tonevakt.models import Document
from tonevakt.storage import repository as repo
from tonevakt.storage.db import database
from tonevakt.storage.snapshot import export_parquet, publish_snapshot

db_path, action, limit = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])

def docs(prefix, n, size):
    return [Document(source_id="s", voice="patient", title=f"{prefix} {i}", text="Helseplattformen " * size + str(i),
                     url=f"http://127.0.0.1/{prefix}/{i}") for i in range(n)]

if limit:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
try:
    if action == "store":  # one batch too big for the space left
        with database(db_path, 5) as db:
            repo.store_batch(db, docs("ny", 300, 600))
    elif action == "store-then-checkpoint":  # the batch fits in the WAL; the checkpoint cannot grow the file
        with database(db_path, 5) as db:
            repo.store_batch(db, docs("liten", 20, 600))
            print("COMMITTED", flush=True)
            publish_snapshot(db, db_path.parent / "analyst.duckdb")  # checkpoints first
    elif action == "publish":
        with database(db_path, 5) as db:
            publish_snapshot(db, db_path.parent / "analyst.duckdb")
    elif action == "export":
        with database(db_path, 5) as db:
            export_parquet(db, db_path.parent / "exports")
    elif action == "batches":  # until killed: batches of 200, each in one transaction
        for b in range(1000):
            with database(db_path, 5) as db:
                repo.store_batch(db, docs(f"b{b}", 200, 20))
            print(f"batch {b}", flush=True)
    elif action == "publish-loop":
        with database(db_path, 5) as db:
            for k in range(1000):
                publish_snapshot(db, db_path.parent / "analyst.duckdb")
                print(f"published {k}", flush=True)
    print("OK", flush=True)
except StorageError as e:
    print("STORAGE-ERROR", e, flush=True)
except Exception as e:
    print("OTHER-ERROR", type(e).__module__, type(e).__name__, e, flush=True)
"""


def child(db_path: Path, action: str, limit: int = 0) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db_path), action, str(limit)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_child(db_path: Path, action: str, limit: int = 0) -> str:
    p = child(db_path, action, limit)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err[-2000:]
    return out


def old_docs(n: int = 50) -> list[Document]:
    return [
        Document(
            source_id="s",
            voice="patient",
            title=f"gammel {i}",
            text=f"Lagret før feilen {i}",
            url=f"http://127.0.0.1/gammel/{i}",
        )
        for i in range(n)
    ]


@pytest.fixture
def filled(make_settings: Callable[..., Settings]) -> Settings:
    """A database (file) with 50 stored documents, checkpointed, plus a published snapshot."""
    settings = make_settings(sources=[{"id": "s", "kind": "files", "voice": "patient", "path": "innboks"}])
    pipeline.init(settings)
    with database(settings.db_path) as db:
        repo.store_batch(db, old_docs())
        db.execute("CHECKPOINT")
        publish_snapshot(db, settings.snapshot_path)
    return settings


def titles(path: Path) -> list[str]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return [r[0] for r in con.execute("SELECT title FROM documents ORDER BY title").fetchall()]
    finally:
        con.close()


# -- disk full ------------------------------------------------------------------------------------------------


def test_disk_full_during_a_batch_stores_nothing_of_it_and_keeps_what_was_stored(filled: Settings) -> None:
    db_path = filled.db_path
    before = titles(db_path)
    out = run_child(db_path, "store", limit=db_path.stat().st_size + 100_000)
    assert out.startswith("STORAGE-ERROR could not write to the database"), out
    assert "File too large" in out and "nothing of this batch was stored" in out
    assert titles(db_path) == before  # all 50 intact, none of the 300
    # The next pass, with room again, stores the batch once.
    assert run_child(db_path, "store").strip() == "OK"
    assert len(titles(db_path)) == 350 and len(set(titles(db_path))) == 350


def test_disk_full_at_checkpoint_loses_no_committed_batch(filled: Settings) -> None:
    db_path = filled.db_path
    out = run_child(db_path, "store-then-checkpoint", limit=db_path.stat().st_size)
    assert out.startswith("COMMITTED"), out  # the WAL took the batch; the file could not grow at checkpoint
    assert "STORAGE-ERROR cannot publish the analyst snapshot" in out and "checkpoint failed" in out, out
    after = titles(db_path)  # reopening replays the WAL
    assert len(after) == 70 and sum(t.startswith("gammel") for t in after) == 50


def test_disk_full_while_publishing_keeps_the_old_snapshot_and_exports(filled: Settings) -> None:
    snap = filled.snapshot_path
    old = snap.read_bytes()
    os.utime(snap, ns=(0, 0))  # no longer marked as the file's current version: the publish copies again
    out = run_child(filled.db_path, "publish", limit=1_000_000)  # smaller than the database file
    assert out.startswith("STORAGE-ERROR cannot publish the analyst snapshot"), out
    assert snap.read_bytes() == old and titles(snap) == titles(filled.db_path)
    assert list(snap.parent.glob(".snapshot-*")) == []  # no half-written copy left behind
    assert run_child(filled.db_path, "export").strip() == "OK"
    exports = filled.db_path.parent / "exports"
    before = {p.name: p.read_bytes() for p in exports.glob("*.parquet")}
    out = run_child(filled.db_path, "export", limit=2_000)
    assert out.startswith("STORAGE-ERROR cannot write the export"), out
    assert {p.name: p.read_bytes() for p in exports.glob("*.parquet")} == before
    assert list(exports.glob(".*.tmp")) == []


# -- kill -9 --------------------------------------------------------------------------------------------------


def _kill_after(p: subprocess.Popen[str], marker: str, count: int, extra_s: float) -> list[str]:
    assert p.stdout is not None
    lines = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        assert line, f"child ended early: {lines} {p.stderr.read() if p.stderr else ''}"
        lines.append(line.strip())
        if sum(x.startswith(marker) for x in lines) >= count:
            break
    time.sleep(extra_s)  # land somewhere inside the next write
    p.send_signal(signal.SIGKILL)
    p.wait(10)
    return lines


@pytest.mark.parametrize("extra_s", [0.0, 0.05, 0.15])
def test_kill_9_during_writes_leaves_whole_batches_and_a_rerun_adds_each_document_once(
    filled: Settings, extra_s: float
) -> None:
    db_path = filled.db_path
    _kill_after(child(db_path, "batches"), "batch", 2, extra_s)
    stored = titles(db_path)  # opens: the WAL is replayed up to the last whole commit
    new = [t for t in stored if t.startswith("b")]
    assert len(new) % 200 == 0 and len(new) >= 400, len(new)  # only whole batches
    assert sum(t.startswith("gammel") for t in stored) == 50
    done = len(new) // 200
    with database(db_path) as db:  # the same batches again: stored once, the rest added
        for b in range(done + 1):
            repo.store_batch(db, batch_docs(b))
    after = titles(db_path)
    assert len(after) == len(set(after)) == 50 + 200 * (done + 1)


def batch_docs(b: int) -> list[Document]:
    """The child's batch `b` (same URLs, same ids)."""
    return [
        Document(
            source_id="s",
            voice="patient",
            title=f"b{b} {i}",
            text="Helseplattformen " * 20 + str(i),
            url=f"http://127.0.0.1/b{b}/{i}",
        )
        for i in range(200)
    ]


def test_kill_9_during_snapshot_publish_leaves_a_whole_snapshot(filled: Settings) -> None:
    with database(filled.db_path) as db:
        repo.store_batch(db, batch_docs(0))
        db.execute("CHECKPOINT")
    _kill_after(child(filled.db_path, "publish-loop"), "published", 3, 0.01)
    snap = filled.snapshot_path
    assert len(titles(snap)) == 250  # whole: the copy is renamed in only when complete
    # A copy left half-written by the kill is cleared by a later publish (once it is an hour old).
    for left in snap.parent.glob(".snapshot-*"):
        os.utime(left, (time.time() - 7200, time.time() - 7200))
    with database(filled.db_path) as db:
        publish_snapshot(db, snap)
    assert list(snap.parent.glob(".snapshot-*")) == []


# -- damaged analyst snapshot ---------------------------------------------------------------------------------


def test_damaged_snapshot_is_named_clearly_and_the_next_publish_replaces_it(
    filled: Settings, rng: SeededRandom
) -> None:
    snap = filled.snapshot_path
    snap.write_bytes(rng.randbytes(4096) * 16)  # overwritten with garbage (the seed is printed)
    res = CliRunner().invoke(
        main, ["--config", filled.file, "sql", "--snapshot", "SELECT count(*) FROM documents"]
    )
    assert res.exit_code == 1, (rng, res.output)
    assert f"the analyst snapshot {snap} cannot be read" in res.output, (rng, res.output)
    assert "replaced at the next publish" in res.output and "main database is not affected" in res.output
    # The main database still answers (it is not the snapshot) ...
    res = CliRunner().invoke(
        main, ["--config", filled.file, "sql", "--json", "SELECT count(*) AS n FROM documents"]
    )
    assert res.exit_code == 0 and '"n": 50' in res.output, res.output
    # ... and the next publish replaces the damaged copy.
    pipeline.publish(filled)
    assert len(titles(snap)) == 50


def test_damaged_snapshot_while_the_database_is_busy_says_what_is_wrong(filled: Settings) -> None:
    with hold_database(filled.db_path):
        filled.snapshot_path.write_bytes(b"\0" * 10_000)  # truncated to zeros
        with pytest.raises(StorageError, match="the analyst snapshot .* cannot be read"):
            open_for_reading(filled.db_path, filled.snapshot_path, lock_timeout_s=0.3)
    pipeline.publish(filled)
    db = open_for_reading(filled.snapshot_path, filled.snapshot_path)
    try:
        assert db.scalar("SELECT count(*) FROM documents") == 50
    finally:
        db.close()
