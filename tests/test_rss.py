"""RSS/Atom and news-search collectors against fixture feeds served on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from tests.support.localserver import LocalServer, Route, mount_fixture_site
from tests.support.paths import FIXTURES
from tonevakt.collectors.fulltext import extract_article, paywall_marker
from tonevakt.collectors.news_search import collect_news_search, split_publisher
from tonevakt.collectors.rss import collect_rss, html_to_text, parse_feed
from tonevakt.config import Settings
from tonevakt.models import FetchStatus, Source
from tonevakt.nlp.enrich import Enricher
from tonevakt.urls import canonical_url


@pytest.fixture
def site() -> Iterator[tuple[LocalServer, dict[str, str]]]:
    with LocalServer() as srv:
        yield srv, mount_fixture_site(srv)


@pytest.fixture
def is_candidate(settings: Settings) -> Callable[[str], bool]:
    return Enricher(settings).is_candidate  # the real relevance query of the test config


def rss_source(url: str, **kw: object) -> Source:
    base: dict[str, object] = {"id": "feed", "kind": "rss", "voice": "media", "name": "Testavisa", "url": url}
    base.update(kw)
    return Source(**base)  # type: ignore[arg-type]


def test_utf8_feed_with_relative_links_dates_and_full_text(site, client, is_candidate) -> None:
    srv, urls = site
    out = collect_rss(
        rss_source(urls["nrk-trondelag"], region="trondelag"), client, None, is_candidate=is_candidate
    )
    assert not out.failed and not out.warnings
    assert [d.title for d in out.documents][:2] == [
        "Helseplattformen: Ansatte ved St. Olavs hospital melder om nye feil i legemiddellistene",
        "Trondheim kommune vil ha erstatning for ekstrakostnader etter Helseplattformen",
    ]
    first, second = out.documents[0], out.documents[1]
    assert first.url == srv.url(
        "/trondelag/ansatte-ved-st.-olavs-melder-om-nye-feil-i-helseplattformen-1.17012345"
    )
    assert first.published_at == datetime(2026, 11, 23, 6, 12, tzinfo=UTC) and not first.published_estimated
    assert first.region == "trondelag" and first.outlet == "Testavisa" and first.author == "Kari Nordbø"
    # Candidate with an article page: full text extracted (without the comment footer).
    assert (
        first.extra.get("full_text") is True
        and "143 avvik" in first.text
        and "Kommentarfeltet" not in first.text
    )
    assert first.lead.startswith("Sykepleiere på Øya")
    # Candidate whose page is gone: the lead is kept and the reason noted.
    assert (
        second.text
        == second.lead
        == "Kommunen har brukt over 200 millioner kroner på ekstra bemanning siden innføringen."
    )
    assert second.extra["full_text_error"] == "HTTP 404 Not Found"
    # Not candidates: no article fetch at all.
    assert srv.hits("/trondelag/rekordmange-sokte-ntnu-1.17012401") == 0
    primary = out.fetches[0]
    assert primary.primary and primary.items == 4 and primary.etag == '"nrk-trd-1"' and primary.body_hash
    assert all(not f.primary for f in out.fetches[1:])


@pytest.mark.parametrize("name", ["sunnmorsposten", "romsdals-budstikke", "dagens-medisin"])
def test_iso_8859_1_feeds_declared_or_not(site, client, name: str) -> None:
    _, urls = site
    out = collect_rss(rss_source(urls[name], full_text="never"), client, None, is_candidate=lambda t: False)
    assert not out.failed and len(out.documents) == 2
    text = " ".join(d.title + " " + d.lead for d in out.documents)
    assert any(ch in text for ch in "æøåÆØÅ"), text
    assert "Ã" not in text and "\ufffd" not in text  # no mojibake
    if name == "dagens-medisin":  # no charset anywhere: decoded as Windows-1252, with a warning
        assert out.warnings and "character encoding" in out.warnings[0]


def test_atom_feed(site, client) -> None:
    _, urls = site
    out = collect_rss(
        rss_source(urls["sykepleien"], full_text="never"), client, None, is_candidate=lambda t: True
    )
    d = out.documents[0]
    assert d.title.startswith("NSF: – Sykepleierne i Trøndelag") and d.author == "Ola Sæther"
    assert d.lead == "Fylkesleder i NSF Trøndelag ber om flere hender og bedre opplæring i journalsystemet."
    assert d.published_at == datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
    assert out.documents[1].published_at == datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # only <updated>


def test_duplicate_guids_missing_dates_entity_and_relative_links_gzip(site, client) -> None:
    srv, urls = site
    before = datetime.now(UTC)
    out = collect_rss(rss_source(urls["digi"], full_text="never"), client, None, is_candidate=lambda t: True)
    assert len(out.documents) == 3  # four items, one repeats an item (same GUID, same canonical link)
    assert out.warnings == [
        "2 entries share a GUID with another entry ('digi-551122'): told apart by link, or title and date, "
        "instead",
        "1 entries repeat an entry already in the feed: kept once",
    ]
    epic, relative, dated = out.documents
    assert epic.url == srv.url("/digi/artikler/epic-raskere-innlogging/551122?utm_source=rss&utm_medium=feed")
    assert canonical_url(epic.url).endswith("/digi/artikler/epic-raskere-innlogging/551122")
    assert relative.url == srv.url("/feeds/artikler/sikre-hjemmenettet/551140")
    assert epic.published_estimated and epic.published_at >= before  # no date: collection time, flagged
    assert not dated.published_estimated


def test_bozo_feed_keeps_recovered_entries_with_warning(site, client) -> None:
    _, urls = site
    out = collect_rss(
        rss_source(urls["helse-midt-norge"], full_text="never"), client, None, is_candidate=lambda t: False
    )
    assert not out.failed
    assert [d.title for d in out.documents][
        0
    ] == "Helseplattformen: Styret godkjente ny plan for forbedring & stabil drift"
    assert out.warnings and out.warnings[0].startswith("malformed feed (")
    assert "recovered" in out.fetches[0].reason


def test_html_instead_of_feed_is_a_soft_error(site, client) -> None:
    srv, urls = site
    out = collect_rss(rss_source(urls["html-instead"]), client, None, is_candidate=lambda t: True)
    assert out.failed and not out.documents
    assert (
        out.reason
        == f"the server sent an HTML page, not a feed (the page points to a feed at {srv.url('/rss/siste-nytt.xml')})"
    )
    assert out.fetches[0].status is FetchStatus.SOFT_ERROR and out.fetches[0].body_hash is None


@pytest.mark.parametrize(
    ("name", "status", "reason"),
    [
        ("gone", FetchStatus.HARD_ERROR, "HTTP 410 Gone"),
        ("missing", FetchStatus.HARD_ERROR, "HTTP 404 Not Found"),
        ("server-error", FetchStatus.TEMPORARY, "HTTP 500 Internal Server Error"),
        ("rate-limited", FetchStatus.TEMPORARY, "HTTP 429 Too Many Requests, Retry-After 3600s"),
        ("oversized", FetchStatus.SOFT_ERROR, "body larger than 10,000,000 bytes"),
        ("gzip-bomb", FetchStatus.SOFT_ERROR, "body larger than 10,000,000 bytes after decompression"),
    ],
)
def test_broken_feeds_have_clear_reasons(site, client, name: str, status: FetchStatus, reason: str) -> None:
    _, urls = site
    out = collect_rss(rss_source(urls[name]), client, None, is_candidate=lambda t: True)
    assert out.failed and out.fetches[0].status is status and out.reason == reason


def test_conditional_get_and_unchanged_hash_extract_nothing(site, client, is_candidate) -> None:
    srv, urls = site
    first = collect_rss(rss_source(urls["nrk-trondelag"]), client, None, is_candidate=is_candidate)
    row = {"etag": first.fetches[0].etag, "body_hash": first.fetches[0].body_hash}
    n = len(srv.requests)
    again = collect_rss(rss_source(urls["nrk-trondelag"]), client, row, is_candidate=is_candidate)
    assert again.fetches[0].status is FetchStatus.NOT_MODIFIED and not again.documents
    assert len(srv.requests) == n + 1  # only the feed itself
    # A feed without validators: the body hash says "unchanged".
    first2 = collect_rss(rss_source(urls["adresseavisen"]), client, None, is_candidate=is_candidate)
    again2 = collect_rss(
        rss_source(urls["adresseavisen"]),
        client,
        {"body_hash": first2.fetches[0].body_hash},
        is_candidate=is_candidate,
    )
    assert again2.fetches[0].status is FetchStatus.NOT_MODIFIED and not again2.documents


def test_known_urls_are_not_extracted_again(site, client, is_candidate) -> None:
    srv, urls = site
    first = collect_rss(rss_source(urls["nrk-trondelag"]), client, None, is_candidate=is_candidate)
    known = {canonical_url(d.url) for d in first.documents}
    page = "/trondelag/ansatte-ved-st.-olavs-melder-om-nye-feil-i-helseplattformen-1.17012345"
    assert srv.hits(page) == 1
    again = collect_rss(
        rss_source(urls["nrk-trondelag"]), client, None, is_candidate=is_candidate, known_urls=known
    )
    assert again.documents == [] and srv.hits(page) == 1


def test_paywalled_source_and_paywalled_page_keep_the_lead(site, client, is_candidate) -> None:
    _, urls = site
    src = rss_source(urls["adresseavisen"], paywalled=True, full_text="relevant")
    out = collect_rss(src, client, None, is_candidate=is_candidate)
    doc = out.documents[0]
    assert doc.paywalled and doc.text == doc.lead
    assert doc.lead.startswith("Overlegene ved medisinsk klinikk") and "paywall" in doc.extra
    assert all(d.paywalled for d in out.documents)  # the source is marked paywalled


def test_paywall_markers_and_truncation() -> None:
    page = (FIXTURES / "pages" / "adresseavisen_paywalled_article.html").read_text(encoding="utf-8")
    assert paywall_marker(page) is not None
    free = (FIXTURES / "pages" / "nrk_article_legemiddellister.html").read_bytes()
    assert paywall_marker(free.decode()) is None
    art = extract_article(
        free,
        "http://127.0.0.1/a",
        {"content-type": "text/html; charset=utf-8"},
        lead="Sykepleiere på Øya sier de fortsatt må dobbeltsjekke medisinlister for hånd.",
    )
    assert art is not None and not art.paywalled and art.author == "Kari Nordbø"
    assert art.published_at == datetime(2026, 11, 23, 6, 12, tzinfo=UTC)
    teaser = b"<html><body><article><h1>Tittel</h1><p>Kort ingress om Helseplattformen her.</p></article></body></html>"
    short = extract_article(teaser, "http://127.0.0.1/b", lead="Kort ingress om Helseplattformen her.")
    assert short is not None and short.paywalled and "not longer than" in short.paywall_reason


def test_full_text_never_and_always(site, client) -> None:
    srv, urls = site
    page = "/trondelag/ansatte-ved-st.-olavs-melder-om-nye-feil-i-helseplattformen-1.17012345"
    collect_rss(
        rss_source(urls["nrk-trondelag"], full_text="never"), client, None, is_candidate=lambda t: True
    )
    assert srv.hits(page) == 0
    out = collect_rss(
        rss_source(urls["nrk-trondelag"], full_text="always"), client, None, is_candidate=lambda t: False
    )
    assert srv.hits(page) == 1 and len([f for f in out.fetches if not f.primary]) == 4


def test_html_to_text() -> None:
    assert html_to_text("<p>Én &amp; to<br/>tre</p><p>fire</p>") == "Én & to\ntre\nfire"
    assert html_to_text(None) == ""


def test_parse_feed_empty_body_and_non_feed_xml() -> None:
    assert parse_feed(b"", {}, "http://127.0.0.1/x").error is not None
    res = parse_feed(
        b"<?xml version='1.0'?><config><a>1</a></config>",
        {"content-type": "application/xml"},
        "http://127.0.0.1/x",
    )
    assert res.error and not res.entries


def test_split_publisher() -> None:
    assert split_publisher("Kommunene vil ut av Helseplattformen - Trønder-Avisa", "Trønder-Avisa") == (
        "Kommunene vil ut av Helseplattformen",
        "Trønder-Avisa",
    )
    assert split_publisher("Ny rapport om HelsaMi - NRK", None) == ("Ny rapport om HelsaMi", "NRK")
    assert split_publisher("Helse - og omsorg i endring", "VG") == ("Helse - og omsorg i endring", "VG")


def test_news_search_publisher_title_and_redirects(site, client, is_candidate) -> None:
    srv, urls = site
    src = Source(
        id="news-search", kind="news_search", voice="media", name="Nyhetssøk", url=urls["news-search"]
    )
    out = collect_news_search(src, client, None, is_candidate=is_candidate)
    assert not out.failed
    by_outlet = {d.outlet: d for d in out.documents}
    assert set(by_outlet) == {"Trønder-Avisa", "NRK", "Adresseavisen", "Dagens Perspektiv"}
    ta = by_outlet["Trønder-Avisa"]
    assert ta.title == "Kommunene vil ut av Helseplattformen"
    assert ta.url == srv.url("/ta/nyheter/kommunene-vil-ut-av-helseplattformen")  # the publisher's URL
    assert ta.extra["search_link"].startswith(srv.url("/rss/articles/", host="localhost"))
    assert ta.extra.get("full_text") is True and "Steinkjer" in ta.text and ta.author == "Jon Olav Stavrum"
    # Same story as the publisher's own feed: same URL, hence the same document id.
    adressa = collect_rss(
        rss_source(urls["adresseavisen"], full_text="never"), client, None, is_candidate=is_candidate
    )
    assert by_outlet["Adresseavisen"].id == adressa.documents[0].id
    # A redirect that leads to a missing page still gives the publisher's URL.
    assert by_outlet["NRK"].url == srv.url("/nrk/helsami-pasientene-leser-journalen")
    # A link the search service cannot resolve: kept, and the document says so.
    dp = by_outlet["Dagens Perspektiv"]
    assert dp.url.startswith(srv.url("/rss/articles/", host="localhost"))
    assert dp.extra["search_link_unresolved"] == "HTTP 404 Not Found"


def test_news_search_skips_known_search_links(site, client, is_candidate) -> None:
    srv, urls = site
    src = Source(
        id="news-search", kind="news_search", voice="media", name="Nyhetssøk", url=urls["news-search"]
    )
    first = collect_news_search(src, client, None, is_candidate=is_candidate)
    known = {canonical_url(d.url) for d in first.documents} | {
        d.extra["search_link"] for d in first.documents if "search_link" in d.extra
    }
    n = len(srv.requests)
    again = collect_news_search(src, client, None, is_candidate=is_candidate, known_urls=known)
    assert again.documents == [] and len(srv.requests) == n + 1


def test_feed_on_a_route_changed_at_runtime(client) -> None:
    with LocalServer() as srv:
        url = srv.add_file("/f.xml", "feeds/nrk_more_og_romsdal.xml", content_type="application/rss+xml")
        assert (
            len(collect_rss(rss_source(url, full_text="never"), client, None, is_candidate=bool).documents)
            == 3
        )
        srv.add("/f.xml", Route(status=503, headers={"Retry-After": "999"}))
        out = collect_rss(rss_source(url), client, None, is_candidate=bool)
        assert out.failed and out.fetches[0].status is FetchStatus.TEMPORARY
