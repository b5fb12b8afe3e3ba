"""What every collector uses to build what it hands back to the pass (a `models.SourceOutcome`): its fetch-log rows
and the conditional GET of its own URL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tonevakt.models import FetchLogEntry, FetchResult, Source


def document_kind(source: Source) -> str:
    """What a fetched page or feed entry is: a news article from a media source, else a statement."""
    return "article" if source.voice == "media" else "statement"


TIME_RAN_OUT = "the time ran out"  # the source's time budget or the pass's deadline (`client.out_of_time`)


def left_reason(client: Any, cap: str) -> str:
    """Why a collector left items for a later pass: its time ran out, else the per-pass cap (`cap` says
    which)."""
    return TIME_RAN_OUT if client.out_of_time else cap


def log_entry(
    source: Source, res: FetchResult, primary: bool, started: datetime, items: int = 0
) -> FetchLogEntry:
    """The fetch-log row of one fetch of `source` (`primary`: the source's own URL, not an article or page)."""
    return FetchLogEntry(
        source_id=source.id,
        url=res.url,
        status=res.status,
        started_at=started,
        http_status=res.http_status,
        reason=res.reason,
        duration_ms=int(res.duration_s * 1000),
        bytes=len(res.body),
        items=items,
        etag=res.etag,
        last_modified=res.last_modified,
        body_hash=res.body_hash,
        primary=primary,
    )


def conditional_fetch(
    client: Any, url: str, source: Source, state_row: dict[str, Any] | None, accept: str
) -> FetchResult:
    """Fetch `url` with the validators stored for the source (ETag, Last-Modified and the body hash that catches
    feeds lying about them): a conditional GET, the one way every collector asks for its source's own URL."""
    row = state_row or {}
    return client.fetch(
        url,
        etag=row.get("etag"),
        last_modified=row.get("last_modified"),
        previous_hash=row.get("body_hash"),
        respect_robots=source.respect_robots,
        accept=accept,
    )
