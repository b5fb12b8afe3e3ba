"""Norwegian number and date formats for the report: decimal comma, narrow no-break space between
thousands, a real minus sign (−0,12), dates like «23. november 2026» and weeks like «uke 47»."""

from __future__ import annotations

import re
from datetime import date, datetime

from tonevakt.dates import OSLO

MINUS = "\u2212"
THIN_NBSP = "\u202f"  # narrow no-break space: the thousands separator
NBSP = "\u00a0"

MONTHS = (
    "januar",
    "februar",
    "mars",
    "april",
    "mai",
    "juni",
    "juli",
    "august",
    "september",
    "oktober",
    "november",
    "desember",
)
MONTHS_SHORT = (
    "jan.",
    "feb.",
    "mars",
    "april",
    "mai",
    "juni",
    "juli",
    "aug.",
    "sep.",
    "okt.",
    "nov.",
    "des.",
)

# Control characters (NUL, ESC, …, DEL, C1) are no text: HTML forbids them, a NUL cuts a CSV short in some tools
# and a PDF font has no glyph for them. Tab, line feed and carriage return are kept.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` without control characters: applied where the report leaves the program (HTML, CSV)."""
    return _CONTROL.sub("", text)


VOICE_LABELS = {
    "media": "Medier",
    "union": "Fagforeninger",
    "patient": "Pasienter",
    "official": "Offisielle",
    "all": "Alle stemmer",
}


def _group(digits: str) -> str:
    out = []
    while len(digits) > 3:
        out.insert(0, digits[-3:])
        digits = digits[:-3]
    out.insert(0, digits)
    return THIN_NBSP.join(out)


def number(value: float | int | None, decimals: int = 0, sign: bool = False, missing: str = "–") -> str:
    """1234.5 → '1 234,5' (narrow no-break space), -0.12 → '−0,12'; sign=True gives '+0,12'."""
    if value is None:
        return missing
    v = round(float(value), decimals)
    if v == 0:
        v = 0.0  # no '−0,00'
    text = f"{abs(v):.{decimals}f}"
    whole, _, frac = text.partition(".")
    out = _group(whole) + ("," + frac if frac else "")
    if v < 0:
        return MINUS + out
    return ("+" + out) if sign and v > 0 else out


def tone(value: float | None, sign: bool = False) -> str:
    """A tone in [−1, 1] with two decimals."""
    return number(value, 2, sign=sign)


def change(value: float | None) -> str:
    """A signed change: '+0,05', '−0,12', '0,00'."""
    return number(value, 2, sign=True)


def percent(share: float | None, decimals: int = 0) -> str:
    """0.253 → '25 %' (no-break space before the sign, as Norwegian typography wants)."""
    if share is None:
        return "–"
    return number(share * 100, decimals) + NBSP + "%"


def interval(low: float | None, high: float | None) -> str:
    """'−0,31 til −0,05'; '–' when the interval is undefined (n < 2)."""
    if low is None or high is None:
        return "–"
    return f"{tone(low)} til {tone(high)}"


def percent_interval(low: float | None, high: float | None) -> str:
    """'12 til 31 %': a 95 % interval of a share; '–' when there is none."""
    if low is None or high is None:
        return "–"
    return f"{number(low * 100)} til {percent(high)}"


def _oslo_date(value: date | datetime) -> date:
    if isinstance(value, datetime):
        return value.astimezone(OSLO).date() if value.tzinfo else value.date()
    return value


def long_date(value: date | datetime | None) -> str:
    """'23. november 2026' (Oslo time for datetimes)."""
    if value is None:
        return "–"
    d = _oslo_date(value)
    return f"{d.day}. {MONTHS[d.month - 1]} {d.year}"


def short_date(value: date | datetime | None) -> str:
    """'23. nov.' (Oslo time for datetimes)."""
    if value is None:
        return "–"
    d = _oslo_date(value)
    return f"{d.day}. {MONTHS_SHORT[d.month - 1]}"


def date_time(value: datetime | None) -> str:
    """'23. november 2026 kl. 07.00' in Oslo time."""
    if value is None:
        return "–"
    local = value.astimezone(OSLO) if value.tzinfo else value
    return f"{long_date(local)} kl.{NBSP}{local:%H.%M}"


def week_label(week: str) -> str:
    """'2026-W47' → 'uke 47'."""
    return "uke " + str(int(week.split("-W")[1]))


def week_label_year(week: str) -> str:
    """'2026-W47' → 'uke 47, 2026'."""
    year, _, w = week.partition("-W")
    return f"uke {int(w)}, {year}"


def voice_label(voice: str) -> str:
    return VOICE_LABELS.get(voice, voice)


def plural(n: int, one: str, many: str) -> str:
    return f"{number(n)} {one if n == 1 else many}"
