"""Issue 16, round two: failed items are remembered and retried; sources and passes are bounded in time.

Everything runs through the CLI (in-process with click's CliRunner, and once as a real subprocess) against a
real HTTP server on 127.0.0.1 (tests/support/localserver.py) and a real DuckDB file per test. The article pages and
feeds are made up here, in the shape of the fixture site's union listing and news-search feed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner, Result

from tests.support.config import local_client
from tests.support.localserver import LocalServer, Route
from tests.support.paths import FIXTURES, tonevakt_command
from tonevakt.cli import main
from tonevakt.config import Settings
from tonevakt.errors import ConfigError

HTML = "text/html; charset=utf-8"
JSON = "application/json; charset=utf-8"
RSS = "application/rss+xml; charset=utf-8"
INCLUDE = r"/nyheter/2026/"
APP = "1512345678"
APP_PAGE = "/{country}/rss/customerreviews/page={page}/id={app_id}/sortby=mostrecent/json"


def article(n: int, what: str = "sak") -> str:
    """An article page in the shape of a union's news article (made up for these tests)."""
    paras = "".join(
        f"<p>Avsnitt {i} i {what} {n}: Tillitsvalgte ved St. Olavs hospital sier at Helseplattformen fortsatt "
        "gir merarbeid for sykepleiere og leger på sengepostene, og at ventetiden for pasientene øker.</p>"
        for i in range(4)
    )
    return (
        f'<!DOCTYPE html><html lang="nb"><head><meta charset="utf-8"><title>{what.title()} {n} om '
        f'Helseplattformen</title><meta property="article:published_time" content="2026-11-2{n % 8}T09:00:00+01:00">'
        f"</head><body><article><h1>{what.title()} {n} om Helseplattformen</h1>{paras}</article></body></html>"
    )


def listing(paths: list[str], extra: str = "") -> str:
    links = "".join(f'<li><a href="{p}">Sak</a></li>' for p in paths)
    return (
        '<!DOCTYPE html><html lang="nb"><head><meta charset="utf-8"><title>Nyheter</title></head><body>'
        f'<a href="/om-oss/">Om oss</a><ul class="news-list">{links}</ul>{extra}</body></html>'
    )


def web_source(sid: str, url: str, **kw: Any) -> dict[str, Any]:
    return {
        "id": sid,
        "kind": "web",
        "voice": "union",
        "name": sid.title(),
        "url": url,
        "include": INCLUDE,
        "respect_robots": False,
        **kw,
    }


def invoke(cfg: Path, *args: str) -> Result:
    res = CliRunner().invoke(main, ["--config", str(cfg), *args], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res


def rows(settings: Settings, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    con = duckdb.connect(str(settings.db_path), read_only=True)
    try:
        cur = con.execute(sql, params or [])
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
    finally:
        con.close()


def sources_line(cfg: Path, sid: str) -> str:
    out = invoke(cfg, "sources").output
    return next(line for line in out.splitlines() if line.startswith(sid))


def pass_seconds(output: str) -> float:
    m = re.search(r"pass done in ([\d.]+)s", output)
    assert m, output
    return float(m.group(1))


# -- 1. failed items are remembered and retried ---------------------------------------------------------------


def test_web_articles_that_failed_are_fetched_once_the_server_recovers(
    local_server: LocalServer, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """Before: three article pages answering 500 were never fetched again while the listing was unchanged
    (304): 3 of 3 lost for good, and the source showed "ok"."""
    srv = local_server
    paths = [f"/nyheter/2026/sak-{n}/" for n in (1, 2, 3)]
    srv.add("/nyheter/", Route(body=listing(paths), content_type=HTML, etag='"liste-1"'))
    for p in paths:
        srv.add(p, Route(status=500, body="<html><body>Intern feil</body></html>", content_type=HTML))
    settings = make_settings(sources=[web_source("fagforbundet", srv.url("/nyheter/"))])
    cfg = tmp_path / "config.yaml"

    first = invoke(cfg, "collect")
    assert "items pending 3" in first.output
    assert rows(settings, "SELECT count(*) AS n FROM documents")[0]["n"] == 0
    line = sources_line(cfg, "fagforbundet")
    assert "ok" in line and "3 items pending (HTTP 500 Internal Server Error)" in line
    pending = rows(settings, "SELECT * FROM pending_items ORDER BY url")
    assert [p["url"] for p in pending] == [srv.url(p) for p in paths]
    assert {(p["kind"], p["attempts"], p["last_status"]) for p in pending} == {("article", 1, "temporary")}
    health = rows(settings, "SELECT pending_items, items_given_up FROM sources")[0]
    assert health == {"pending_items": 3, "items_given_up": 0}

    for n, p in enumerate(paths, start=1):  # the server recovers; the listing stays the same
        srv.add(p, Route(body=article(n), content_type=HTML))
    second = invoke(cfg, "collect", "--force")
    assert (
        srv.requests[-4].path == "/nyheter/" and srv.requests[-4].headers.get("if-none-match") == '"liste-1"'
    )
    assert "items pending" not in second.output
    docs = rows(settings, "SELECT url, title FROM documents ORDER BY url")
    assert [d["url"] for d in docs] == [srv.url(p) for p in paths]
    assert rows(settings, "SELECT count(*) AS n FROM pending_items")[0]["n"] == 0
    assert "pending" not in sources_line(cfg, "fagforbundet")
    assert [srv.hits(p) for p in paths] == [2, 2, 2]

    invoke(cfg, "collect", "--force")  # nothing left: nothing fetched again, nothing stored twice
    assert [srv.hits(p) for p in paths] == [2, 2, 2]
    assert rows(settings, "SELECT count(*) AS n FROM documents")[0]["n"] == 3


def test_appstore_page_two_after_a_503_is_read_in_a_later_pass(
    local_server: LocalServer, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """Before: page 2 answering 503 was never asked for again while page 1 was unchanged (reviews lost)."""
    srv = local_server

    def path(page: int) -> str:
        return APP_PAGE.format(country="no", page=page, app_id=APP)

    page1 = (FIXTURES / "appstore" / "page1.json").read_bytes()
    page2 = (FIXTURES / "appstore" / "page2.json").read_bytes()
    empty = (FIXTURES / "appstore" / "empty.json").read_bytes()
    srv.add(path(1), Route(body=page1, content_type=JSON, etag='"side-1"'))
    srv.add(path(2), Route(status=503, body="Service Unavailable"))
    srv.add(path(3), Route(body=empty, content_type=JSON))
    settings = make_settings(
        sources=[
            {
                "id": "helsami-ios",
                "kind": "appstore",
                "voice": "patient",
                "app_id": APP,
                "url": srv.url(APP_PAGE),
                "respect_robots": False,
                "relevance": "always",
            }
        ]
    )
    cfg = tmp_path / "config.yaml"

    invoke(cfg, "collect")
    assert rows(settings, "SELECT count(*) AS n FROM documents")[0]["n"] == 4  # page 1: 4 reviews
    assert "1 items pending (HTTP 503 Service Unavailable)" in sources_line(cfg, "helsami-ios")
    assert [p["url"] for p in rows(settings, "SELECT url FROM pending_items")] == [srv.url(path(2))]

    srv.add(path(2), Route(body=page2, content_type=JSON))
    invoke(cfg, "collect", "--force")
    assert srv.requests[-3].path == path(1) and srv.requests[-3].headers.get("if-none-match") == '"side-1"'
    assert [srv.hits(path(p)) for p in (1, 2, 3)] == [2, 2, 1]
    assert rows(settings, "SELECT count(*) AS n FROM documents")[0]["n"] == 5  # the review of page 2 came in
    assert rows(settings, "SELECT count(*) AS n FROM pending_items")[0]["n"] == 0
    assert "pending" not in sources_line(cfg, "helsami-ios")


def test_an_item_that_keeps_failing_backs_off_and_is_given_up_after_the_limit(
    local_server: LocalServer, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    srv = local_server
    paths = ["/nyheter/2026/virker/", "/nyheter/2026/feiler/"]
    srv.add("/nyheter/", Route(body=listing(paths), content_type=HTML))
    srv.add(paths[0], Route(body=article(1), content_type=HTML))
    srv.add(paths[1], Route(status=502, body="Bad Gateway"))
    settings = make_settings(
        sources=[web_source("delta", srv.url("/nyheter/"), interval_minutes=60)],
        collect={"max_item_attempts": 3},
    )
    cfg = tmp_path / "config.yaml"

    waits = []
    for _ in range(3):
        invoke(cfg, "collect", "--force")
        p = rows(settings, "SELECT * FROM pending_items")[0]
        waits.append(None if p["next_due_at"] is None else p["next_due_at"] - p["last_attempt_at"])
    # The backoff rule of sources (storage.polling.backoff_delay), counted from the source's next poll.
    assert waits == [timedelta(minutes=60), timedelta(minutes=120), None]
    p = rows(settings, "SELECT * FROM pending_items")[0]
    assert p["attempts"] == 3 and p["gave_up_at"] is not None and p["last_error"] == "HTTP 502 Bad Gateway"
    line = sources_line(cfg, "delta")
    assert "1 items given up" in line and "pending" not in line
    assert srv.hits(paths[1]) == 3

    # The listing changes (a new article): the given-up page is not taken for a new one, the new one is fetched.
    paths.append("/nyheter/2026/ny/")
    srv.add(paths[2], Route(body=article(3), content_type=HTML))
    srv.add("/nyheter/", Route(body=listing(paths), content_type=HTML))
    invoke(cfg, "collect", "--force")
    assert [srv.hits(p) for p in paths] == [1, 3, 1]
    assert rows(settings, "SELECT count(*) AS n FROM documents")[0]["n"] == 2


def test_pending_items_wait_for_their_backoff_without_force(
    local_server: LocalServer, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """A plain pass (what the scheduler runs) leaves an item alone until it is due, and the source too."""
    srv = local_server
    srv.add("/nyheter/", Route(body=listing(["/nyheter/2026/a/"]), content_type=HTML))
    srv.add("/nyheter/2026/a/", Route(status=500))
    settings = make_settings(sources=[web_source("nsf", srv.url("/nyheter/"))])
    cfg = tmp_path / "config.yaml"
    invoke(cfg, "collect")
    out = invoke(cfg, "collect").output
    assert "skipped 1" in out and srv.hits("/nyheter/2026/a/") == 1
    assert rows(settings, "SELECT attempts FROM pending_items")[0]["attempts"] == 1


# -- 2. time bounds -------------------------------------------------------------------------------------------


def _feed(srv: LocalServer, n: int) -> str:
    items = "".join(
        f"<item><title>Nyhet {i} om Helseplattformen</title><link>{srv.url(f'/nrk/sak-{i}')}</link>"
        f"<guid>{srv.url(f'/nrk/sak-{i}')}</guid><pubDate>Tue, 24 Nov 2026 0{i}:00:00 +0100</pubDate>"
        f"<description>Helseplattformen ved St. Olavs hospital, nyhet {i}.</description></item>"
        for i in range(1, n + 1)
    )
    return f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>NRK</title>{items}</channel></rss>"


def _docs_of(db: Path, source_id: str) -> int | None:
    """Documents of a source, or None while the database is missing or held by the pass's writer."""
    try:
        con = duckdb.connect(str(db), read_only=True)
    except duckdb.Error:
        return None
    try:
        return con.execute("SELECT count(*) FROM documents WHERE source_id = ?", [source_id]).fetchone()[0]
    except duckdb.Error:
        return None
    finally:
        con.close()


def test_slow_source_is_cut_at_its_budget_and_fast_documents_are_stored_first(
    local_server: LocalServer, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """Before: five article pages dripping one byte a second held the whole pass (each up to
    http.total_timeout_s), and the fast source's documents waited for the slowest. A real subprocess, so that
    the database can be read while the pass runs."""
    srv = local_server
    slow = [f"/nyheter/2026/drypp-{n}/" for n in range(1, 6)]
    srv.add("/nyheter/", Route(body=listing(slow), content_type=HTML, etag='"drypp"'))
    for n, p in enumerate(slow, start=1):
        srv.add(p, Route(body=article(n), content_type=HTML, drip_s=1.0, drip_bytes=1))
    srv.add("/nrk.xml", Route(body=_feed(srv, 3), content_type=RSS))
    budget = 4.0
    settings = make_settings(
        http={"read_timeout_s": 5, "total_timeout_s": 30},
        collect={"source_budget_s": budget, "pass_deadline_s": 20},
        sources=[
            web_source("treg", srv.url("/nyheter/")),
            {
                "id": "nrk",
                "kind": "rss",
                "voice": "media",
                "url": srv.url("/nrk.xml"),
                "full_text": "never",
                "respect_robots": False,
            },
        ],
    )
    cfg = tmp_path / "config.yaml"
    exe = tonevakt_command()
    proc = subprocess.Popen(
        [exe, "--config", str(cfg), "collect"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    fast_stored_while_running = False
    try:
        while proc.poll() is None:
            if _docs_of(settings.db_path, "nrk"):
                fast_stored_while_running = proc.poll() is None
                break
            time.sleep(0.1)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert fast_stored_while_running, "the fast source's documents waited for the slow source"
    # A timeout: the source's 4 s budget ends it (before: 5 × 30 s); 10 s of margin for a busy machine.
    assert pass_seconds(out) < budget + 10
    assert "items pending 5" in out
    assert _docs_of(settings.db_path, "nrk") == 3 and _docs_of(settings.db_path, "treg") == 0
    pending = rows(settings, "SELECT url, attempts, last_error FROM pending_items ORDER BY url")
    assert [p["url"] for p in pending] == [srv.url(p) for p in slow]
    cut = [p for p in pending if p["attempts"] == 1]
    assert len(cut) == 1 and "the source's time budget of 4s ran out" in cut[0]["last_error"]
    assert all(p["attempts"] == 0 and "the time ran out" in p["last_error"] for p in pending if p not in cut)
    assert "5 items pending" in sources_line(cfg, "treg")

    for n, p in enumerate(slow, start=1):  # the site is fast again; its listing is unchanged
        srv.add(p, Route(body=article(n), content_type=HTML))
    invoke(cfg, "collect", "--force")
    assert _docs_of(settings.db_path, "treg") == 5 and _docs_of(settings.db_path, "nrk") == 3
    assert rows(settings, "SELECT count(*) AS n FROM pending_items")[0]["n"] == 0


def test_pass_deadline_ends_the_pass_and_sources_not_started_come_next(
    local_server: LocalServer, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    srv = local_server
    for site in ("a", "b", "c"):
        page = f"/{site}/nyheter/2026/sak/"
        srv.add(f"/{site}/nyheter/", Route(body=listing([page]), content_type=HTML))
        drip = {"drip_s": 1.0, "drip_bytes": 1} if site != "c" else {}
        srv.add(page, Route(body=article(1, f"sak {site}"), content_type=HTML, **drip))  # type: ignore[arg-type]
    settings = make_settings(
        http={"read_timeout_s": 5, "total_timeout_s": 30, "max_concurrency": 1},
        collect={"source_budget_s": 2, "pass_deadline_s": 3},
        sources=[web_source(s, srv.url(f"/{s}/nyheter/"), include="/nyheter/2026/") for s in ("a", "b", "c")],
    )
    cfg = tmp_path / "config.yaml"
    out = invoke(cfg, "collect").output
    # A timeout: the 3 s pass deadline ends it (before: two pages of 30 s each); 10 s of margin for a busy machine.
    assert pass_seconds(out) < 3 + 10
    assert "deferred 1" in out and srv.hits("/c/nyheter/") == 0
    assert {r["id"]: r["last_status"] for r in rows(settings, "SELECT id, last_status FROM sources")} == {
        "a": "ok",
        "b": "ok",
        "c": None,
    }
    out = invoke(cfg, "collect").output  # a plain pass: c was never fetched, so it is due; a and b are not
    assert "skipped 2" in out and srv.hits("/c/nyheter/") == 1
    assert [r["source_id"] for r in rows(settings, "SELECT source_id FROM documents")] == ["c"]


def _search_feed(srv: LocalServer, n: int) -> str:
    items = "".join(
        f"<item><title>Sak {i} om Helseplattformen - Adresseavisen</title>"
        f"<link>{srv.url(f'/rss/articles/{i}', host='localhost')}</link>"
        f"<guid isPermaLink='false'>sok-{i}</guid><pubDate>Tue, 24 Nov 2026 08:{i:02d}:00 +0100</pubDate>"
        f"<source url='https://www.adressa.no'>Adresseavisen</source>"
        f"<description>Sak {i} om Helseplattformen</description></item>"
        for i in range(1, n + 1)
    )
    return f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>Søk</title>{items}</channel></rss>"


def test_news_search_resolves_at_most_the_per_pass_cap_and_the_rest_next_pass(
    local_server: LocalServer, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """Before: every item's link was resolved in one pass (45 requests for 45 items); the cap of 40 applied
    only to full text."""
    from tonevakt.collectors.rss import MAX_ARTICLES_PER_PASS

    srv = local_server
    n = MAX_ARTICLES_PER_PASS + 5
    srv.add("/search/rss", Route(body=_search_feed(srv, n), content_type=RSS, etag='"sok-1"'))
    for i in range(1, n + 1):
        srv.add(f"/rss/articles/{i}", Route(redirect_to=srv.url(f"/adressa/sak-{i}"), status=302))
        srv.add(f"/adressa/sak-{i}", Route(body=article(i), content_type=HTML))
    settings = make_settings(
        sources=[
            {
                "id": "sok",
                "kind": "news_search",
                "voice": "media",
                "full_text": "never",
                "url": srv.url("/search/rss", host="localhost"),
                "respect_robots": False,
            }
        ]
    )
    cfg = tmp_path / "config.yaml"

    def resolved() -> int:
        return sum(srv.hits(f"/rss/articles/{i}") for i in range(1, n + 1))

    invoke(cfg, "collect")
    assert resolved() == MAX_ARTICLES_PER_PASS
    assert rows(settings, "SELECT count(*) AS n FROM documents")[0]["n"] == MAX_ARTICLES_PER_PASS
    invoke(
        cfg, "collect", "--force"
    )  # the feed is unchanged, but it is read in full again: 5 items were left
    assert resolved() == n and all(srv.hits(f"/rss/articles/{i}") == 1 for i in range(1, n + 1))
    urls = [r["url"] for r in rows(settings, "SELECT url FROM documents ORDER BY url")]
    assert sorted(urls) == sorted(srv.url(f"/adressa/sak-{i}") for i in range(1, n + 1))
    invoke(cfg, "collect", "--force")  # all handled: the feed's validators are kept again
    assert (
        srv.requests[-1].path == "/search/rss" and srv.requests[-1].headers.get("if-none-match") == '"sok-1"'
    )
    assert resolved() == n


def test_time_bounds_are_validated(make_settings: Callable[..., Settings]) -> None:
    for bad, why in [
        ({"source_budget_s": ".inf"}, "source_budget_s"),
        ({"source_budget_s": 0}, "source_budget_s"),
        ({"pass_deadline_s": -1}, "pass_deadline_s"),
        ({"source_budget_s": 300, "pass_deadline_s": 60}, "cannot be longer than pass_deadline_s"),
        ({"max_item_attempts": 0}, "max_item_attempts"),
        ({"budget_s": 10}, "unknown key 'collect.budget_s'"),
    ]:
        value = {k: (float("inf") if v == ".inf" else v) for k, v in bad.items()}
        with pytest.raises(ConfigError, match=re.escape(why)):
            make_settings(collect=value)
    s = make_settings(collect={"source_budget_s": 30, "pass_deadline_s": 60, "max_item_attempts": 4})
    assert (s.collect.source_budget_s, s.collect.pass_deadline_s, s.collect.max_item_attempts) == (30, 60, 4)


def test_spooled_batches_keep_what_became_of_items(make_settings: Callable[..., Settings]) -> None:
    """A pass that finds the database busy buffers its batch; the items' outcomes travel with it."""
    from tonevakt.models import FetchStatus, ItemOutcome, Source, SourceOutcome
    from tonevakt.storage import spool

    settings = make_settings()
    src = Source(id="lo", kind="web", voice="union", url="http://127.0.0.1/nyheter/")
    outcome = SourceOutcome(
        source=src,
        items=[
            ItemOutcome("http://127.0.0.1/a/", "article", FetchStatus.TEMPORARY, "HTTP 500"),
            ItemOutcome("http://127.0.0.1/b/", "article"),
        ],
    )
    path = spool.write_batch(spool.spool_dir(settings.db_path), [], [outcome])
    assert path is not None
    back = spool.read_batch(path).outcomes[0].items
    assert back == outcome.items
    assert (
        json.loads(path.read_text(encoding="utf-8").splitlines()[1])["outcome"]["items"][1]["status"] is None
    )


def test_a_deadline_cuts_the_running_fetch_and_no_fetch_starts_after_it(local_server: LocalServer) -> None:
    """The chokepoint's part of the time budget (`HttpClient.with_deadline`), whatever the server does."""
    from tonevakt.models import FetchStatus

    srv = local_server
    srv.add("/drypp", Route(body="x" * 500, drip_s=0.5))
    srv.add("/opptatt", Route(status=503, headers={"Retry-After": "5"}))
    srv.add("/rask", Route(body="ok"))
    with local_client(read_timeout_s=5, total_timeout_s=30, max_retry_after_s=60) as client:
        bounded = client.with_deadline(time.monotonic() + 1.5, "the source's time budget of 1.5s")
        t0 = time.monotonic()
        res = bounded.fetch(srv.url("/drypp"))
        # A timeout: the drip would take minutes and the request's own limit is 30 s; the 1.5 s budget cuts
        # it (the reason says which bound did; 10 s leaves a busy machine room).
        assert time.monotonic() - t0 < 10
        assert res.status is FetchStatus.TEMPORARY
        assert "(the source's time budget of 1.5s ran out)" in res.reason
        late = bounded.fetch(srv.url("/rask"))
        assert late.status is FetchStatus.TEMPORARY and bounded.out_of_time
        assert late.reason == "not started: the source's time budget of 1.5s is spent"
        assert srv.hits("/rask") == 0
        # A Retry-After that would end past the deadline is not waited for; the unbounded client still works.
        short = client.with_deadline(time.monotonic() + 2, "the pass deadline of 2s")
        t0 = time.monotonic()
        busy = short.fetch(srv.url("/opptatt"))
        assert busy.http_status == 503 and srv.hits("/opptatt") == 1  # no second try
        assert time.monotonic() - t0 < 4.5  # a timeout: waiting for the 5 s Retry-After would take 5 s
        assert client.fetch(srv.url("/rask")).ok and not client.out_of_time
