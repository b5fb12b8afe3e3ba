"""Storage: migrations, idempotent and transactional writes, read-only SQL, snapshot, lock handling."""

from __future__ import annotations

import ast
import math
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from tests.support.lock import hold_database
from tonevakt.errors import DatabaseLockedError, ReadOnlyQueryError
from tonevakt.models import Document, FetchLogEntry, FetchStatus, Score, Source, SourceOutcome
from tonevakt.storage import repository as repo
from tonevakt.storage import spool
from tonevakt.storage.db import Database, migrations, open_database, open_for_reading
from tonevakt.storage.readonly_sql import check_read_only, run_read_only
from tonevakt.storage.snapshot import export_parquet, publish_snapshot


def _doc(i: int, **kw: object) -> Document:
    base = dict(
        source_id="nrk",
        voice="media",
        title=f"Helseplattformen sak {i}",
        text=f"Tekst {i} om æøå.",
        url=f"https://www.nrk.no/trondelag/sak-{i}?utm_source=rss",
        relevant=True,
        published_at=datetime(2026, 11, 17, 10, tzinfo=UTC) + timedelta(hours=i),
    )
    base.update(kw)
    return Document(**base)  # type: ignore[arg-type]


def test_migrations_applied_once_and_rerunnable(tmp_path: Path) -> None:
    path = tmp_path / "t.duckdb"
    db = open_database(path)
    versions = [m.version for m in migrations()]
    assert db.applied_migrations() == versions
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    db.close()
    db = open_database(path)
    assert db.migrate() == []
    assert db.scalar("SELECT count(*) FROM schema_migrations") == len(versions)
    db.close()


def test_insert_is_idempotent_by_canonical_url(fresh_db: Database) -> None:
    assert len(repo.insert_documents(fresh_db, [_doc(1), _doc(2)])) == 2
    again = _doc(1, url="http://nrk.no/trondelag/sak-1/#kommentarer", title="Annen tittel")
    assert repo.insert_documents(fresh_db, [again, _doc(2)]) == []
    assert fresh_db.scalar("SELECT count(*) FROM documents") == 2
    # Without a URL the id comes from the content (and source).
    a = Document(source_id="inbox", voice="patient", title="", text="Fin  app")
    b = Document(source_id="inbox", voice="patient", title="", text="fin app")
    assert a.id == b.id and a.id.startswith("c")


def test_batch_is_all_or_nothing(fresh_db: Database) -> None:
    repo.sync_sources(fresh_db, [Source(id="nrk", kind="rss", voice="media", url="https://www.nrk.no/x.rss")])
    entry = FetchLogEntry(
        source_id="nrk", url="https://www.nrk.no/x.rss", status=FetchStatus.OK, started_at=datetime.now(UTC)
    )
    good = [_doc(i) for i in range(5)]
    broken = _doc(99)
    broken.title = None  # type: ignore[assignment]  # NOT NULL violation in the middle of the batch
    with pytest.raises(duckdb.Error):
        repo.store_batch(fresh_db, [*good, broken], [(entry, 60)])
    assert fresh_db.scalar("SELECT count(*) FROM documents") == 0
    assert fresh_db.scalar("SELECT count(*) FROM fetch_log") == 0
    assert len(repo.store_batch(fresh_db, good, [(entry, 60)])) == 5
    assert fresh_db.scalar("SELECT count(*) FROM fetch_log") == 1


def test_source_health_and_backoff(fresh_db: Database) -> None:
    repo.sync_sources(fresh_db, [Source(id="s", kind="rss", voice="media", url="https://x.no/rss")])
    t0 = datetime(2026, 11, 20, 12, tzinfo=UTC)
    for i in range(3):
        e = FetchLogEntry(
            source_id="s",
            url="https://x.no/rss",
            status=FetchStatus.TEMPORARY,
            reason="HTTP 503 Service Unavailable",
            started_at=t0 + timedelta(minutes=i),
        )
        repo.record_fetch(fresh_db, e, interval_minutes=30)
    row = repo.source_health(fresh_db)[0]
    assert row["consecutive_failures"] == 3
    assert row["failing_since"] == t0
    assert row["last_error"] == "HTTP 503 Service Unavailable"
    assert row["next_due_at"] - (t0 + timedelta(minutes=2)) == timedelta(minutes=30 * 8)
    ok = FetchLogEntry(
        source_id="s",
        url="https://x.no/rss",
        status=FetchStatus.OK,
        etag='"abc"',
        started_at=t0 + timedelta(hours=5),
    )
    repo.record_fetch(fresh_db, ok, interval_minutes=30)
    row = repo.source_state(fresh_db)["s"]
    assert row["consecutive_failures"] == 0 and row["failing_since"] is None and row["etag"] == '"abc"'


def test_weekly_tone_matches_independent_computation(fresh_db: Database) -> None:
    docs = [_doc(i) for i in range(6)]
    docs.append(_doc(50, voice="patient", source_id="app"))
    docs[5].story_id = docs[4].id  # a syndicated copy: counted once
    repo.insert_documents(fresh_db, docs)
    repo.register_model(fresh_db, "m1", "embedded")
    tones = [0.5, -0.2, 0.1, -0.9, 0.3, 0.3, 0.8]
    scores = [
        Score(d.id, "m1", t, "positive" if t > 0.2 else "negative" if t < -0.2 else "neutral", 0.1, 0.2, 0.7)
        for d, t in zip(docs, tones, strict=True)
    ]
    repo.save_scores(fresh_db, scores)
    repo.set_label(fresh_db, docs[1].id, "Negative")  # a human label overrides the model: -1.0
    rows = {r["voice"]: r for r in fresh_db.rows("SELECT * FROM weekly_tone")}
    media = [0.5, -1.0, 0.1, -0.9, 0.3]
    mean = sum(media) / 5
    sd = math.sqrt(sum((x - mean) ** 2 for x in media) / 4)
    assert rows["media"]["week"] == "2026-W47"
    assert rows["media"]["n"] == 5
    assert rows["media"]["tone"] == pytest.approx(mean)
    assert rows["media"]["ci_low"] == pytest.approx(mean - 1.96 * sd / math.sqrt(5))
    assert rows["media"]["share_negative"] == pytest.approx(2 / 5)
    assert rows["media"]["thin"] is False
    assert rows["patient"]["n"] == 1 and rows["patient"]["ci_low"] is None and rows["patient"]["thin"] is True
    # Rescoring with another model keeps the old scores; the active model decides the views.
    repo.register_model(fresh_db, "m2", "transformers")
    repo.save_scores(fresh_db, [Score(docs[0].id, "m2", -0.5, "negative", 0.6, 0.3, 0.1)])
    assert fresh_db.scalar("SELECT count(*) FROM scores") == 8
    # doc 0 scored by m2, doc 1 carried by its human label
    assert fresh_db.scalar("SELECT n FROM weekly_tone WHERE voice = 'media'") == 2


@pytest.mark.parametrize(
    "sql",
    [
        "delete from documents",
        "DROP TABLE scores",
        "insert into labels values (1)",
        "update documents set title = ''",
        "select 1; delete from documents",
        "copy documents to '/tmp/x.csv'",
        "attach 'x.duckdb'",
        "create table x (a int)",
    ],
)
def test_sql_refuses_writes(sql: str) -> None:
    with pytest.raises(ReadOnlyQueryError, match="refused"):
        check_read_only(sql)


def test_sql_reads(fresh_db: Database) -> None:
    repo.insert_documents(fresh_db, [_doc(1)])
    result = run_read_only(fresh_db, "SELECT title FROM documents")
    assert result.columns == ["title"] and result.rows == [("Helseplattformen sak 1",)]


def test_snapshot_readable_while_another_process_holds_the_database(tmp_path: Path) -> None:
    main, snap = tmp_path / "main.duckdb", tmp_path / "analyst.duckdb"
    db = open_database(main)
    repo.insert_documents(db, [_doc(1), _doc(2)])
    publish_snapshot(db, snap)
    files = export_parquet(db, tmp_path / "exports")
    db.close()
    assert {f.name for f in files} >= {"documents.parquet", "weekly_tone.parquet"}
    with hold_database(main):
        t0 = time.monotonic()
        reader = open_for_reading(main, snap, lock_timeout_s=0.5)
        assert reader.path == snap
        assert reader.scalar("SELECT count(*) FROM documents") == 2
        reader.close()
        # A timeout: the reader gives up on the main file after its lock_timeout_s (0.5 s) and reads the
        # snapshot instead of waiting for the holder; 10 s is a generous margin on a busy machine.
        assert time.monotonic() - t0 < 10
        with pytest.raises(DatabaseLockedError, match="locked by another process"):
            open_database(main, lock_timeout_s=0.5)
    con = duckdb.connect(str(tmp_path / "exports" / "x.duckdb"))
    n = con.execute(f"SELECT count(*) FROM '{tmp_path / 'exports' / 'documents.parquet'}'").fetchone()
    assert n == (2,)


def test_writer_waits_for_a_lock_then_proceeds(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    main = tmp_path / "main.duckdb"
    open_database(main).close()
    holder = hold_database(main)
    letting_go = threading.Timer(1.0, holder.release)  # the other process lets go while the writer waits
    letting_go.start()
    try:
        with caplog.at_level("INFO", logger="tonevakt.storage.db"):
            db = open_database(main, lock_timeout_s=30)
        # The writer met the lock, retried, and got in only once the holder had been told to let go.
        assert holder.released.is_set()
        assert any("is locked by another process; retrying" in r.getMessage() for r in caplog.records)
        repo.insert_documents(db, [_doc(1)])
        assert db.scalar("SELECT count(*) FROM documents") == 1
        db.close()
    finally:
        letting_go.join(60)
        holder.release()


def test_polling_adapts_to_how_often_a_source_changes(fresh_db: Database) -> None:
    repo.sync_sources(fresh_db, [Source(id="s", kind="rss", voice="media", url="https://x.no/rss")])
    t0 = datetime(2026, 11, 20, 12, tzinfo=UTC)

    def fetch(i: int, new: int) -> dict:
        e = FetchLogEntry(
            source_id="s",
            url="https://x.no/rss",
            status=FetchStatus.NOT_MODIFIED if not new else FetchStatus.OK,
            started_at=t0 + timedelta(hours=i),
            new_documents=new,
        )
        repo.record_fetch(fresh_db, e, interval_minutes=30)
        return repo.source_state(fresh_db)["s"]

    assert fetch(0, 3)["effective_interval_minutes"] == 15  # busy: twice as often
    intervals = [fetch(i, 0)["effective_interval_minutes"] for i in range(1, 5)]
    assert intervals == [30, 30, 30, 30]  # quiet: the configured interval, never slower
    row = repo.source_state(fresh_db)["s"]
    assert row["unchanged_streak"] == 4
    row = fetch(10, 1)
    assert row["effective_interval_minutes"] == 15 and row["unchanged_streak"] == 0
    assert row["next_due_at"] == t0 + timedelta(hours=10, minutes=15)


def test_snapshot_is_copied_again_only_after_a_write(tmp_path: Path) -> None:
    main, snap = tmp_path / "main.duckdb", tmp_path / "analyst.duckdb"
    db = open_database(main)
    repo.insert_documents(db, [_doc(1)])
    publish_snapshot(db, snap)
    first = snap.stat()
    db.close()
    db = open_database(main)  # opened for writing, nothing written: the copy is not made again
    publish_snapshot(db, snap)
    assert snap.stat().st_ino == first.st_ino
    repo.insert_documents(db, [_doc(2)])
    publish_snapshot(db, snap)
    db.close()
    assert snap.stat().st_ino != first.st_ino
    reader = open_for_reading(snap)
    try:
        assert reader.scalar("SELECT count(*) FROM documents") == 2
    finally:
        reader.close()


def test_stop_signal_ends_the_wait_for_a_lock_at_once(tmp_path: Path) -> None:
    main = tmp_path / "main.duckdb"
    open_database(main).close()
    stop = threading.Event()
    stop.set()
    open_database(main, stop=stop).close()  # a free database opens whatever the signal: it only ends a wait
    stop.clear()
    with hold_database(main):
        threading.Timer(0.3, stop.set).start()
        t0 = time.monotonic()
        with pytest.raises(DatabaseLockedError, match=r"locked by another process \(stopping"):
            open_database(main, lock_timeout_s=120, stop=stop)  # would wait two minutes
        waited = time.monotonic() - t0
    # An upper bound on a timeout: the wait is cut by the signal, not by the 120 s timeout (margin for load).
    assert waited < 30, f"{waited:.1f}s"


def test_database_and_spool_apply_one_rule_for_source_health(fresh_db: Database, tmp_path: Path) -> None:
    """The health a buffered batch will give a source (what a pass reads while the database is busy) is what
    the database records when the batch is written: both go through `polling.source_after_fetch`."""
    source = Source(id="s", kind="rss", voice="media", url="https://x.no/rss", interval_minutes=30)
    repo.sync_sources(fresh_db, [source])
    t0 = datetime(2026, 11, 20, 12, tzinfo=UTC)
    steps = [  # (status, new documents, etag, incomplete)
        (FetchStatus.TEMPORARY, 0, None, False),
        (FetchStatus.HARD_ERROR, 0, None, False),
        (FetchStatus.OK, 4, '"a"', False),
        (FetchStatus.NOT_MODIFIED, 0, None, False),
        (FetchStatus.OK, 2, '"b"', True),
        (FetchStatus.SOFT_ERROR, 0, None, False),
        (FetchStatus.OK, 0, '"c"', False),
    ]
    before = repo.source_state(fresh_db)
    folder = tmp_path / "spool"
    columns = (
        "consecutive_failures",
        "next_due_at",
        "last_status",
        "last_attempt_at",
        "failing_since",
        "etag",
        "body_hash",
        "unchanged_streak",
        "effective_interval_minutes",
    )
    for i, (status, new, etag, incomplete) in enumerate(steps):
        entry = FetchLogEntry(
            source_id="s",
            url="https://x.no/rss",
            status=status,
            started_at=t0 + timedelta(hours=i),
            new_documents=new,
            etag=etag,
            body_hash=f"h{i}" if etag else None,
            incomplete=incomplete,
        )
        spool.write_batch(folder, [], [SourceOutcome(source=source, fetches=[entry])])
        repo.record_fetch(fresh_db, entry, interval_minutes=30)
        stored = repo.source_state(fresh_db)["s"]
        overlaid = spool.overlay_state(before, folder)[0]["s"]
        assert {k: overlaid.get(k) for k in columns} == {k: stored[k] for k in columns}, f"after step {i}"
        if i == 1:  # two failures: the interval × 2²
            assert stored["next_due_at"] == entry.started_at + timedelta(minutes=30 * 4)
        if i == 2:  # new documents: polled twice as often
            assert stored["next_due_at"] == entry.started_at + timedelta(minutes=15)
        if i == 4:  # read only in part: the validators are forgotten
            assert stored["etag"] is None and stored["body_hash"] is None
    assert stored["next_due_at"] == t0 + timedelta(hours=6, minutes=30)  # quiet: the configured interval
    assert stored["etag"] == '"c"' and stored["body_hash"] == "h6"


def test_storage_imports_neither_collectors_nor_nlp() -> None:
    """Storage is records in, records out: what collectors hand back lives in `models.py`."""
    package = Path(repo.__file__).parent
    offenders = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            offenders += [
                f"{path.name}: {n}" for n in names if n.startswith(("tonevakt.collectors", "tonevakt.nlp"))
            ]
    assert len(list(package.rglob("*.py"))) > 5
    assert offenders == []
