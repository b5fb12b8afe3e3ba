"""Date parsing shared by the collectors and the importer: everything becomes timezone-aware."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from dateutil import parser as dateutil_parser

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
    """The ISO week of a calendar date, e.g. '2026-W47': the one spelling of a week (reports/weeks.py does the
    arithmetic on weeks)."""
    y, w, _ = d.isocalendar()
    return f"{y}-W{w:02d}"


def iso_week(dt: datetime) -> str:
    """ISO week in Europe/Oslo, e.g. '2026-W47'."""
    return week_of_date(dt.astimezone(OSLO).date())
