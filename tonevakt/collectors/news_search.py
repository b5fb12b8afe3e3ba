"""News-search feeds (a query feed such as a news search for "Helseplattformen").

Such a feed titles items "Headline - Publisher", names the publisher in each item's <source> element and
links through the search service's own redirect URLs. We keep the publisher as the outlet, strip it from
the title, and follow the redirect (through our own HTTP client) to store the publisher's URL, so the same
story from the publisher's own feed and from the search feed is one document. When the redirect cannot be
followed, the search link is kept and the document says so in `extra`.

At most MAX_ARTICLES_PER_PASS links are resolved per pass (full text or not: each is a request), and none
once the source's time budget is spent. The items left over are not stored half-done (with the search link
as their identity they would later become a second copy of the story): the feed's validators are forgotten,
so the next pass reads the whole feed again and takes up the items not stored yet.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from tonevakt.collectors.base import left_reason, log_entry
from tonevakt.collectors.fulltext import wants_full_text
from tonevakt.collectors.http import HttpClient
from tonevakt.collectors.rss import (
    HTML_ACCEPT,
    MAX_ARTICLES_PER_PASS,
    FeedEntry,
    add_full_text,
    entry_document,
    new_entries,
)
from tonevakt.models import FetchResult, Source, SourceOutcome, document_id
from tonevakt.urls import canonical_url

logger = logging.getLogger(__name__)

_SEPARATORS = (" - ", " – ", " — ", " | ")


def split_publisher(title: str, publisher: str | None) -> tuple[str, str | None]:
    """("Headline - Publisher", "Publisher") → ("Headline", "Publisher"); without <source>, the last
    " - X" part is taken as the publisher when it is short."""
    title = title.strip()
    if publisher:
        for sep in _SEPARATORS:
            suffix = f"{sep}{publisher}"
            if title.casefold().endswith(suffix.casefold()):
                return title[: -len(suffix)].rstrip(), publisher
        return title, publisher
    for sep in _SEPARATORS:
        head, found, tail = title.rpartition(sep)
        if found and head and 0 < len(tail) <= 40 and len(tail.split()) <= 5:
            return head.rstrip(), tail.strip()
    return title, None


def _host(url: str | None) -> str:
    return (urlsplit(url).hostname or "").lower().removeprefix("www.") if url else ""


def collect_news_search(
    source: Source,
    client: HttpClient,
    state_row: dict[str, Any] | None,
    *,
    is_candidate: Callable[[str], bool],
    known_urls: set[str] | None = None,
    now: datetime | None = None,
) -> SourceOutcome:
    """One pass over a news-search feed."""
    outcome = SourceOutcome(source=source)
    now = now or datetime.now(UTC)
    known = known_urls or set()
    search_host = _host(source.url)
    resolved_links = 0
    left = 0
    for e in new_entries(source, client, state_row, outcome, known):  # search links of stored stories skipped
        title, publisher = split_publisher(e.title, e.source_title)
        doc = entry_document(source, e, now, title=title, outlet=publisher or source.name)
        if publisher:
            doc.extra["publisher"] = publisher
        if e.link:
            if resolved_links >= MAX_ARTICLES_PER_PASS or client.out_of_time:
                left += 1  # taken up by the next pass, which reads the feed in full again
                continue
            full = wants_full_text(source, title, e.summary, is_candidate)
            resolved_links += 1
            resolved = _resolve(e.link, source, client, outcome, read_body=full)
            # The publisher's URL is known once a redirect was followed, even if its page then failed.
            final = resolved.final_url or (e.link if resolved.ok else None)
            if final is None or _host(final) == search_host:
                # Not followed (error, or a page of the search service itself): keep the search link.
                doc.extra["search_link_unresolved"] = resolved.reason if not resolved.ok else "no redirect"
                logger.info(
                    "%s: could not resolve %s to the publisher (%s)",
                    source.id,
                    e.link,
                    doc.extra["search_link_unresolved"],
                )
            else:
                if final != e.link:
                    if canonical_url(final) in known:
                        continue  # the publisher's URL is already stored (from its own feed)
                    doc.extra["search_link"] = e.link
                    doc.url = final
                    doc.id = document_id(final, source.id, doc.title, doc.text)  # follows the publisher's URL
                if full:
                    add_full_text(doc, source, client, outcome, fetched=resolved)
                elif not resolved.ok:
                    doc.extra["publisher_page_error"] = resolved.reason
        outcome.documents.append(doc)
    if left:
        why = left_reason(client, f"at most {MAX_ARTICLES_PER_PASS} links are resolved per pass")
        outcome.warnings.append(f"{left} items left for the next pass ({why})")
        for f in outcome.fetches:
            if f.primary:
                f.incomplete = True
    return outcome


def _resolve(
    link: str, source: Source, client: HttpClient, outcome: SourceOutcome, read_body: bool
) -> FetchResult:
    started = datetime.now(UTC)
    res = client.fetch(link, respect_robots=source.respect_robots, accept=HTML_ACCEPT, read_body=read_body)
    outcome.fetches.append(log_entry(source, res, False, started))
    return res


__all__ = ["FeedEntry", "collect_news_search", "split_publisher"]
