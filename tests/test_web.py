"""Sites without RSS: listing page (and sitemap) → new article links → extracted articles."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests.support.localserver import LocalServer, Route, mount_fixture_site
from tests.support.paths import FIXTURES
from tonevakt.collectors.web import article_candidates, collect_web, listing_links, sitemap_links
from tonevakt.models import FetchStatus, Source
from tonevakt.urls import canonical_url

INCLUDE = r"^http://127\.0\.0\.1:\d+/nyheter/\d{4}/"


@pytest.fixture
def site() -> Iterator[tuple[LocalServer, dict[str, str]]]:
    with LocalServer() as srv:
        yield srv, mount_fixture_site(srv, broken=False)


def union(url: str, **kw: object) -> Source:
    base: dict[str, object] = {
        "id": "legeforeningen",
        "kind": "web",
        "voice": "union",
        "name": "Legeforeningen",
        "url": url,
        "include": INCLUDE,
    }
    base.update(kw)
    return Source(**base)  # type: ignore[arg-type]


def test_listing_to_articles_with_title_date_author(site, client) -> None:
    srv, urls = site
    out = collect_web(union(urls["legeforeningen"]), client, None)
    assert not out.failed
    docs = {d.title: d for d in out.documents}
    assert set(docs) == {
        "Tillitsvalgte krever handling om Helseplattformen",
        "Legeforeningen om statsbudsjettet",
    }
    hp = docs["Tillitsvalgte krever handling om Helseplattformen"]
    assert hp.voice == "union" and hp.kind == "statement" and hp.outlet == "Legeforeningen"
    assert hp.author == "Silje Haugen" and hp.published_at == datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
    assert "sju av ti leger" in hp.text and not hp.published_estimated
    assert hp.url == srv.url("/nyheter/2026/tillitsvalgte-krever-handling-helseplattformen/")
    # The same article linked twice (once with a #fragment) is fetched once; the PDF and other sites never.
    assert srv.hits("/nyheter/2026/tillitsvalgte-krever-handling-helseplattformen/") == 1
    assert srv.hits("/nyheter/2026/rapport-legers-arbeidstid.pdf") == 0
    assert srv.hits("/om-oss/") == 0
    # A listed article that is gone is logged (not primary) and does not fail the source.
    gone = [f for f in out.fetches if f.url.endswith("/finnes-ikke/")]
    assert gone and gone[0].status is FetchStatus.HARD_ERROR and not gone[0].primary
    assert out.fetches[0].primary and out.fetches[0].items == 3


def test_known_articles_are_not_fetched_again(site, client) -> None:
    srv, urls = site
    first = collect_web(union(urls["legeforeningen"]), client, None)
    known = {canonical_url(d.url) for d in first.documents}
    again = collect_web(union(urls["legeforeningen"]), client, None, known_urls=known)
    assert again.documents == []
    assert srv.hits("/nyheter/2026/legeforeningen-om-statsbudsjettet/") == 1


def test_sitemap_index_adds_articles(site, client) -> None:
    srv, urls = site
    srv.add(
        "/sitemap.xml",
        Route(
            content_type="application/xml",
            body=(
                "<?xml version='1.0' encoding='UTF-8'?><sitemapindex xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>"
                f"<sitemap><loc>{srv.url('/sitemap-nyheter.xml')}</loc></sitemap></sitemapindex>"
            ),
        ),
    )
    srv.add(
        "/sitemap-nyheter.xml",
        Route(
            content_type="application/xml",
            body=(
                "<?xml version='1.0' encoding='UTF-8'?><urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>"
                f"<url><loc>{srv.url('/nyheter/2026/eldre-sak-om-helsami/')}</loc><lastmod>2026-10-01</lastmod></url>"
                f"<url><loc>{srv.url('/om-oss/')}</loc></url></urlset>"
            ),
        ),
    )
    srv.add(
        "/nyheter/2026/eldre-sak-om-helsami/",
        Route(
            content_type="text/html; charset=utf-8",
            body=(
                "<html><head><title>Eldre sak om HelsaMi</title>"
                "<meta property='article:published_time' content='2026-10-01T12:00:00+02:00'></head><body><article>"
                "<h1>Eldre sak om HelsaMi</h1><p>Legeforeningen har gått gjennom erfaringene med pasientportalen HelsaMi "
                "og mener at innsyn i journalen er et gode for pasientene, men at legene må få tid til å svare på "
                "meldinger i arbeidstiden.</p></article></body></html>"
            ),
        ),
    )
    out = collect_web(union(urls["legeforeningen"], sitemap=srv.url("/sitemap.xml")), client, None)
    titles = {d.title for d in out.documents}
    assert "Eldre sak om HelsaMi" in titles and len(titles) == 3
    assert srv.hits("/om-oss/") == 0


def test_listing_failure_fails_the_source(client) -> None:
    with LocalServer() as srv:
        url = srv.add("/nyheter/", Route(status=503, body="Vedlikehold"))
        out = collect_web(union(url), client, None)
        assert out.failed and out.reason == "HTTP 503 Service Unavailable"


def test_link_helpers() -> None:
    body = (FIXTURES / "pages" / "legeforeningen_listing.html").read_bytes()
    base = "http://127.0.0.1:8080/nyheter/"
    links = listing_links(body, {"content-type": "text/html; charset=utf-8"}, base)
    assert (
        "http://127.0.0.1:8080/nyheter/2026/legeforeningen-om-statsbudsjettet/" in links
    )  # fragment dropped
    assert not any(u.startswith("mailto:") for u in links)
    src = union(base, include=None)
    cands = article_candidates(links, src, base)  # no include pattern: pages below the listing's path
    assert "http://127.0.0.1:8080/nyheter/2026/tillitsvalgte-krever-handling-helseplattformen/" in cands
    assert not any("facebook" in u or "om-oss" in u or u.endswith(".pdf") for u in cands)
    pages, children = sitemap_links(
        b"<urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>"
        b"<url><loc> http://127.0.0.1/a </loc></url></urlset>"
    )
    assert pages == ["http://127.0.0.1/a"] and children == []
    assert sitemap_links(b"not xml at all") == ([], [])
