"""Sites without RSS (the unions, official news pages): listing page (and sitemap) → new article links on
the same site that match the source's `include` pattern → fetched and extracted (title, date, author).

Article pages already stored are never fetched again: the pass passes the known canonical URLs in.
Article pages that failed, or that the time budget or the per-pass cap left over, are reported as items;
the pass remembers them and hands them back (`pending`) in a later pass, which fetches them first, even
when the listing page is unchanged (304, same body hash) and so yields no links at all.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urldefrag, urljoin, urlsplit

from lxml import etree
from lxml import html as lxml_html

from tonevakt.collectors.base import conditional_fetch, document_kind, left_reason, log_entry
from tonevakt.collectors.fulltext import decode_html, extract_article
from tonevakt.collectors.http import HttpClient
from tonevakt.collectors.rss import HTML_ACCEPT, MAX_ARTICLES_PER_PASS
from tonevakt.models import (
    Document,
    FetchLogEntry,
    FetchStatus,
    ItemOutcome,
    PendingItem,
    Source,
    SourceOutcome,
)
from tonevakt.urls import canonical_url

logger = logging.getLogger(__name__)

MAX_SITEMAPS = 5  # child sitemaps read from a sitemap index
_SKIP_EXT = re.compile(r"\.(?:pdf|jpe?g|png|gif|svg|webp|zip|docx?|xlsx?|pptx?|mp[34]|ics)$", re.I)


def _site(host: str | None) -> str:
    return (host or "").lower().removeprefix("www.")


def same_site(url: str, base: str) -> bool:
    a, b = urlsplit(url), urlsplit(base)
    return _site(a.hostname) == _site(b.hostname) and a.port == b.port


def listing_links(body: bytes, headers: dict[str, str], base_url: str) -> list[str]:
    """Absolute links of a listing page, in page order, without fragments or duplicates."""
    page = decode_html(body, headers)
    if not page.strip():
        return []
    try:
        tree = lxml_html.fromstring(page)
    except (ValueError, etree.ParserError):
        return []
    base_el = tree.find(".//base[@href]")
    base_href = urljoin(base_url, base_el.get("href")) if base_el is not None else base_url
    out: dict[str, None] = {}
    for a in tree.iter("a"):
        href = (a.get("href") or "").strip()
        if not href or href.startswith(("#", "mailto:", "tel:", "javascript:")):
            continue
        url = urldefrag(urljoin(base_href, href))[0]
        if urlsplit(url).scheme in ("http", "https"):
            out.setdefault(url, None)
    return list(out)


def sitemap_links(body: bytes) -> tuple[list[str], list[str]]:
    """(page URLs, child sitemap URLs) of a sitemap or a sitemap index."""
    try:
        root = etree.fromstring(
            body, parser=etree.XMLParser(resolve_entities=False, no_network=True, recover=True)
        )
    except etree.XMLSyntaxError:
        return [], []
    if root is None:
        return [], []
    pages, children = [], []
    for el in root.iter("{*}url"):
        loc = el.findtext("{*}loc")
        if loc:
            pages.append(loc.strip())
    for el in root.iter("{*}sitemap"):
        loc = el.findtext("{*}loc")
        if loc:
            children.append(loc.strip())
    return pages, children


def article_candidates(links: list[str], source: Source, listing_url: str) -> list[str]:
    """Links on the same site that look like articles: `include` matches (when set), not the listing itself."""
    pattern = re.compile(source.include) if source.include else None
    listing = canonical_url(listing_url)
    listing_path = urlsplit(listing_url).path.rstrip("/")
    out = []
    for url in links:
        if not same_site(url, listing_url) or _SKIP_EXT.search(urlsplit(url).path):
            continue
        if canonical_url(url) == listing:
            continue
        if pattern is not None:
            if not pattern.search(url):
                continue
        elif not urlsplit(url).path.rstrip("/").startswith(listing_path + "/"):
            continue  # without a pattern: only pages below the listing's own path
        out.append(url)
    return out


def collect_web(
    source: Source,
    client: HttpClient,
    state_row: dict[str, Any] | None,
    *,
    known_urls: set[str] | None = None,
    now: datetime | None = None,
    pending: list[PendingItem] | None = None,
) -> SourceOutcome:
    """One pass over a listing page (and sitemap): fetch and extract every new article, and the article
    pages left from earlier passes (`pending`, fetched first)."""
    outcome = SourceOutcome(source=source)
    now = now or datetime.now(UTC)
    known = known_urls or set()
    started = datetime.now(UTC)
    row = state_row or {}
    res = conditional_fetch(client, source.url or "", source, row, HTML_ACCEPT)
    primary = log_entry(source, res, True, started)
    outcome.fetches.append(primary)
    links: list[str] = []
    base = res.final_url or res.url
    if res.ok:
        links = listing_links(res.body, res.headers, base)
        if not links:
            primary.status, primary.reason = FetchStatus.SOFT_ERROR, "the listing page has no links"
            primary.body_hash = None
    if source.sitemap:
        links += _sitemap_urls(source, client, outcome)
    retry = [p.url for p in pending or [] if p.kind == "article"]
    if not res.ok and not links and not retry:
        return outcome
    candidates = [
        u
        for u in dict.fromkeys(article_candidates(links, source, source.url or base))
        if canonical_url(u) not in known and u not in known
    ]
    primary.items = len(candidates)
    todo = list(dict.fromkeys(retry + candidates))
    left = 0
    for i, url in enumerate(todo):
        if i >= MAX_ARTICLES_PER_PASS or client.out_of_time:
            why = left_reason(client, f"more than {MAX_ARTICLES_PER_PASS} article pages")
            outcome.items.append(ItemOutcome(url, "article", None, f"waiting for the next pass ({why})"))
            left += 1
            continue
        doc, entry = _article(url, source, client, outcome, now)
        outcome.items.append(ItemOutcome(url, "article", entry.status, entry.reason))
        if doc is not None:
            outcome.documents.append(doc)
    if left:
        outcome.warnings.append(f"{len(todo)} article pages to fetch; {left} left for later passes")
    return outcome


def _sitemap_urls(source: Source, client: HttpClient, outcome: SourceOutcome) -> list[str]:
    todo, pages = [source.sitemap or ""], []
    seen: set[str] = set()
    while todo and len(seen) <= MAX_SITEMAPS:
        url = todo.pop(0)
        if url in seen:
            continue
        seen.add(url)
        started = datetime.now(UTC)
        res = client.fetch(url, respect_robots=source.respect_robots, accept="application/xml, text/xml, */*")
        outcome.fetches.append(log_entry(source, res, False, started))
        if not res.ok:
            outcome.warnings.append(f"sitemap {url}: {res.reason}")
            continue
        found, children = sitemap_links(res.body)
        pages += found
        todo += children
    return pages


def _article(
    url: str, source: Source, client: HttpClient, outcome: SourceOutcome, now: datetime
) -> tuple[Document | None, FetchLogEntry]:
    started = datetime.now(UTC)
    res = client.fetch(url, respect_robots=source.respect_robots, accept=HTML_ACCEPT)
    entry = log_entry(source, res, False, started)
    outcome.fetches.append(entry)
    if not res.ok:
        return None, entry
    article = extract_article(res.body, res.final_url or url, res.headers)
    if article is None or not article.text:
        entry.reason = f"{res.reason}; no article text found on the page"
        return None, entry
    entry.items = 1
    lead = article.text.split("\n", 1)[0][:500]
    return Document(
        source_id=source.id,
        voice=source.voice,
        title=article.title or lead[:120],
        text=article.text,
        lead=lead,
        url=url,
        author=article.author,
        outlet=source.name or source.id,
        published_at=article.published_at or now,
        published_estimated=article.published_at is None,
        collected_at=now,
        region=source.region,
        paywalled=article.paywalled,
        kind=document_kind(source),
        extra={"full_text": True, **({"paywall": article.paywall_reason} if article.paywalled else {})},
    ), entry
