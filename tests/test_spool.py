"""The spool: batches that cannot get into a busy database are buffered, then written once, never dropped."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support.lock import hold_database
from tonevakt import pipeline
from tonevakt.config import Settings
from tonevakt.errors import DatabaseLockedError
from tonevakt.models import Document, FetchLogEntry, FetchStatus, Source, SourceOutcome
from tonevakt.storage import spool
from tonevakt.storage.db import database

SOURCE = Source(
    id="nrk-test",
    kind="rss",
    voice="media",
    name="NRK test",
    url="http://127.0.0.1:9/feed.xml",
    interval_minutes=30,
)


def _batch(
    n: int, start: int = 0, status: FetchStatus = FetchStatus.OK
) -> tuple[list[Document], SourceOutcome]:
    t = datetime(2026, 11, 20, 8, 0, tzinfo=UTC) + timedelta(minutes=start)
    docs = [
        Document(
            source_id=SOURCE.id,
            voice="media",
            url=f"http://127.0.0.1:9/sak/{i}",
            title=f"Helseplattformen sak {i}",
            text=f"Ny kritikk av Helseplattformen ved St. Olavs, nr {i}.",
            published_at=t + timedelta(seconds=i),
        )
        for i in range(start, start + n)
    ]
    fetch = FetchLogEntry(
        source_id=SOURCE.id,
        url=SOURCE.url or "",
        status=status,
        started_at=t,
        http_status=200,
        items=n,
        etag=f'"e{start}"',
        body_hash=f"h{start}",
    )
    return docs, SourceOutcome(source=SOURCE, documents=docs if not status.failed else [], fetches=[fetch])


@pytest.fixture
def busy_settings(make_settings: Callable[..., Settings]) -> Settings:
    s = make_settings(
        database={"lock_timeout_s": 0.3},
        sources=[
            {"id": SOURCE.id, "kind": "rss", "voice": "media", "url": SOURCE.url, "interval_minutes": 30}
        ],
    )
    pipeline.init(s)
    return s


def _counts(s: Settings) -> tuple[int, int, int]:
    with database(s.db_path) as db:
        return (
            db.scalar("SELECT count(*) FROM documents"),
            db.scalar("SELECT count(DISTINCT id) FROM documents"),
            db.scalar("SELECT count(*) FROM fetch_log"),
        )


def test_roundtrip_keeps_every_field(tmp_path: Path) -> None:
    docs, outcome = _batch(3)
    docs[0].extra = {"row": 4, "file": "a.csv"}
    docs[0].matched = ["helseplattformen"]
    outcome.imported_files.append(("abc", SOURCE.id, "inbox/a.csv", 3))
    path = spool.write_batch(tmp_path / "spool", docs, [outcome])
    back = spool.read_batch(path)
    assert back.documents == docs
    assert back.outcomes[0].source == SOURCE
    assert back.outcomes[0].fetches == outcome.fetches
    assert [d.id for d in back.outcomes[0].documents] == [d.id for d in docs]
    assert back.outcomes[0].imported_files == [("abc", SOURCE.id, "inbox/a.csv", 3)]
    assert spool.pending(tmp_path / "spool") == [path]
    # A pass where no source was due has nothing to buffer.
    assert spool.write_batch(tmp_path / "spool", [], [SourceOutcome(source=SOURCE, skipped=True)]) is None
    assert spool.pending(tmp_path / "spool") == [path]


def test_busy_database_buffers_then_writes_once(busy_settings: Settings) -> None:
    s = busy_settings
    folder = spool.spool_dir(s.db_path)
    docs1, o1 = _batch(3, 0)
    docs2, o2 = _batch(3, 2)  # overlaps the first batch by one document
    with hold_database(s.db_path):
        with pytest.raises(DatabaseLockedError):
            pipeline.store_documents(s, docs1, outcomes=[o1])  # without spool_on_lock: the error stands
        assert pipeline.store_documents(s, docs1, outcomes=[o1], spool_on_lock=True) == []
        assert pipeline.store_documents(s, docs2, outcomes=[o2], spool_on_lock=True) == []
        assert len(spool.pending(folder)) == 2
        # While the database is busy the next pass reads state from snapshot + spool: not due again.
        state = pipeline.pass_store(s).state_from_snapshot().sources
        assert state[SOURCE.id]["next_due_at"] == o2.fetches[0].started_at + timedelta(minutes=30)
        assert state[SOURCE.id]["etag"] == '"e2"'
    docs3, o3 = _batch(2, 10)
    new = pipeline.store_documents(s, docs3, outcomes=[o3], spool_on_lock=True)
    assert len(new) == 2
    assert spool.pending(folder) == []
    n, distinct, fetches = _counts(s)
    assert (n, distinct, fetches) == (7, 7, 3)
    with database(s.db_path) as db:
        logged = db.fetchall("SELECT new_documents FROM fetch_log ORDER BY started_at")
    assert [r[0] for r in logged] == [3, 2, 2]  # the second batch had one document already stored


def test_replay_after_crash_between_commit_and_unlink(busy_settings: Settings, tmp_path: Path) -> None:
    s = busy_settings
    folder = spool.spool_dir(s.db_path)
    docs, ok = _batch(4, 0)
    _, failed = _batch(0, 60, status=FetchStatus.TEMPORARY)
    with hold_database(s.db_path):
        pipeline.store_documents(s, docs, outcomes=[ok], spool_on_lock=True)
        pipeline.store_documents(s, [], outcomes=[failed], spool_on_lock=True)
    copies = tmp_path / "copies"
    shutil.copytree(folder, copies)
    with database(s.db_path) as db:
        assert spool.replay(db, folder, s.collect.max_item_attempts) == (2, 4)
    # The process died after the commit, before the files were removed: they are all still there.
    for f in copies.iterdir():
        shutil.copy(f, folder / f.name)
    with database(s.db_path) as db:
        assert spool.replay(db, folder, s.collect.max_item_attempts) == (2, 0)
        failures = db.scalar("SELECT consecutive_failures FROM sources WHERE id = ?", [SOURCE.id])
    assert failures == 1  # the failed fetch counted once, not twice
    assert _counts(s) == (4, 4, 2)
    assert spool.pending(folder) == []


def test_unreadable_batch_is_set_aside_not_deleted(busy_settings: Settings) -> None:
    s = busy_settings
    folder = spool.spool_dir(s.db_path)
    docs, o = _batch(2)
    good = spool.write_batch(folder, docs, [o])
    cut = folder / ("0" + good.name)  # sorts first
    cut.write_text("\n".join(good.read_text(encoding="utf-8").splitlines()[:-1]) + "\n", encoding="utf-8")
    (folder / ".interrupted.jsonl.tmp").write_text('{"spool": 1', encoding="utf-8")
    with database(s.db_path) as db:
        assert spool.replay(db, folder, s.collect.max_item_attempts) == (1, 2)
    assert (folder / "rejected" / cut.name).exists()
    assert spool.pending(folder) == []
    assert _counts(s)[0] == 2
