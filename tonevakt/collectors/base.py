"""What every collector hands back to the pass."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tonevakt.models import Document, FetchLogEntry, FetchResult, ItemOutcome, Source


@dataclass
class SourceOutcome:
    """One source's part of a pass: documents, the fetch log rows, and files imported (files kind)."""

    source: Source
    documents: list[Document] = field(default_factory=list)
    fetches: list[FetchLogEntry] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    imported_files: list[tuple[str, str, str, int]] = field(default_factory=list)  # hash, source, path, rows
    skipped: bool = False  # not due yet (backoff or interval), or not started before the pass deadline
    deferred: bool = False  # due, but the pass deadline came first: the source is first in the next pass
    # What became of each item tried or left over (article pages, feed pages): failed and untried ones are
    # remembered as pending items and handed back to the collector in a later pass.
    items: list[ItemOutcome] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def items_left(self) -> int:
        """Items this pass did not finish (failed or not tried): they wait for a later pass."""
        return sum(1 for i in self.items if not i.done)

    @property
    def failed(self) -> bool:
        return any(f.primary and f.status.failed for f in self.fetches)

    @property
    def reason(self) -> str:
        return next((f.reason for f in self.fetches if f.primary and f.status.failed), "")


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
