"""Freshness (benchmarks/bench_freshness.py measures it through the real daemon): a source polled on the
collect job's own interval is not skipped for being a few seconds short of due, and a collect pass that
stores new documents publishes the analyst snapshot itself."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import duckdb

from tests.support.localserver import FEED_TYPE, LocalServer, Route
from tonevakt import pipeline
from tonevakt.collectors.collect import due_grace, is_due
from tonevakt.config import Settings
from tonevakt.scheduler import Daemon


def test_a_source_a_few_seconds_short_of_due_is_fetched_in_this_pass() -> None:
    now = datetime(2026, 11, 25, 6, 30, tzinfo=UTC)
    # Fetched at 06:00:02 in the 06:00 pass, interval 30 minutes: due 06:30:02; the 06:30 pass takes it.
    assert is_due({"next_due_at": now + timedelta(seconds=2), "interval_minutes": 30}, now)
    assert due_grace({"interval_minutes": 30}) == timedelta(seconds=60)
    assert due_grace({"interval_minutes": 1}) == timedelta(seconds=3)
    # Well before its time, a source waits, whatever its interval; without an interval there is no grace.
    assert not is_due({"next_due_at": now + timedelta(minutes=5), "interval_minutes": 30}, now)
    assert not is_due({"next_due_at": now + timedelta(seconds=4), "interval_minutes": 1}, now)
    assert not is_due({"next_due_at": now + timedelta(seconds=1)}, now)


def _feed(entries: list[str]) -> str:
    items = "".join(
        f"<item><title>Helseplattformen: {e}</title><link>https://kilde.example.no/{e}</link>"
        f"<pubDate>{format_datetime(datetime.now(UTC))}</pubDate><description>Om Helseplattformen.</description></item>"
        for e in entries
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>K</title>{items}</channel></rss>'


def _snapshot_urls(settings: Settings) -> set[str]:
    con = duckdb.connect(str(settings.snapshot_path), read_only=True)
    try:
        return {r[0] for r in con.execute("SELECT url FROM documents").fetchall()}
    finally:
        con.close()


def test_a_collect_pass_with_new_documents_publishes_the_snapshot(
    make_settings: Callable[..., Settings], local_server: LocalServer
) -> None:
    local_server.add("/feed.xml", Route(body=_feed(["sak-1"]), content_type=FEED_TYPE))
    settings = make_settings(
        sources=[
            {
                "id": "kilde",
                "kind": "rss",
                "voice": "media",
                "full_text": "never",
                "url": local_server.url("/feed.xml"),
                "interval_minutes": 1,
            }
        ]
    )
    pipeline.init(settings)  # the database and an empty first snapshot
    assert _snapshot_urls(settings) == set()
    daemon = Daemon(settings)
    daemon.collect()
    assert _snapshot_urls(settings) == {"https://kilde.example.no/sak-1"}
    # A pass that brings nothing new leaves the snapshot alone (same file, not rewritten).
    before = settings.snapshot_path.stat().st_mtime_ns
    local_server.add("/feed.xml", Route(body=_feed(["sak-1"]), content_type=FEED_TYPE))
    pipeline.collect(settings, force=True)
    daemon.collect()
    assert settings.snapshot_path.stat().st_mtime_ns == before
