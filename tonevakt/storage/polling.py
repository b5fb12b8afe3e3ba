"""When a source is next due: the backoff after failures, adaptive polling after news, and the health columns of
`sources` that one fetch changes. Pure functions: the database (`repository.record_fetch`) and the spool's view
of buffered batches (`spool.overlay_state`) both apply `source_after_fetch`, so they cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from tonevakt.models import FetchLogEntry

# A failing source is polled less often: its interval is multiplied by 2^failures, up to this cap.
MAX_BACKOFF = timedelta(hours=24)
# A source whose last fetch brought something new is polled up to twice as often as configured; a quiet one
# keeps its configured interval, which is the promise freshness is measured against (benchmarks/README.md).
BUSY_SPEEDUP = 2.0
# The columns of a source's row that `source_after_fetch` reads.
HEALTH_INPUTS = (
    "consecutive_failures",
    "unchanged_streak",
    "failing_since",
    "etag",
    "last_modified",
    "body_hash",
)
VALIDATORS = ("etag", "last_modified", "body_hash")


def backoff_delay(interval_minutes: int, failures: int) -> timedelta:
    """The backoff rule, for sources and for their pending items: interval × 2^failures, at most MAX_BACKOFF."""
    return min(timedelta(minutes=interval_minutes) * (2 ** min(max(failures, 0), 10)), MAX_BACKOFF)


def adapted_interval(interval_minutes: int, unchanged_streak: int) -> int:
    """The polling interval after `unchanged_streak` fetches in a row that brought no new document."""
    if unchanged_streak == 0:
        return max(1, round(interval_minutes / BUSY_SPEEDUP))
    return interval_minutes


def source_after_fetch(
    previous: Mapping[str, Any] | None, entry: FetchLogEntry, interval_minutes: int
) -> dict[str, Any]:
    """The columns of a source's `sources` row that a fetch of its own URL (`entry.primary`) sets, given the row
    before it (`HEALTH_INPUTS`; None for a source never seen).

    Failed: one failure more, due again after `backoff_delay`. Otherwise: no failures, due again after the
    adapted interval (half the configured one after a fetch with new documents), and the conditional-GET
    validators kept, replaced by the fetch's own, or forgotten when the fetch was `incomplete` (the next pass
    then reads the feed in full)."""
    prev = previous or {}
    now = entry.started_at
    if entry.status.failed:
        failures = int(prev.get("consecutive_failures") or 0) + 1
        return {
            "last_attempt_at": now,
            "last_error_at": now,
            "last_status": entry.status.value,
            "last_error": entry.reason,
            "consecutive_failures": failures,
            "failing_since": prev.get("failing_since") or now,
            "next_due_at": now + backoff_delay(interval_minutes, failures),
        }
    streak = 0 if entry.new_documents else int(prev.get("unchanged_streak") or 0) + 1
    effective = adapted_interval(interval_minutes, streak)
    out: dict[str, Any] = {
        "last_attempt_at": now,
        "last_success_at": now,
        "last_status": entry.status.value,
        "consecutive_failures": 0,
        "failing_since": None,
        "next_due_at": now + timedelta(minutes=effective),
        "unchanged_streak": streak,
        "effective_interval_minutes": effective,
    }
    for k in VALIDATORS:
        value = getattr(entry, k)
        out[k] = None if entry.incomplete else (value if value is not None else prev.get(k))
    return out
