"""Reliability catalogue, content rows (docs/reliability.md): hostile or broken feeds, served by a real
HTTP server on 127.0.0.1 and run through the real pass (collect → enrich → store) into a DuckDB file."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.support.localserver import LocalServer, Route
from tonevakt import dates, pipeline
from tonevakt.collectors.rss import MAX_ARTICLES_PER_PASS, parse_feed
from tonevakt.config import Settings
from tonevakt.dates import iso_week
from tonevakt.limits import LIMITS
from tonevakt.models import Score
from tonevakt.reports.dashboard import dashboard_data
from tonevakt.storage import repository as repo
from tonevakt.storage.db import database

RSS = "application/rss+xml"


def item(
    guid: str, title: str, link: str = "", description: str = "Om Helseplattformen.", date: str = ""
) -> str:
    link = link or f"/sak/{guid}"
    pub = f"<pubDate>{date}</pubDate>" if date else ""
    return (
        f"<item><guid>{guid}</guid><title>{title}</title><link>{link}</link>"
        f"<description>{description}</description>{pub}</item>"
    )


def rss(*items: str, head: str = "", encoding: str = "utf-8") -> str:
    return (
        f'<?xml version="1.0" encoding="{encoding}"?>{head}<rss version="2.0"><channel><title>Testavis</title>'
        f"{''.join(items)}</channel></rss>"
    )


def settings_for(make_settings: Callable[..., Settings], url: str, **extra: Any) -> Settings:
    source = {
        "id": "avis",
        "kind": "rss",
        "voice": "media",
        "url": url,
        "respect_robots": False,
        "full_text": "never",
        **extra,
    }
    return make_settings(sources=[source])


def stored(
    settings: Settings,
    sql: str = "SELECT id, title, lead, text, published_at, published_estimated, "
    "extra FROM documents ORDER BY id",
) -> list[dict[str, Any]]:
    con = duckdb.connect(str(settings.db_path), read_only=True)
    try:
        cur = con.execute(sql)
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
    finally:
        con.close()


def health(settings: Settings) -> dict[str, Any]:
    return stored(
        settings, "SELECT last_status, last_error, consecutive_failures FROM sources WHERE id = 'avis'"
    )[0]


def last_fetch_reason(settings: Settings) -> str:
    return stored(settings, "SELECT reason FROM fetch_log ORDER BY started_at DESC LIMIT 1")[0]["reason"]


# -- malformed XML --------------------------------------------------------------------------------------------


def test_feed_cut_off_mid_item_keeps_what_came_before(
    local_server: LocalServer, make_settings: Callable[..., Settings]
) -> None:
    whole = rss(
        item("1", "Helseplattformen: første sak"),
        item("2", "Helseplattformen: andre sak"),
        item("3", "Helseplattformen: tredje sak"),
    )
    cut = whole[: whole.index("<guid>3</guid>") + 20]  # the connection died in the third item
    url = local_server.add("/rss.xml", Route(body=cut, content_type=RSS))
    settings = settings_for(make_settings, url)
    summary = pipeline.collect(settings)
    assert summary.sources_ok == 1 and summary.documents_new >= 2
    titles = [d["title"] for d in stored(settings)]
    assert "Helseplattformen: første sak" in titles and "Helseplattformen: andre sak" in titles
    assert "malformed feed" in last_fetch_reason(settings) and "recovered" in last_fetch_reason(settings)
    # The complete feed later: the rest arrives, nothing is stored twice.
    local_server.add("/rss.xml", Route(body=whole, content_type=RSS))
    pipeline.collect(settings, force=True)
    titles = [d["title"] for d in stored(settings)]
    assert sorted(titles) == sorted(set(titles)) and len(titles) == 3


# -- entity expansion and external entities -------------------------------------------------------------------

LAUGHS = (
    '<!DOCTYPE rss [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10)
    )
    + "]>"
)


def test_billion_laughs_is_not_expanded() -> None:
    body = rss(item("1", "Helseplattformen &lol9;"), head=LAUGHS).encode()
    assert body.count(b"<!ENTITY") == 10  # 10^9 "lol"s if expanded: 3 GB
    tracemalloc.start()
    try:
        parsed = parse_feed(body, {"content-type": RSS}, "http://127.0.0.1/rss.xml")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 30_000_000, peak  # 10^9 "lol"s would be 3 GB
    assert not parsed.entries  # refused unread, as defusedxml refuses any entity declaration
    assert parsed.error is not None and "declares its own XML entities (lol, lol1, " in parsed.error


def test_external_entities_are_never_resolved(
    local_server: LocalServer, make_settings: Callable[..., Settings]
) -> None:
    secret_url = local_server.add("/hemmelig.txt", Route(body="HEMMELIG-INNHOLD"))
    head = f'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd"><!ENTITY net SYSTEM "{secret_url}">]>'
    body = rss(item("1", "Helseplattformen &xxe; og &net;", description="Lekker &xxe; &net; noe?"), head=head)
    url = local_server.add("/rss.xml", Route(body=body, content_type=RSS))
    settings = settings_for(make_settings, url)
    summary = pipeline.collect(settings)
    assert summary.sources_failed == 1 and summary.documents_new == 0  # refused: it declares entities
    assert "declares its own XML entities (xxe, net)" in health(settings)["last_error"]
    con = duckdb.connect(str(settings.db_path), read_only=True)
    try:
        everything = json.dumps(con.execute("SELECT * FROM sources, fetch_log").fetchall(), default=str)
    finally:
        con.close()
    assert "root:" not in everything and "/bin/" not in everything and "HEMMELIG" not in everything
    assert local_server.hits("/hemmelig.txt") == 0
    assert Path(settings.db_path).read_bytes().find(b"root:x:0:0") == -1


# -- encodings ------------------------------------------------------------------------------------------------

TITLE = "Helseplattformen får kritikk på St. Olavs – «æøå ÆØÅ»"


@pytest.mark.parametrize(
    ("declared", "http_charset", "encode_as"),
    [
        ("iso-8859-1", "utf-8", "latin-1"),  # HTTP says UTF-8, the bytes and the XML say Latin-1
        ("utf-8", "utf-8", "latin-1"),  # both say UTF-8, the bytes are Latin-1
        ("iso-8859-1", None, "utf-8"),  # the XML says Latin-1, the bytes are UTF-8
        ("utf-8", "iso-8859-1", "utf-8"),  # HTTP says Latin-1, the bytes are UTF-8
        ("windows-1252", None, "cp1252"),
    ],
)
def test_mislabelled_charsets_still_give_norwegian_letters(
    declared: str, http_charset: str | None, encode_as: str
) -> None:
    title = TITLE if encode_as != "latin-1" else TITLE.replace("–", "-")
    body = (
        rss(item("1", "TITLE"), encoding=declared).encode("ascii").replace(b"TITLE", title.encode(encode_as))
    )
    ctype = RSS + (f"; charset={http_charset}" if http_charset else "")
    parsed = parse_feed(body, {"content-type": ctype}, "http://127.0.0.1/rss.xml")
    assert [e.title for e in parsed.entries] == [title]


def test_invalid_utf8_is_stored_without_breaking_the_batch(
    local_server: LocalServer, make_settings: Callable[..., Settings]
) -> None:
    body = rss(item("1", "TITLE"), item("2", "Helseplattformen: en helt vanlig sak")).encode()
    body = body.replace(b"TITLE", b"Helseplattformen \xff\xfe\xc3 ugyldig \xe5 UTF-8 \xed\xa0\x80")
    url = local_server.add("/rss.xml", Route(body=body, content_type=RSS + "; charset=utf-8"))
    settings = settings_for(make_settings, url)
    summary = pipeline.collect(settings)
    assert summary.sources_ok == 1 and summary.documents_new == 2
    titles = [d["title"] for d in stored(settings)]
    assert "Helseplattformen: en helt vanlig sak" in titles
    broken = next(t for t in titles if "ugyldig" in t)
    assert broken.startswith("Helseplattformen ") and "UTF-8" in broken
    assert "character encoding" in last_fetch_reason(settings)


# -- empty and huge feeds -------------------------------------------------------------------------------------


def test_empty_feed_is_a_success_with_nothing_new(
    local_server: LocalServer, make_settings: Callable[..., Settings]
) -> None:
    url = local_server.add("/rss.xml", Route(body=rss(), content_type=RSS))
    settings = settings_for(make_settings, url)
    summary = pipeline.collect(settings)
    assert summary.sources_ok == 1 and summary.documents_new == 0
    assert health(settings)["last_status"] == "ok" and stored(settings) == []
    local_server.add("/rss.xml", Route(body=b"", content_type=RSS))  # an empty body is not a feed
    summary = pipeline.collect(settings, force=True)
    assert summary.sources_failed == 1
    assert health(settings)["last_error"] == "the server sent an empty body, not a feed"


@pytest.mark.slow
def test_10000_item_feed_is_stored_once_with_bounded_article_fetches(
    local_server: LocalServer, make_settings: Callable[..., Settings]
) -> None:
    n = 10_000
    body = rss(
        *(
            item(f"id-{i}", f"Sak {i}: Helseplattformen og drift", date="Wed, 18 Nov 2026 10:00:00 GMT")
            for i in range(n)
        )
    )
    assert len(body) > 2_000_000
    url = local_server.add("/rss.xml", Route(body=body, content_type=RSS))
    settings = settings_for(make_settings, url, full_text="relevant")  # every item is relevant
    summary = pipeline.collect(settings)
    assert summary.sources_ok == 1 and summary.documents_new == n, summary.line()
    articles = sum(1 for r in local_server.requests if r.path.startswith("/sak/"))
    assert articles == MAX_ARTICLES_PER_PASS  # the rest keep the feed's text; no flood of requests
    count = stored(settings, "SELECT count(*) AS n, count(DISTINCT id) AS d FROM documents")[0]
    assert count == {"n": n, "d": n}
    again = pipeline.collect(settings, force=True)  # unchanged body hash: not even parsed again
    assert again.documents_new == 0 and stored(settings, "SELECT count(*) AS n FROM documents")[0]["n"] == n


# -- absurd dates ---------------------------------------------------------------------------------------------


def test_absurd_and_future_dates_are_clamped_and_flagged_and_the_weekly_view_holds(
    local_server: LocalServer, make_settings: Callable[..., Settings]
) -> None:
    body = rss(
        item("gammel", "Helseplattformen i 1900", date="Mon, 01 Jan 1900 12:00:00 GMT"),
        item("fremtid", "Helseplattformen i 2999", date="Tue, 01 Jan 2999 12:00:00 GMT"),
        item("umulig", "Helseplattformen 31. februar", date="Tue, 31 Feb 2026 12:00:00 GMT"),
        item("epoke", "Helseplattformen i 1970", date="Thu, 01 Jan 1970 00:00:00 GMT"),
        item(
            "normal", "Helseplattformen i dag", date=datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
        ),
    )
    url = local_server.add("/rss.xml", Route(body=body, content_type=RSS))
    settings = settings_for(make_settings, url)
    before = datetime.now(UTC)
    summary = pipeline.collect(settings)
    after = datetime.now(UTC)
    assert summary.sources_ok == 1 and summary.documents_new == 5
    docs = {d["title"]: d for d in stored(settings)}
    for title, original in (
        ("Helseplattformen i 1900", "1900-01-01"),
        ("Helseplattformen i 2999", "2999-01-01"),
        ("Helseplattformen i 1970", "1970-01-01"),
    ):
        d = docs[title]
        assert before - timedelta(seconds=5) <= d["published_at"] <= after + timedelta(seconds=5), d
        assert d["published_estimated"] is True
        assert json.loads(d["extra"])["date_out_of_range"].startswith(original)
    assert docs["Helseplattformen 31. februar"]["published_estimated"] is True  # unparseable: collection time
    assert docs["Helseplattformen i dag"]["published_estimated"] is False
    # The weekly view and the dashboard: only real weeks, ending with the current one.
    with database(settings.db_path) as db:
        repo.register_model(db, "test-modell", "embedded")
        repo.save_scores(
            db, [Score(d["id"], "test-modell", 0.5, "positive", 0.1, 0.3, 0.6) for d in docs.values()]
        )
        weeks = {r[0] for r in db.fetchall("SELECT DISTINCT week FROM weekly_tone")}
        board = dashboard_data(db, settings)
    this_week = iso_week(after)
    assert weeks <= {this_week, iso_week(before)}
    assert board["weeks"][0] >= dates.shift_week(this_week, -1) and board["weeks"][-1] >= this_week
    assert len(board["weeks"]) <= 3 and {board["weeks"][s["week"]] for s in board["stories"]} == weeks


# -- megabyte titles ------------------------------------------------------------------------------------------


def _fnr() -> str:
    """A valid-looking Norwegian identity number (both mod-11 check digits), born 17 March 1985."""
    first9 = "170385123"
    w1, w2 = (3, 7, 6, 1, 8, 9, 4, 5, 2), (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)
    for tail in range(100):
        digits = first9[:6] + f"{int(first9[6:]) + tail:03d}"
        k1 = (11 - sum(a * int(b) for a, b in zip(w1, digits, strict=True)) % 11) % 11
        k2 = (11 - sum(a * int(b) for a, b in zip(w2, digits + str(k1 % 10), strict=True)) % 11) % 11
        if k1 < 10 and k2 < 10:
            return digits + str(k1) + str(k2)
    raise AssertionError("no identity number found")


def test_megabyte_title_and_text_are_cut_with_a_note_and_still_redacted(
    local_server: LocalServer, make_settings: Callable[..., Settings]
) -> None:
    fnr = _fnr()
    words = "Helseplattformen " + " ".join(f"ord{i}" for i in range(150_000))
    title = f"Pasient {fnr} skriver: {words}"
    assert len(title) > 1_000_000
    text = f"Ring meg på 922 33 444. {words}"
    url = local_server.add(
        "/rss.xml", Route(body=rss(item("stor", title, description=text)), content_type=RSS)
    )
    settings = settings_for(make_settings, url)
    summary = pipeline.collect(settings)
    assert summary.sources_ok == 1 and summary.documents_new == 1, summary.line()
    (doc,) = stored(settings)
    assert len(doc["title"]) <= LIMITS["title"] and doc["title"].endswith(" …")
    assert len(doc["text"]) <= LIMITS["text"] and doc["text"].endswith(" …")
    assert len(doc["lead"]) <= LIMITS["lead"]
    notes = json.loads(doc["extra"])["truncated"]
    assert notes["title"] == len(title) and notes["text"] == len(text)
    assert fnr not in doc["title"] and doc["title"].startswith("Pasient [fødselsnummer] skriver:")
    assert "922 33 444" not in doc["text"] and "[telefon]" in doc["text"]
