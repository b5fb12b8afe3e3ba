"""Article text from HTML bytes we fetched ourselves: trafilatura without comments, plus paywall detection.

trafilatura refuses local addresses and IP hosts in its own fetchers, and its fetcher has none of our
limits, so it only ever sees bytes that came through `collectors/http.py`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime

from lxml import html as lxml_html

from tonevakt.collectors.encoding import decode_unlabelled
from tonevakt.dates import parse_date
from tonevakt.limits import stored_form
from tonevakt.models import Source

logger = logging.getLogger(__name__)

# Markers of a paywall or a locked article in Norwegian news HTML (Schibsted, Amedia, Polaris and others).
_PAYWALL_TEXT = re.compile(
    r"bare for abonnenter|kun for abonnenter|for abonnentar|berre for abonnentar|er du allerede abonnent"
    r"|logg inn for å lese|kjøp abonnement|denne saken er for abonnenter|les hele saken med",
    re.IGNORECASE,
)
_PAYWALL_ATTR = re.compile(
    r"""(?:class|id|data-[\w-]+)\s*=\s*["'][^"']*\b(?:paywall|pluss-?(?:artikkel|article|badge|lock)?|premium-?(?:content|lock)?"""
    r"""|subscriber-?only|locked-?article|article-?locked)\b""",
    re.IGNORECASE,
)
_NOT_FREE = re.compile(r""""isAccessibleForFree"\s*:\s*"?(?:false|False)"?""")
_TIER = re.compile(
    r"""<meta[^>]+(?:article:content_tier|lp:type)[^>]+content=["'](?:locked|metered|pluss)""", re.I
)
_PUBLISHED_META = (
    "article:published_time",
    "og:article:published_time",
    "datePublished",
    "dc.date",
    "DC.date.issued",
    "pubdate",
    "publishdate",
    "date",
)


@dataclass
class Article:
    """What we extracted from one article page."""

    url: str
    title: str
    text: str
    author: str | None = None
    published_at: datetime | None = None
    sitename: str | None = None
    paywalled: bool = False
    paywall_reason: str = ""


def wants_full_text(source: Source, title: str, summary: str, is_candidate: object) -> bool:
    """Fetch the article page? `full_text: always`, or `relevant` and the title/summary is a candidate."""
    if source.full_text == "never":
        return False
    if source.full_text == "always":
        return True
    # Judged on what would be stored: a 1 MB summary is not read past its stored length.
    candidate = f"{stored_form('title', title)} {stored_form('lead', summary)}"
    return bool(is_candidate(candidate))  # type: ignore[operator]


def decode_html(body: bytes, headers: dict[str, str] | None = None) -> str:
    """Decode with the HTTP charset, else the document's <meta charset>, else as `encoding.decode_unlabelled`."""
    charset = None
    ctype = (headers or {}).get("content-type", "")
    m = re.search(r"charset=[\"']?([\w.:-]+)", ctype, re.I)
    if m:
        charset = m.group(1)
    if charset is None:
        m = re.search(rb"""<meta[^>]+charset=["']?([\w.:-]+)""", body[:4096], re.I)
        if m:
            charset = m.group(1).decode("ascii", "ignore")
    if charset:
        try:
            return body.decode(charset)
        except (LookupError, UnicodeDecodeError):
            pass
    return decode_unlabelled(body).text


def paywall_marker(html: str) -> str | None:
    """The first paywall marker found in the HTML, or None."""
    for pattern, what in (
        (_NOT_FREE, "isAccessibleForFree: false"),
        (_TIER, "locked content tier"),
        (_PAYWALL_ATTR, "paywall element"),
        (_PAYWALL_TEXT, "paywall text"),
    ):
        m = pattern.search(html)
        if m:
            return f"{what} ({m.group(0)[:60].strip()})"
    return None


def _meta_published(tree: lxml_html.HtmlElement) -> datetime | None:
    for name in _PUBLISHED_META:
        for el in tree.xpath(f'//meta[@property="{name}" or @name="{name}" or @itemprop="{name}"]'):
            d = parse_date(el.get("content"))
            if d is not None:
                return d
    for el in tree.xpath("//time[@datetime]"):
        d = parse_date(el.get("datetime"))
        if d is not None:
            return d
    return None


def extract_article(
    body: bytes, url: str, headers: dict[str, str] | None = None, lead: str = ""
) -> Article | None:
    """Extract title, text, author and date from an article page. None when no text could be found.

    The article is marked paywalled when the HTML carries a paywall marker or when the text we got is
    not longer than the feed's lead (a truncated teaser)."""
    import trafilatura

    page = decode_html(body, headers)
    if not page.strip():
        return None
    try:
        doc = trafilatura.bare_extraction(
            page, url=url, include_comments=False, with_metadata=True, include_tables=False, deduplicate=False
        )
    except Exception as e:  # trafilatura/lxml raise many kinds on broken pages
        logger.info("extraction failed for %s: %s", url, e)
        doc = None
    text = (getattr(doc, "text", None) or "").strip() if doc is not None else ""
    title = (getattr(doc, "title", None) or "").strip() if doc is not None else ""
    author = (getattr(doc, "author", None) or None) if doc is not None else None
    sitename = (getattr(doc, "sitename", None) or None) if doc is not None else None
    published = None
    try:
        tree = lxml_html.fromstring(page)
        published = _meta_published(tree)
        if not title:
            title = " ".join((tree.findtext(".//h1") or tree.findtext(".//title") or "").split())
    except (ValueError, lxml_html.etree.ParserError):
        tree = None
    if published is None and doc is not None and getattr(doc, "date", None):
        published = parse_date(doc.date)
    if not text and not lead:
        return None
    article = Article(
        url=url, title=title, text=text, author=author, published_at=published, sitename=sitename
    )
    marker = paywall_marker(page)
    if marker:
        article.paywalled, article.paywall_reason = True, marker
    elif lead and len(text) <= len(lead) + 40:
        article.paywalled, article.paywall_reason = True, "the page text is not longer than the feed's lead"
    return article
