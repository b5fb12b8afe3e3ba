"""App Store reviews collector against a real local server serving feed pages in Apple's JSON shape."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

import duckdb
import pytest

from tests.support.localserver import LocalServer, Route
from tests.support.paths import FIXTURES
from tonevakt.collectors.appstore import RETRY_ACCEPT, collect_appstore, parse_reviews, review_url
from tonevakt.collectors.http import HttpClient
from tonevakt.config import Settings
from tonevakt.models import FetchStatus, Source
from tonevakt.pipeline import collect

APP = "1512345678"
PAGE = "/{country}/rss/customerreviews/page={page}/id={app_id}/sortby=mostrecent/json"
JSON = "application/json; charset=utf-8"
PAGE1 = (FIXTURES / "appstore" / "page1.json").read_bytes()
PAGE2 = (FIXTURES / "appstore" / "page2.json").read_bytes()
EMPTY = (FIXTURES / "appstore" / "empty.json").read_bytes()


def _path(page: int, country: str = "no") -> str:
    return PAGE.format(country=country, page=page, app_id=APP)


@pytest.fixture
def client(settings: Settings) -> Iterator[HttpClient]:
    with HttpClient(settings.http) as c:
        yield c


@pytest.fixture
def source(local_server: LocalServer) -> Source:
    return Source(
        id="helsami-ios",
        kind="appstore",
        voice="patient",
        app_id=APP,
        country="no",
        url=local_server.url(PAGE),
        max_pages=10,
        region="trondelag",
    )


def _serve_three_pages(srv: LocalServer) -> None:
    srv.add(_path(1), Route(body=PAGE1, content_type=JSON))
    srv.add(_path(2), Route(body=PAGE2, content_type=JSON))
    srv.add(_path(3), Route(body=EMPTY, content_type=JSON))


def test_every_page_until_an_empty_one(local_server: LocalServer, client: HttpClient, source: Source) -> None:
    _serve_three_pages(local_server)
    out = collect_appstore(source, client, None)
    assert not out.failed
    assert [local_server.hits(_path(p)) for p in (1, 2, 3, 4)] == [1, 1, 1, 0]
    docs = out.documents
    assert len(docs) == 5  # 4 reviews on page 1 (the app entry skipped) + the single-object page 2
    assert {d.kind for d in docs} == {"review"} and {d.voice for d in docs} == {"patient"}
    first = docs[0]
    assert first.title == "Endelig oversikt!"
    assert first.text.startswith("Jeg får svar fra fastlegen samme dag")
    assert first.author == "Trønderjente"
    assert first.rating == 5 and first.app_version == "3.12.1"
    assert first.published_at is not None and first.published_at.utcoffset() is not None
    assert first.published_at.isoformat().startswith("2026-11-23T15:14:02")  # -07:00 → UTC
    assert first.url == f"https://apps.apple.com/no/review?id={APP}&review=11000000001"
    assert first.extra["review_id"] == "11000000001" and first.extra["vote_count"] == 3
    assert first.region == "trondelag"
    assert [d.rating for d in docs] == [5, 2, 1, 4, 3]
    assert docs[-1].author == "Ola fra Ålesund"
    assert len({d.id for d in docs}) == 5
    primary = [f for f in out.fetches if f.primary]
    assert len(primary) == 1 and primary[0].status is FetchStatus.OK and primary[0].items == 4


def test_max_pages(local_server: LocalServer, client: HttpClient, source: Source) -> None:
    _serve_three_pages(local_server)
    out = collect_appstore(replace(source, max_pages=1), client, None)
    assert len(out.documents) == 4
    assert local_server.hits(_path(2)) == 0


def test_empty_first_page_is_retried_with_other_headers(
    local_server: LocalServer, client: HttpClient, source: Source
) -> None:
    local_server.add(
        _path(1), Route(sequence=[Route(body=EMPTY, content_type=JSON), Route(body=PAGE1, content_type=JSON)])
    )
    local_server.add(_path(2), Route(body=EMPTY, content_type=JSON))
    out = collect_appstore(source, client, None)
    assert not out.failed
    assert len(out.documents) == 4
    first, second = [r for r in local_server.requests if r.path == _path(1)]
    assert first.headers["accept"] != second.headers["accept"] == RETRY_ACCEPT
    assert first.headers["user-agent"] != second.headers["user-agent"]
    assert "Tonevakt" in second.headers["user-agent"]  # still honest about who asks


def test_empty_twice_is_a_soft_error(local_server: LocalServer, client: HttpClient, source: Source) -> None:
    local_server.add(_path(1), Route(body=EMPTY, content_type=JSON))
    out = collect_appstore(source, client, None)
    assert out.failed and out.documents == []
    assert local_server.hits(_path(1)) == 2
    assert "empty reviews feed" in out.reason


def test_html_instead_of_json(local_server: LocalServer, client: HttpClient, source: Source) -> None:
    local_server.add(_path(1), Route(body="<html><body>Vedlikehold</body></html>", content_type="text/html"))
    out = collect_appstore(source, client, None)
    assert out.failed and "not JSON" in out.reason
    assert out.documents == []


def test_server_error_on_page_one_and_on_a_later_page(
    local_server: LocalServer, client: HttpClient, source: Source
) -> None:
    local_server.add(_path(1), Route(status=500, body="feil"))
    out = collect_appstore(source, client, None)
    assert out.failed and out.fetches[0].status is FetchStatus.TEMPORARY and out.fetches[0].http_status == 500

    local_server.add(_path(1), Route(body=PAGE1, content_type=JSON))
    local_server.add(_path(2), Route(status=503, body="opptatt"))
    out = collect_appstore(source, client, None)
    assert not out.failed  # page 1 is the source's health; later pages are warnings
    assert len(out.documents) == 4
    assert any("page 2" in w for w in out.warnings)


def test_unchanged_first_page_is_not_modified(
    local_server: LocalServer, client: HttpClient, source: Source
) -> None:
    _serve_three_pages(local_server)
    first = collect_appstore(source, client, None)
    state = {"body_hash": first.fetches[0].body_hash}
    again = collect_appstore(source, client, state)
    assert again.documents == [] and not again.failed
    assert again.fetches[0].status is FetchStatus.NOT_MODIFIED
    assert local_server.hits(_path(2)) == 1  # not asked again


def test_parse_quirks() -> None:
    reviews, skipped = parse_reviews(PAGE1)
    assert len(reviews) == 4 and skipped == 1
    assert parse_reviews(EMPTY) == ([], 0)
    single, _ = parse_reviews(PAGE2)
    assert [r.review_id for r in single] == ["11000000005"]
    assert review_url("se", "1", "2") == "https://apps.apple.com/se/review?id=1&review=2"


def test_pass_stores_reviews_once_with_personal_data_redacted(
    local_server: LocalServer, make_settings: Callable[..., Settings]
) -> None:
    _serve_three_pages(local_server)
    settings = make_settings(
        sources=[
            {
                "id": "helsami-ios",
                "kind": "appstore",
                "voice": "patient",
                "app_id": APP,
                "url": local_server.url(PAGE),
            }
        ]
    )
    summary = collect(settings)
    assert summary.sources_ok == 1 and summary.documents_new == 5
    # A second (forced) pass finds page 1 unchanged and adds nothing.
    assert collect(settings, force=True).documents_new == 0
    con = duckdb.connect(str(settings.db_path), read_only=True)
    try:
        rows = con.execute(
            "SELECT rating, app_version, kind, text, language, redactions FROM documents "
            "ORDER BY published_at DESC"
        ).fetchall()
    finally:
        con.close()
    assert [r[0] for r in rows] == [5, 2, 1, 4, 3]
    assert rows[0][1] == "3.12.1" and rows[0][2] == "review"
    assert "922 33 444" not in " ".join(r[3] for r in rows)
    assert sum(r[5] for r in rows) == 1
    assert rows[1][4] == "nn" and rows[0][4] == "nb"
