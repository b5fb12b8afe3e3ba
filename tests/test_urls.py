"""Canonical URLs: one story, one URL, one document id."""

from __future__ import annotations

import pytest

from tonevakt.models import Document, document_id
from tonevakt.urls import canonical_url

BASE = "https://adressa.no/nyheter/trondelag/i/abc123/helseplattformen-far-kritikk"


@pytest.mark.parametrize(
    "variant",
    [
        BASE,
        BASE + "/",
        BASE + "?utm_source=rss&utm_medium=feed&utm_campaign=nyheter",
        BASE + "?fbclid=IwAR0abc",
        BASE + "?gclid=xyz&ref=forsiden",
        BASE + "#kommentarer",
        "http://www.adressa.no/nyheter/trondelag/i/abc123/helseplattformen-far-kritikk",
        "HTTPS://WWW.ADRESSA.NO/nyheter/trondelag/i/abc123/helseplattformen-far-kritikk",
        "https://adressa.no:443/nyheter/trondelag/i/abc123/helseplattformen-far-kritikk",
        "https://adressa.no.//nyheter//trondelag/i/abc123/helseplattformen-far-kritikk",
        "  " + BASE + "?mc_cid=1&mc_eid=2&_ga=3&pk_campaign=x&mtm_source=y  ",
    ],
)
def test_variants_are_one_url(variant: str) -> None:
    assert canonical_url(variant) == BASE


def test_meaningful_parts_are_kept() -> None:
    assert (
        canonical_url("https://nrk.no/sok?q=helseplattformen&page=2")
        == "https://nrk.no/sok?page=2&q=helseplattformen"
    )
    assert canonical_url("https://nrk.no/sok?page=2&q=helseplattformen") == canonical_url(
        "https://nrk.no/sok?q=helseplattformen&page=2&utm_source=x"
    )
    assert canonical_url("http://127.0.0.1:8123/feed.xml") == "https://127.0.0.1:8123/feed.xml"
    assert canonical_url("https://nrk.no/") == "https://nrk.no/"
    assert canonical_url("https://nrk.no") == "https://nrk.no/"
    assert canonical_url("https://nrk.no/a/?ref_src=twsrc") == "https://nrk.no/a"
    assert canonical_url("https://nrk.no/a?id=5&flag") == "https://nrk.no/a?flag=&id=5"
    assert canonical_url("https://nrk.no/A") != canonical_url("https://nrk.no/a")  # paths are case-sensitive


def test_encoding_and_international_hosts() -> None:
    assert canonical_url("https://sykepleien.no/2026/11/%c3%b8ya") == canonical_url(
        "https://sykepleien.no/2026/11/øya"
    )
    assert canonical_url("https://www.trøndelag.no/helse") == canonical_url(
        "https://xn--trndelag-64a.no/helse"
    )


def test_same_canonical_url_same_document_id() -> None:
    from_feed = Document(
        source_id="adressa",
        voice="media",
        title="Helseplattformen får kritikk",
        text="...",
        url=BASE + "?utm_source=rss",
    )
    from_search = Document(
        source_id="news-search",
        voice="media",
        title="Helseplattformen får kritikk - Adresseavisen",
        text="annen ingress",
        url="http://www.adressa.no/nyheter/trondelag/i/abc123/helseplattformen-far-kritikk/?fbclid=1",
    )
    assert from_feed.id == from_search.id == document_id(BASE, "x", "", "")
    other = Document(source_id="adressa", voice="media", title="t", text="x", url=BASE + "-2")
    assert other.id != from_feed.id
    no_url = Document(source_id="adressa", voice="media", title="Tittel", text="Tekst")
    assert no_url.id.startswith("c") and from_feed.id.startswith("u")
