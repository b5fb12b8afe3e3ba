"""RSS/Atom feeds: feedparser on bytes we fetched (with the response headers, so the HTTP charset counts).

feedparser's dicts stop here: entries become `FeedEntry` records and then `Document`s. A broken (bozo) feed
keeps what feedparser recovered and records a warning; an HTML page served instead of a feed is an error
that says so. Article pages are fetched for full text only for relevant candidates (or `full_text: always`).
"""

from __future__ import annotations

import calendar
import html
import logging
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

from tonevakt.collectors.base import conditional_fetch, document_kind, log_entry
from tonevakt.collectors.fulltext import extract_article, wants_full_text
from tonevakt.collectors.http import HttpClient
from tonevakt.collectors.prolog import declares_entities, read_prolog
from tonevakt.dates import parse_date
from tonevakt.models import Document, FetchResult, FetchStatus, Source, SourceOutcome
from tonevakt.urls import canonical_url

logger = logging.getLogger(__name__)

FEED_ACCEPT = "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
HTML_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"
MIN_GUID_CHARS = 6  # letters and digits an opaque GUID needs to count as an identity ("dm-612345": 8)
MAX_ARTICLES_PER_PASS = 40  # article pages fetched per source and pass (the rest wait for the next pass)
_TAG = re.compile(r"<[^>]+>")
_BLOCK = re.compile(r"</?(?:p|br|div|li|h[1-6]|blockquote|tr)\b[^>]*>", re.I)
_FEED_END = re.compile(rb"</(?:[\w.-]+:)?(?:rss|feed|RDF)\s*>\s*$")
_HTML_START = re.compile(rb"^\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html)\b", re.I | re.S)


@dataclass
class FeedEntry:
    """One feed entry, converted from feedparser's dict at the edge."""

    key: str  # identity within the feed (`entry_key`): duplicates within a feed are dropped by this key
    title: str
    link: str | None
    summary: str  # plain text, no HTML
    published_at: datetime | None
    author: str | None = None
    source_title: str | None = None  # <source> element (news-search feeds name the publisher here)
    source_url: str | None = None
    guid: str | None = None  # the entry's GUID, when it is an identity (`guid_is_identity`)


@dataclass
class ParsedFeed:
    title: str = ""
    entries: list[FeedEntry] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None  # set when nothing usable came out: the fetch becomes a soft error
    duplicates: int = 0


def html_to_text(value: str | None) -> str:
    """Plain text from an HTML fragment (feed summaries): tags dropped, entities decoded, spaces tidied."""
    if not value:
        return ""
    text = _BLOCK.sub("\n", value)
    text = html.unescape(_TAG.sub("", text))
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line).strip()


def looks_like_html(body: bytes, headers: dict[str, str]) -> bool:
    ctype = headers.get("content-type", "").lower()
    return "text/html" in ctype or "xhtml" in ctype or bool(_HTML_START.match(body.lstrip(b"\xef\xbb\xbf")))


_FEED_LINK = re.compile(rb"""<link\b[^>]*\btype=["']application/(?:rss|atom)\+xml["'][^>]*>""", re.I)
_HREF = re.compile(rb"""\bhref=["']([^"']+)["']""", re.I)


def feed_link_in_html(body: bytes, base: str) -> str | None:
    """The feed an HTML page announces (<link rel="alternate" type="application/rss+xml">), if any."""
    m = _FEED_LINK.search(body[:200_000])
    href = _HREF.search(m.group(0)) if m else None
    return urljoin(base, html.unescape(href.group(1).decode("utf-8", "replace"))) if href else None


def _entry_date(e: Any) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        t = e.get(key)
        if t:
            try:
                return datetime.fromtimestamp(calendar.timegm(t), UTC)
            except (OverflowError, ValueError, TypeError):
                continue
    for key in ("published", "updated", "created", "dc_date"):
        d = parse_date(e.get(key))
        if d is not None:
            return d
    return None


def _clean_link(link: str | None, base: str) -> str | None:
    if not link:
        return None
    link = html.unescape(html.unescape(link.strip()))  # entity-encoded (even double-encoded) links
    return urljoin(base, link)


def guid_is_identity(guid: str) -> bool:
    """Can this GUID (unique within its feed) tell an entry apart? An absolute URL that names more than a
    site's root or a one-letter folder, or an opaque id with at least `MIN_GUID_CHARS` letters and digits.
    A real feed gave 65 articles the GUID "/a/" (which feedparser makes absolute against the feed URL)."""
    parts = urlsplit(guid)
    if parts.scheme in ("http", "https") and parts.netloc:
        return sum(ch.isalnum() for ch in parts.path + parts.query) >= 2
    return sum(ch.isalnum() for ch in guid) >= MIN_GUID_CHARS


def entry_key(guid: str, link: str | None, title: str, published: datetime | None) -> str:
    """An entry's identity within its feed: its GUID (when it is an identity), else its canonical link, else
    its title and date ("" when it has none of these)."""
    if guid:
        return guid
    if link:
        return canonical_url(link)
    if title:
        return f"{title}\x1f{published.isoformat() if published else ''}"
    return ""


def strip_internal_dtd(body: bytes) -> tuple[bytes, list[str], bool]:
    """The body without a DOCTYPE that has an internal subset, the entity names it declares, and whether one
    was removed. The prolog is read properly (`prolog.py`): a comment before the DOCTYPE does not hide it.
    A body that declares entities is returned as it is: the caller refuses it."""
    prolog = read_prolog(body)
    entities = declares_entities(body, prolog)
    if entities or prolog.wide or prolog.doctype is None or not prolog.subset:
        return body, entities, False
    start, end = prolog.doctype
    return body[:start] + body[end:], [], True


def _entity_refusal(names: list[str]) -> str:
    shown = ", ".join(dict.fromkeys(names[:5]))
    more = f", {len(names)} in all" if len(names) > 5 else ""
    return (
        f"refused: the feed declares its own XML entities ({shown}{more}); entity declarations are never "
        "parsed (they can expand to gigabytes or read local files)"
    )


def parse_feed(body: bytes, headers: dict[str, str], url: str) -> ParsedFeed:
    """Parse feed bytes into typed entries."""
    import feedparser

    hdrs = dict(headers)
    hdrs.setdefault("content-location", url)
    body, entities, had_dtd = strip_internal_dtd(body)
    if entities:  # defusedxml's rule: any entity declaration is refused, whatever it expands to
        return ParsedFeed(error=_entity_refusal(entities))
    d = feedparser.parse(body, response_headers=hdrs, sanitize_html=False, resolve_relative_uris=True)
    out = ParsedFeed(title=html_to_text(d.feed.get("title", "")))
    if had_dtd:
        out.warnings.append("the feed declares its own DTD: ignored")
    if not d.entries:
        if looks_like_html(body, headers) and not d.get("version"):
            out.error = "the server sent an HTML page, not a feed"
            hint = feed_link_in_html(body, url)
            if hint:
                out.error += f" (the page points to a feed at {hint})"
        elif d.get("bozo") and not d.get("version"):
            out.error = f"not a readable feed: {d.get('bozo_exception')}"
        elif not d.get("version") and not body.strip():
            out.error = "the server sent an empty body, not a feed"
        elif not d.get("version"):
            out.error = "not a feed (no RSS or Atom element found)"
        return out
    entries = list(d.entries)
    if d.get("bozo"):
        exc = d.get("bozo_exception")
        if type(exc).__name__ in ("CharacterEncodingOverride", "NonXMLContentType"):
            out.warnings.append(f"character encoding: {exc}")
        else:
            if not _FEED_END.search(body[-512:]):
                # The body stops inside the feed (a dropped connection, a full disk at the publisher): the last
                # entry may be half there (no text, a GUID taken for its link). It waits for a complete copy.
                entries = entries[:-1]
                out.warnings.append("the feed is cut off: its last entry was left for the next pass")
            out.warnings.append(
                f"malformed feed ({type(exc).__name__}: {exc}); kept the {len(entries)} "
                "entries that could be recovered"
            )
    guids = Counter((e.get("id") or "").strip() for e in entries)
    seen: set[str] = set()
    not_ids: set[str] = set()
    for e in entries:
        link = _clean_link(e.get("link"), url)
        title = html_to_text(e.get("title", ""))
        published = _entry_date(e)
        guid = (e.get("id") or "").strip()
        identity = bool(guid) and guid_is_identity(guid)
        if guid and (guids[guid] > 1 or not identity):
            not_ids.add(guid)
            if e.get("link") == e.get("id") and not identity:
                link = (
                    None  # a bare "/a/" taken for the link (feedparser does so without <link>): no identity
                )
            guid = ""
        key = entry_key(guid, link, title, published)
        if not key:
            continue
        if key in seen:
            out.duplicates += 1
            continue
        seen.add(key)
        summary = e.get("summary") or ""
        if not summary and e.get("content"):
            summary = e["content"][0].get("value", "")
        src = e.get("source") or {}
        out.entries.append(
            FeedEntry(
                key=key,
                title=title,
                link=link,
                summary=html_to_text(summary),
                published_at=published,
                author=html_to_text(e.get("author")) or None,
                source_title=html_to_text(src.get("title")) or None,
                source_url=src.get("href") or None,
                guid=guid or None,
            )
        )
    shared = sorted(g for g in not_ids if guids[g] > 1)  # (a short GUID used once loses nothing: no warning)
    if shared:
        shown = ", ".join(repr(g) for g in shared[:3])
        out.warnings.append(
            f"{sum(guids[g] for g in shared)} entries share a GUID with another entry ({shown}): "
            "told apart by link, or title and date, instead"
        )
    if out.duplicates:
        out.warnings.append(f"{out.duplicates} entries repeat an entry already in the feed: kept once")
    return out


def fetch_feed(
    source: Source, client: HttpClient, state_row: dict[str, Any] | None, outcome: SourceOutcome
) -> tuple[FetchResult, ParsedFeed | None]:
    """Fetch the source's feed (conditional GET + body hash) and parse it; log the primary fetch."""
    row = state_row or {}
    started = datetime.now(UTC)
    res = conditional_fetch(client, source.url or "", source, row, FEED_ACCEPT)
    if res.status is not FetchStatus.OK:
        outcome.fetches.append(log_entry(source, res, True, started))
        return res, None
    parsed = parse_feed(res.body, res.headers, res.final_url or res.url)
    entry = log_entry(source, res, True, started, items=len(parsed.entries))
    if parsed.error:
        entry.status, entry.reason = FetchStatus.SOFT_ERROR, parsed.error
        entry.body_hash = None
    elif parsed.warnings:
        entry.reason = f"{res.reason}; {'; '.join(parsed.warnings)}"
    outcome.warnings.extend(parsed.warnings)
    outcome.fetches.append(entry)
    return res, None if parsed.error else parsed


def entry_document(
    source: Source,
    e: FeedEntry,
    now: datetime,
    *,
    title: str | None = None,
    url: str | None = None,
    outlet: str | None = None,
) -> Document:
    title = title if title is not None else e.title
    return Document(
        source_id=source.id,
        voice=source.voice,
        title=title or e.summary[:120] or "(uten tittel)",
        text=e.summary or title or "",
        lead=e.summary,
        url=url if url is not None else e.link,
        author=e.author,
        outlet=outlet or source.name or source.id,
        published_at=e.published_at or now,
        published_estimated=e.published_at is None,
        collected_at=now,
        region=source.region,
        paywalled=source.paywalled,
        kind=document_kind(source),
        extra={"guid": e.guid} if e.guid else {},
    )


def add_full_text(
    doc: Document,
    source: Source,
    client: HttpClient,
    outcome: SourceOutcome,
    fetched: FetchResult | None = None,
) -> None:
    """Fetch (unless given) and extract the article; a paywalled or truncated page keeps the feed's lead."""
    if fetched is None:
        started = datetime.now(UTC)
        fetched = client.fetch(doc.url or "", respect_robots=source.respect_robots, accept=HTML_ACCEPT)
        outcome.fetches.append(log_entry(source, fetched, False, started))
    if not fetched.ok:
        doc.extra["full_text_error"] = fetched.reason
        return
    article = extract_article(fetched.body, fetched.final_url or fetched.url, fetched.headers, lead=doc.lead)
    if article is None:
        doc.extra["full_text_error"] = "no article text found on the page"
        return
    if doc.author is None and article.author:
        doc.author = article.author
    if doc.published_estimated and article.published_at is not None:
        doc.published_at, doc.published_estimated = article.published_at, False
    if article.paywalled:
        doc.paywalled = True
        doc.extra["paywall"] = article.paywall_reason
        return
    doc.text = article.text
    doc.extra["full_text"] = True


def new_entries(
    source: Source,
    client: HttpClient,
    state_row: dict[str, Any] | None,
    outcome: SourceOutcome,
    known_urls: set[str] | None,
) -> list[FeedEntry]:
    """Fetch and parse the source's feed (logged in `outcome`); its entries whose link is not stored yet
    (none when the fetch failed or the feed is unchanged)."""
    _, parsed = fetch_feed(source, client, state_row, outcome)
    if parsed is None:
        return []
    known = known_urls or set()
    return [e for e in parsed.entries if not (e.link and (canonical_url(e.link) in known or e.link in known))]


def collect_rss(
    source: Source,
    client: HttpClient,
    state_row: dict[str, Any] | None,
    *,
    is_candidate: Callable[[str], bool],
    known_urls: set[str] | None = None,
    now: datetime | None = None,
) -> SourceOutcome:
    """One pass over an RSS/Atom source."""
    outcome = SourceOutcome(source=source)
    now = now or datetime.now(UTC)
    fetched_articles = 0
    for e in new_entries(source, client, state_row, outcome, known_urls):
        doc = entry_document(source, e, now)
        if (
            doc.url
            and fetched_articles < MAX_ARTICLES_PER_PASS
            and wants_full_text(source, e.title, e.summary, is_candidate)
        ):
            if client.out_of_time:  # the source's time budget: the entry is stored with the feed's own text
                doc.extra["full_text_error"] = "not fetched: the time budget was spent"
            else:
                fetched_articles += 1
                add_full_text(doc, source, client, outcome)
        outcome.documents.append(doc)
    return outcome
