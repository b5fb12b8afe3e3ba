"""One collection pass: `tonevakt collect` end to end against a local site with a dozen Norwegian feeds and
broken sources, plus the pass's own rules (due/backoff, concurrency, progress, a crashing collector)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner

from tests.support.localserver import LocalServer, Route, mount_fixture_site
from tonevakt.cli import main
from tonevakt.collectors.collect import collect_one, collect_sources, is_due
from tonevakt.config import Settings
from tonevakt.models import FetchStatus, Source

GOOD = {  # source id → (kind, extra settings); every entry of these feeds must be stored exactly once
    "nrk-trondelag": ("rss", {"region": "trondelag"}),
    "nrk-more-og-romsdal": ("rss", {"region": "more_og_romsdal"}),
    "adresseavisen": ("rss", {"region": "trondelag", "paywalled": True, "full_text": "never"}),
    "sunnmorsposten": ("rss", {"region": "more_og_romsdal", "paywalled": True}),
    "romsdals-budstikke": ("rss", {"region": "more_og_romsdal"}),
    "dagens-medisin": ("rss", {}),
    "sykepleien": ("rss", {}),
    "digi": ("rss", {}),
    "helse-midt-norge": ("rss", {"voice": "official"}),
    "news-search": ("news_search", {}),
    "legeforeningen": ("web", {"voice": "union", "include": r"^http://127\.0\.0\.1:\d+/nyheter/\d{4}/"}),
}
# entries per good source (duplicate GUIDs counted once); the news search repeats one Adresseavisen story
ENTRIES = {
    "nrk-trondelag": 4,
    "nrk-more-og-romsdal": 3,
    "adresseavisen": 3,
    "sunnmorsposten": 2,
    "romsdals-budstikke": 2,
    "dagens-medisin": 2,
    "sykepleien": 2,
    "digi": 3,
    "helse-midt-norge": 2,
    "news-search": 3,
    "legeforeningen": 2,
}
BROKEN = {
    "html-instead": "the server sent an HTML page, not a feed",
    "gone": "HTTP 410 Gone",
    "server-error": "HTTP 500 Internal Server Error",
    "rate-limited": "HTTP 429 Too Many Requests, Retry-After 3600s",
    "stalled": "timed out after 2s while reading the body (no data)",
    "gzip-bomb": "body larger than 10,000,000 bytes after decompression",
    "redirect-loop": "redirect loop",
}
ARTICLE_PREFIXES = (
    "/trondelag/",
    "/mr/",
    "/nyheter/i/",
    "/ta/",
    "/nrk/",
    "/nyheter/2026/",
    "/sykepleien/2026",
    "/digi/artikler",
    "/hmn/",
    "/helseplattformen/",
    "/rss/articles/",
)


@pytest.fixture
def site() -> Iterator[tuple[LocalServer, dict[str, str]]]:
    with LocalServer() as srv:
        yield srv, mount_fixture_site(srv)


def site_config(urls: dict[str, str], make_settings: Callable[..., Settings], **http: Any) -> Settings:
    sources = []
    for sid, (kind, extra) in GOOD.items():
        sources.append(
            {
                "id": sid,
                "name": sid.replace("-", " ").title(),
                "kind": kind,
                "voice": "media",
                "url": urls[sid],
                "interval_minutes": 30,
                **extra,
            }
        )
    for sid in BROKEN:
        sources.append({"id": sid, "kind": "rss", "voice": "media", "url": urls[sid]})
    return make_settings(
        sources=sources, http={"total_timeout_s": 3, "read_timeout_s": 2, "max_concurrency": 8, **http}
    )


def run_collect(settings: Settings, *args: str) -> tuple[Any, float]:
    t0 = time.monotonic()
    res = CliRunner().invoke(main, ["--config", settings.file, "collect", *args], catch_exceptions=False)
    return res, time.monotonic() - t0


def article_requests(srv: LocalServer, since: int) -> list[str]:
    return [r.path for r in srv.requests[since:] if r.path.startswith(ARTICLE_PREFIXES)]


def test_collect_end_to_end(site, make_settings) -> None:
    srv, urls = site
    settings = site_config(urls, make_settings)
    res, took = run_collect(settings)
    assert res.exit_code == 0, res.output
    # A timeout: a stalled source (60 s) never holds the pass past its fetch limit (3 s total per fetch);
    # 30 s leaves a busy machine room and is still half the stall.
    assert took < 30, took
    for sid, reason in BROKEN.items():
        assert f"failed: {sid}: {reason}" in res.output
    assert "sources ok 11, failed 7, skipped 0" in res.output

    con = duckdb.connect(str(settings.db_path), read_only=True)
    try:
        per_source = dict(con.execute("SELECT source_id, count(*) FROM documents GROUP BY 1").fetchall())
        assert per_source == ENTRIES
        assert (
            con.execute(
                "SELECT count(*) FROM (SELECT canonical_url FROM documents GROUP BY 1 HAVING count(*) > 1)"
            ).fetchone()[0]
            == 0
        )
        titles = [r[0] for r in con.execute("SELECT title FROM documents").fetchall()]
        assert len(titles) == len(set(titles)) == sum(ENTRIES.values())
        assert "Ålesund sjukehus førebur seg på Helseplattforma" in titles  # ISO-8859-1, declared
        assert "Rekordår for cruisetrafikken i Romsdalsfjorden" in titles  # ISO-8859-1, HTTP charset only
        health = {
            r[0]: r[1:]
            for r in con.execute(
                "SELECT id, last_status, last_error, consecutive_failures, next_due_at > now() FROM sources"
            ).fetchall()
        }
        for sid, reason in BROKEN.items():
            status, error, failures, later = health[sid]
            assert status != "ok" and error.startswith(reason) and failures == 1 and later, (sid, health[sid])
        for sid in GOOD:
            assert health[sid][0] == "ok" and health[sid][2] == 0
        stalled_ms = con.execute(
            "SELECT max(duration_ms) FROM fetch_log WHERE source_id = 'stalled'"
        ).fetchone()[0]
        assert (
            stalled_ms <= 3000 + 2000
        )  # a timeout: cut at the 3 s total limit (2 s margin for a busy machine)
        paywalled = con.execute(
            "SELECT count(*) FROM documents WHERE source_id = 'adresseavisen' AND paywalled AND text = lead"
        ).fetchone()[0]
        assert paywalled == 3
        full = con.execute("SELECT text FROM documents WHERE title LIKE 'Tillitsvalgte krever%'").fetchone()[
            0
        ]
        assert "sju av ti leger" in full
    finally:
        con.close()

    # Second run: nothing is due (interval, or backoff after failure): nothing fetched, nothing added.
    n = len(srv.requests)
    res2, _ = run_collect(settings)
    assert res2.exit_code == 0 and "skipped 18" in res2.output and "new 0" in res2.output
    assert len(srv.requests) == n

    # Forced: feeds are unchanged (ETag, Last-Modified or body hash): nothing added, no article extracted.
    res3, _ = run_collect(settings, "--force")
    assert res3.exit_code == 0 and "new 0" in res3.output, res3.output
    assert article_requests(srv, n) == []

    # A feed gains one item: only that item is new; articles already stored are not fetched again.
    body = (srv.routes["/feeds/nrk-trondelag.xml"].body_bytes()).replace(
        b"<item>",
        (
            "<item><title>Helseplattformen: Ny rapport om ventetider ved St. Olavs hospital</title>"
            "<link>/trondelag/ny-rapport-ventetider-1.17019999</link><guid>1.17019999</guid>"
            "<description>Rapporten viser at ventetidene har økt etter innføringen.</description>"
            "<pubDate>Wed, 25 Nov 2026 18:00:00 +0100</pubDate></item><item>"
        ).encode(),
        1,
    )
    srv.add(
        "/feeds/nrk-trondelag.xml",
        Route(body=body, content_type="application/rss+xml; charset=utf-8", etag='"nrk-trd-2"'),
    )
    m = len(srv.requests)
    res4, _ = run_collect(settings, "--source", "nrk-trondelag")
    assert res4.exit_code == 0 and "new 1" in res4.output, res4.output
    assert article_requests(srv, m) == ["/trondelag/ny-rapport-ventetider-1.17019999"]
    con = duckdb.connect(str(settings.db_path), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM documents").fetchone()[0] == sum(ENTRIES.values()) + 1
    finally:
        con.close()


def test_due_and_backoff() -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    assert is_due(None, now) and is_due({"next_due_at": None}, now)
    assert is_due({"next_due_at": now - timedelta(seconds=1)}, now)
    assert not is_due({"next_due_at": now + timedelta(minutes=5)}, now)


def test_pass_is_concurrent_bounded_and_reports_progress(make_settings) -> None:
    with LocalServer() as a, LocalServer() as b:
        feed = (
            "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>T</title>"
            "<item><title>Sak {i} om været i Trøndelag</title><link>/sak/{i}</link></item></channel></rss>"
        )
        sources = []
        for i in range(8):
            srv = a if i % 2 else b
            url = srv.add(
                f"/feed{i}.xml", Route(body=feed.format(i=i), content_type="application/rss+xml", delay_s=0.5)
            )
            sources.append({"id": f"feed-{i}", "kind": "rss", "voice": "media", "url": url})
        settings = make_settings(sources=sources, http={"max_concurrency": 4})
        calls: list[tuple[str, int, int]] = []
        lock = threading.Lock()

        def progress(what: str, done: int, total: int) -> None:
            with lock:
                calls.append((what, done, total))

        outcomes = collect_sources(
            settings.source_records(),
            {},
            settings,
            is_candidate=lambda t: False,
            known_files=set(),
            progress=progress,
        )
        # Each feed answers after 0.5 s: the servers' own request log shows how many were fetched at once.
        at_once = a.most_at_once(b)
    assert [o.source.id for o in outcomes] == [f"feed-{i}" for i in range(8)]
    assert all(len(o.documents) == 1 and not o.failed for o in outcomes)
    assert 2 <= at_once <= 4, at_once  # concurrent, and never more than max_concurrency (4) at a time
    assert calls[0] == ("collect", 0, 8) and calls[-1] == ("collect", 8, 8) and len(calls) == 9


def test_sources_not_due_are_skipped_unless_forced(make_settings) -> None:
    from datetime import UTC, datetime, timedelta

    with LocalServer() as srv:
        url = srv.add("/f.xml", Route(body="<rss version='2.0'><channel><title>T</title></channel></rss>"))
        settings = make_settings(sources=[{"id": "f", "kind": "rss", "voice": "media", "url": url}])
        state = {"f": {"next_due_at": datetime.now(UTC) + timedelta(hours=2), "consecutive_failures": 3}}
        out = collect_sources(
            settings.source_records(), state, settings, is_candidate=bool, known_files=set()
        )
        assert out[0].skipped and srv.hits("/f.xml") == 0
        out = collect_sources(
            settings.source_records(), state, settings, is_candidate=bool, known_files=set(), force=True
        )
        assert not out[0].skipped and not out[0].failed and srv.hits("/f.xml") == 1


def test_a_crashing_collector_becomes_a_failed_outcome(settings: Settings) -> None:
    from tonevakt.collectors.http import HttpClient

    src = Source(id="bad", kind="rss", voice="media", url="http://127.0.0.1:9/feed.xml")
    with HttpClient(settings.http) as client:
        out = collect_one(
            src,
            client,
            "not a state row",
            is_candidate=bool,
            known_files=set(),  # type: ignore[arg-type]
            known_urls=set(),
        )
        odd = collect_one(
            Source(id="odd", kind="gopher", voice="media"),
            client,
            None,
            is_candidate=bool,
            known_files=set(),
            known_urls=set(),
        )
    assert out.failed and out.reason.startswith("collector crashed: AttributeError")
    assert out.fetches[0].status is FetchStatus.SOFT_ERROR and out.fetches[0].primary
    assert odd.failed and odd.reason == "unknown source kind 'gopher'"


def test_collect_refuses_loopback_without_the_allowance(make_settings, tmp_path: Path) -> None:
    with LocalServer() as srv:
        url = srv.add("/f.xml", Route(body="<rss version='2.0'><channel><title>T</title></channel></rss>"))
        settings = make_settings(
            sources=[{"id": "f", "kind": "rss", "voice": "media", "url": url}],
            http={"allow_private_addresses": False},
        )
        res, _ = run_collect(settings)
        assert srv.hits("/f.xml") == 0
    assert (
        "failed: f: refused: 127.0.0.1 is a loopback address (http.allow_private_addresses is off)"
        in res.output
    )
