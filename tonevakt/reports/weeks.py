"""ISO weeks in Europe/Oslo: parsing '2026-W47', the last complete week, and the weeks before a week."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from tonevakt.dates import OSLO
from tonevakt.dates import week_of_date as week_of
from tonevakt.errors import ReportError

_WEEK_RE = re.compile(r"^(\d{4})-W(\d{2})$")
# Weeks a report or trend may name: far from datetime's years 1 and 9999, so that every week arithmetic (a
# trend's ten-year window, the alert baseline) stays in range, and wide enough that a window ending in a week
# with data (nothing before 2000 is stored, `limits.EARLIEST`) never reaches before the first year.
FIRST_YEAR, LAST_YEAR = 1900, 2999


def parse_week(week: str) -> tuple[int, int]:
    """'2026-W47' → (2026, 47); anything else is a ReportError that shows the expected form."""
    m = _WEEK_RE.match(week.strip())
    if not m:
        raise ReportError(f"week must look like 2026-W47 (got {week!r})")
    year, num = int(m.group(1)), int(m.group(2))
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise ReportError(
            f"week {week!r} is out of range: give a week from {FIRST_YEAR}-W01 to {LAST_YEAR}-W52"
        )
    try:
        date.fromisocalendar(year, num, 1)
    except ValueError as e:
        raise ReportError(f"{week!r} is not an ISO week: {e}") from e
    return year, num


def monday(week: str) -> date:
    year, num = parse_week(week)
    return date.fromisocalendar(year, num, 1)


def sunday(week: str) -> date:
    return monday(week) + timedelta(days=6)


def shift(week: str, weeks: int) -> str:
    """The week `weeks` weeks after (negative: before) `week`."""
    return week_of(monday(week) + timedelta(weeks=weeks))


def weeks_ending(week: str, count: int) -> list[str]:
    """The `count` weeks up to and including `week`, oldest first."""
    return [shift(week, -i) for i in range(count - 1, -1, -1)]


def last_complete_week(now: datetime | None = None, timezone: str = "Europe/Oslo") -> str:
    """The last ISO week (Monday–Sunday, local time in `timezone`) that has ended by `now` (a naive `now` is
    local time), e.g. Monday 2026-11-23 07:00 → '2026-W47'. The weekly report is about this week."""
    now = now or datetime.now(UTC)
    zone = OSLO if timezone == "Europe/Oslo" else ZoneInfo(timezone)
    local = now.astimezone(zone) if now.tzinfo else now
    return week_of(local.date() - timedelta(days=7))
