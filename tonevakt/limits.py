"""Bounds on what a document may hold before it is stored: absurd dates and megabyte fields.

Sources are untrusted. A feed can date an item 1 January 1900 or 2999, or put a megabyte in a title. Neither may
break the weekly view (a week in 2999, or a dashboard that starts in 1900) nor bloat the database. So every
document passes through here on its way to storage (`nlp/enrich.py` calls `precut` before personal data is
redacted and `bound_document` after):

- a publication date before `EARLIEST` or more than `FUTURE_SLACK` after collection is replaced by the
  collection time, marked as estimated (`published_estimated`), and the original kept in
  `extra["date_out_of_range"]`;
- text that no database can store (a lone UTF-16 surrogate, from a JSON escape) gets U+FFFD in its place;
- a field longer than its limit is cut (at a word boundary where there is one) and ends with " …"; the original
  length is kept in `extra["truncated"]` (field → characters).

`precut` only makes redaction cheap on absurd input: it cuts far above the limit, so that the final cut (after
redaction) never leaves half of an identity number behind.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # models takes MAX_FILE_ROWS from here
    from tonevakt.models import Document

logger = logging.getLogger(__name__)

# Rows per feedback file unless a `files` source sets `max_rows` (config's and models.Source's default; an
# 81 KB XLSX can hold 500,000 rows): a file with more is refused (`collectors/files.py`).
MAX_FILE_ROWS = 100_000
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=2)
LIMITS: dict[str, int] = {
    "title": 1_000,
    "lead": 5_000,
    "text": 200_000,
    "author": 200,
    "outlet": 200,
}
TEXT_FIELDS = ("title", "lead", "text", "author", "outlet", "url", "app_version")
# A lone UTF-16 surrogate: JSON can escape one ("\ud83d", half an emoji), Python keeps it, and no UTF-8 database
# can store it (DuckDB refuses the whole batch).
_SURROGATE = re.compile("[\ud800-\udfff]")
PRECUT_MARGIN = 1_000
ELLIPSIS = " …"


def _cut(value: str, limit: int) -> str:
    """`value` cut to at most `limit` characters (ellipsis included), at a word boundary when one is near."""
    room = max(1, limit - len(ELLIPSIS))
    head = value[:room]
    space = head.rfind(" ")
    if space >= room * 0.8:
        head = head[:space]
    return head.rstrip() + ELLIPSIS


def stored_form(name: str, value: str) -> str:
    """`value` as field `name` is stored: cut to its limit (see `bound_document`). The relevance query runs on
    no more than this, so that an absurdly long summary costs no more than the stored one."""
    limit = LIMITS[name]
    return _cut(value, limit) if len(value) > limit else value


def _note_length(doc: Document, name: str, length: int) -> None:
    notes = doc.extra.setdefault("truncated", {})
    notes[name] = max(int(notes.get(name, 0)), length)


def _clean(value: Any) -> Any:
    """Strings with lone surrogates get U+FFFD in their place (recursively in lists and dicts)."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value) if _SURROGATE.search(value) else value
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    return value


def precut(doc: Document) -> None:
    """Replace text no database can store, and cut absurdly long fields to their limit plus a margin (before
    redaction, which is linear in length)."""
    for name in TEXT_FIELDS:
        value = getattr(doc, name)
        if isinstance(value, str) and _SURROGATE.search(value):
            setattr(doc, name, _clean(value))
    if doc.extra:
        doc.extra = _clean(doc.extra)
    for name, limit in LIMITS.items():
        value = getattr(doc, name)
        if isinstance(value, str) and len(value) > limit + PRECUT_MARGIN:
            _note_length(doc, name, len(value))
            setattr(doc, name, value[: limit + PRECUT_MARGIN])


def bound_document(doc: Document, now: datetime | None = None) -> list[str]:
    """Clamp the date and cut over-long fields in place; returns what was changed (empty when nothing)."""
    changed: list[str] = []
    for name, limit in LIMITS.items():
        value = getattr(doc, name)
        if isinstance(value, str) and len(value) > limit:
            _note_length(doc, name, len(value))
            setattr(doc, name, stored_form(name, value))
        if name in doc.extra.get("truncated", {}):
            changed.append(f"{name} cut from {doc.extra['truncated'][name]:,} characters")
    published = doc.published_at
    if published is not None:
        if published.tzinfo is None:
            published = published.replace(tzinfo=UTC)
        reference = doc.collected_at or now or datetime.now(UTC)
        if reference.tzinfo is None:
            reference = reference.replace(tzinfo=UTC)
        if published < EARLIEST or published > reference + FUTURE_SLACK:
            doc.extra["date_out_of_range"] = published.isoformat()
            doc.published_at = reference
            doc.published_estimated = True
            changed.append(
                f"publication date {published.date().isoformat()} out of range: collection time used"
            )
    if changed:
        logger.info("document %s (%s): %s", doc.id, doc.source_id, "; ".join(changed))
    return changed
