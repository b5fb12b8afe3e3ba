"""HelsaMi reviews from the public App Store customer-reviews feed (JSON form), every page.

    https://itunes.apple.com/{country}/rss/customerreviews/page={page}/id={app_id}/sortby=mostrecent/json

Up to 50 reviews per page, about 10 pages; pages are read up to `source.max_pages` and the walk stops at
the first page without reviews. The feed's quirks, converted at this edge:
- `feed.entry` is a list, or a single object when there is one entry, or absent when there are none;
- on page 1 the first entry can be the app itself (it has no `im:rating`): skipped;
- every value is wrapped as `{"label": ...}` (`id`, `author.name`, `title`, `content`, `im:rating`,
  `im:version`, `updated`);
- some requests get an empty feed although the app has reviews: page 1 is retried once with other
  headers (Accept and User-Agent variants) before the emptiness is believed (and reported).

A later page that fails, or that the source's time budget does not reach, is remembered by the pass and read
again (and on from there) in a later pass, even when page 1 is unchanged.

Each review becomes a `Document` (kind "review") with its star rating, app version, author and date, and a
stable per-review URL `https://apps.apple.com/{country}/review?id={app_id}&review={review id}`.

The feed URL can be overridden with the source's `url`, a template with `{country}`, `{page}` and
`{app_id}` placeholders (tests point it at a local server; a mirror or proxy could be used the same way).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tonevakt.collectors.base import TIME_RAN_OUT, conditional_fetch, log_entry
from tonevakt.collectors.http import HttpClient
from tonevakt.dates import parse_date
from tonevakt.models import (
    Document,
    FetchResult,
    FetchStatus,
    ItemOutcome,
    PendingItem,
    Source,
    SourceOutcome,
)

logger = logging.getLogger(__name__)

FEED_URL = (
    "https://itunes.apple.com/{country}/rss/customerreviews/page={page}/id={app_id}/sortby=mostrecent/json"
)
REVIEW_URL = "https://apps.apple.com/{country}/review?id={app_id}&review={review_id}"
ACCEPT = "application/json, text/javascript;q=0.9, */*;q=0.5"
# The second try when page 1 comes back empty: plain Accept, and a browser-compatible User-Agent that
# still names Tonevakt (added to the client's own, honest one).
RETRY_ACCEPT = "*/*"
RETRY_UA_PREFIX = "Mozilla/5.0 (compatible)"


@dataclass
class Review:
    """One customer review, unwrapped from the feed's {"label": ...} values."""

    review_id: str
    title: str
    text: str
    author: str | None
    rating: int | None
    version: str | None
    updated: datetime | None
    vote_sum: int | None = None
    vote_count: int | None = None


def feed_url(source: Source, page: int) -> str:
    template = source.url or FEED_URL
    return template.format(country=source.country, page=page, app_id=source.app_id)


def review_url(country: str, app_id: str, review_id: str) -> str:
    return REVIEW_URL.format(country=country, app_id=app_id, review_id=review_id)


def _label(obj: Any, *path: str) -> str | None:
    """obj[path...]["label"] as a stripped string, or None."""
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    if isinstance(obj, dict):
        obj = obj.get("label")
    if obj is None or isinstance(obj, dict | list):
        return None
    value = str(obj).strip()
    return value or None


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class FeedFormatError(ValueError):
    """The body is not the customer-reviews JSON."""


def parse_reviews(body: bytes) -> tuple[list[Review], int]:
    """Reviews of one feed page, and the number of entries skipped (the app entry, entries without an id)."""
    try:
        data = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        snippet = body[:60].decode("utf-8", "replace").strip()
        raise FeedFormatError(f"not JSON ({e.__class__.__name__}; starts with {snippet!r})") from e
    if not isinstance(data, dict) or not isinstance(data.get("feed"), dict):
        raise FeedFormatError("JSON without a 'feed' object")
    entries = data["feed"].get("entry")
    if entries is None:
        return [], 0
    if isinstance(entries, dict):
        entries = [entries]
    if not isinstance(entries, list):
        raise FeedFormatError("'feed.entry' is neither a list nor an object")
    reviews, skipped = [], 0
    for e in entries:
        rating = _int(_label(e, "im:rating"))
        review_id = _label(e, "id")
        if not isinstance(e, dict) or rating is None or review_id is None:
            skipped += 1  # the app itself (page 1), or something that is not a review
            continue
        reviews.append(
            Review(
                review_id=review_id,
                title=_label(e, "title") or "",
                text=_label(e, "content") or "",
                author=_label(e, "author", "name"),
                rating=rating if 1 <= rating <= 5 else None,
                version=_label(e, "im:version"),
                updated=parse_date(_label(e, "updated")),
                vote_sum=_int(_label(e, "im:voteSum")),
                vote_count=_int(_label(e, "im:voteCount")),
            )
        )
    return reviews, skipped


def review_document(source: Source, r: Review, now: datetime) -> Document:
    text = r.text or r.title
    return Document(
        source_id=source.id,
        voice=source.voice,
        title=r.title or text[:80],
        text=text,
        url=review_url(source.country, source.app_id or "", r.review_id),
        author=r.author,
        outlet="App Store",
        published_at=r.updated,
        published_estimated=r.updated is None,
        collected_at=now,
        region=source.region,
        rating=r.rating,
        app_version=r.version,
        kind="review",
        extra={
            "app_id": source.app_id,
            "country": source.country,
            "review_id": r.review_id,
            **({"vote_sum": r.vote_sum, "vote_count": r.vote_count} if r.vote_count is not None else {}),
        },
    )


def collect_appstore(
    source: Source,
    client: HttpClient,
    state_row: dict[str, Any] | None,
    *,
    pending: list[PendingItem] | None = None,
) -> SourceOutcome:
    """Read every page of the source's reviews feed; never raises for feed or network problems.

    A later page that fails (or that the time budget does not reach) is reported as an item; the pass hands
    it back (`pending`) in a later pass, which reads on from that page even when page 1 is unchanged."""
    outcome = SourceOutcome(source=source)
    now = datetime.now(UTC)
    seen: set[str] = set()
    read: set[int] = set()
    if _first_page(source, client, state_row or {}, outcome, seen, now) and source.max_pages > 1:
        _walk(source, client, outcome, seen, now, 2, read)
    pages = {feed_url(source, p): p for p in range(2, source.max_pages + 1)}
    for item in pending or []:
        if item.kind != "page":
            continue
        page = pages.get(item.url)
        if page is None:  # the feed's address or max_pages changed: that page is no longer read
            outcome.items.append(
                ItemOutcome(item.url, "page", FetchStatus.HARD_ERROR, "no longer a page of the feed")
            )
        elif page not in read:
            _walk(source, client, outcome, seen, now, page, read)
    return outcome


def _first_page(
    source: Source,
    client: HttpClient,
    row: dict[str, Any],
    outcome: SourceOutcome,
    seen: set[str],
    now: datetime,
) -> bool:
    """Page 1 (conditional GET; asked again with other headers when empty). True when later pages are due."""
    url = feed_url(source, 1)
    started = datetime.now(UTC)
    res = conditional_fetch(client, url, source, row, ACCEPT)
    if res.status is not FetchStatus.OK:
        outcome.fetches.append(log_entry(source, res, True, started))
        return False
    try:
        reviews, _ = parse_reviews(res.body)
    except FeedFormatError as e:
        entry = log_entry(source, res, True, started)
        entry.status, entry.reason, entry.body_hash = FetchStatus.SOFT_ERROR, f"page 1: {e}", None
        outcome.fetches.append(entry)
        return False
    if not reviews:
        # Some requests get an empty feed: ask once more, differently, before believing it.
        outcome.fetches.append(log_entry(source, res, False, started))
        started = datetime.now(UTC)
        retry = client.fetch(
            url,
            respect_robots=source.respect_robots,
            accept=RETRY_ACCEPT,
            headers={"User-Agent": f"{RETRY_UA_PREFIX} {client.user_agent}"},
        )
        retry_reviews = _reviews_or_none(retry)
        reviews = retry_reviews or []
        entry = log_entry(source, retry, True, started, items=len(reviews))
        if retry.status is FetchStatus.OK and retry_reviews is None:
            entry.status, entry.reason, entry.body_hash = FetchStatus.SOFT_ERROR, "page 1: not JSON", None
        elif retry.status is FetchStatus.OK and not reviews:
            entry.status = FetchStatus.SOFT_ERROR
            entry.reason = "empty reviews feed, also when asked again with other headers"
            entry.body_hash = None
        outcome.fetches.append(entry)
        if not reviews:
            return False
        logger.info(
            "%s: page 1 was empty; the retry with other headers gave %d reviews", source.id, len(reviews)
        )
    else:
        outcome.fetches.append(log_entry(source, res, True, started, items=len(reviews)))
    return _add_reviews(source, reviews, outcome, seen, now)


def _add_reviews(
    source: Source, reviews: list[Review], outcome: SourceOutcome, seen: set[str], now: datetime
) -> bool:
    """Add the reviews not seen in this pass; False when the page brought none (the walk ends there)."""
    new = [r for r in reviews if r.review_id not in seen]
    seen.update(r.review_id for r in new)
    outcome.documents.extend(review_document(source, r, now) for r in new)
    return bool(new)  # none: an empty page, or the feed repeats itself: no point in asking for more pages


def _walk(
    source: Source,
    client: HttpClient,
    outcome: SourceOutcome,
    seen: set[str],
    now: datetime,
    first: int,
    read: set[int],
) -> None:
    """Pages `first`, `first` + 1, … up to max_pages, until an empty page; each page is reported as an item."""
    for page in range(first, source.max_pages + 1):
        url = feed_url(source, page)
        if client.out_of_time:
            outcome.items.append(
                ItemOutcome(url, "page", None, f"waiting for the next pass ({TIME_RAN_OUT})")
            )
            outcome.warnings.append(f"page {page}: {TIME_RAN_OUT}; read from there in a later pass")
            return
        read.add(page)
        started = datetime.now(UTC)
        res = client.fetch(url, respect_robots=source.respect_robots, accept=ACCEPT)
        entry = log_entry(source, res, False, started)
        outcome.fetches.append(entry)
        if res.status is not FetchStatus.OK:
            outcome.items.append(ItemOutcome(url, "page", res.status, res.reason))
            if res.status.failed:
                outcome.warnings.append(
                    f"page {page}: {res.status.value} ({res.reason}); tried again in a later pass"
                )
            return
        try:
            reviews, _ = parse_reviews(res.body)
        except FeedFormatError as e:
            entry.status, entry.reason, entry.body_hash = FetchStatus.SOFT_ERROR, f"page {page}: {e}", None
            outcome.items.append(ItemOutcome(url, "page", entry.status, entry.reason))
            outcome.warnings.append(entry.reason)
            return
        entry.items = len(reviews)
        outcome.items.append(ItemOutcome(url, "page", FetchStatus.OK, res.reason))
        if not _add_reviews(source, reviews, outcome, seen, now):
            return


def _reviews_or_none(res: FetchResult) -> list[Review] | None:
    if res.status is not FetchStatus.OK:
        return None
    try:
        return parse_reviews(res.body)[0]
    except FeedFormatError:
        return None
