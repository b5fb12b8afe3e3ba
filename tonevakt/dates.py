"""Dates and ISO weeks, one place for both.

Date parsing, shared by the collectors and the importer: everything becomes timezone-aware. ISO weeks in
Europe/Oslo: the one spelling of a week ('2026-W47'), parsing it, the last complete week (the weekly report's
week, also for the scheduler) and the arithmetic on weeks (shifting, the weeks before a week)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dateutil import parser as dateutil_parser

from tonevakt.errors import ReportError

OSLO = ZoneInfo("Europe/Oslo")
_NO_DATE = re.compile(r"^\s*(\d{1,2})\.(\d{1,2})\.(\d{4})(?:[ kl.]+(\d{1,2})[:.](\d{2}))?\s*$")


def aware(dt: datetime, default_tz: ZoneInfo = OSLO) -> datetime:
    """A naive datetime is taken as Oslo time; the result is always timezone-aware (UTC)."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=default_tz)
    return dt.astimezone(UTC)


def parse_date(value: object) -> datetime | None:
    """Parse ISO 8601, RFC 822, Norwegian `dd.mm.yyyy [kl. hh:mm]`, Excel datetimes. None if unparseable."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return aware(value)
    if isinstance(value, date):
        return aware(datetime.combine(value, time(12, 0)))
    s = str(value).strip()
    m = _NO_DATE.match(s)
    if m:
        d, mo, y, hh, mm = m.groups()
        try:
            return aware(datetime(int(y), int(mo), int(d), int(hh or 12), int(mm or 0)))
        except ValueError:
            return None
    try:
        return aware(dateutil_parser.parse(s, dayfirst=not re.match(r"^\d{4}-", s)))
    except (ValueError, OverflowError, TypeError):
        return None


def week_of_date(d: date) -> str:
    """The ISO week of a calendar date, e.g. '2026-W47': the one spelling of a week."""
    y, w, _ = d.isocalendar()
    return f"{y}-W{w:02d}"


def iso_week(dt: datetime) -> str:
    """ISO week in Europe/Oslo, e.g. '2026-W47'."""
    return week_of_date(dt.astimezone(OSLO).date())


def week_sql(column: str) -> str:
    """The same ISO week (Europe/Oslo) as a DuckDB expression on a timestamp column, for SQL written in Python
    (the migrations' views spell it out themselves)."""
    return f"strftime(timezone('Europe/Oslo', {column}), '%G-W%V')"


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


def week_monday(week: str) -> date:
    """The Monday of a week ('2026-W47' → 2026-11-16)."""
    year, num = parse_week(week)
    return date.fromisocalendar(year, num, 1)


def week_sunday(week: str) -> date:
    """The Sunday of a week ('2026-W47' → 2026-11-22)."""
    return week_monday(week) + timedelta(days=6)


def shift_week(week: str, weeks: int) -> str:
    """The week `weeks` weeks after (negative: before) `week`."""
    return week_of_date(week_monday(week) + timedelta(weeks=weeks))


def weeks_ending(week: str, count: int) -> list[str]:
    """The `count` weeks up to and including `week`, oldest first."""
    return [shift_week(week, -i) for i in range(count - 1, -1, -1)]


def last_complete_week(now: datetime | None = None, timezone: str = "Europe/Oslo") -> str:
    """The last ISO week (Monday–Sunday, local time in `timezone`) that has ended by `now` (a naive `now` is
    local time), e.g. Monday 2026-11-23 07:00 → '2026-W47'. The weekly report is about this week."""
    now = now or datetime.now(UTC)
    local = now.astimezone(ZoneInfo(timezone)) if now.tzinfo else now
    return week_of_date(local.date() - timedelta(days=7))


# Ten years of weeks: the longest window a trend shows and the span of the dashboard's charts ("Alle uker").
MAX_WEEKS = 520
