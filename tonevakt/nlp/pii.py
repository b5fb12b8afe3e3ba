"""Personal data redaction: Norwegian identity numbers, phone numbers and e-mail addresses.

Runs on every document before anything is stored (`nlp/enrich.py`). It has to be strict in both
directions: every identity number, phone number and address goes, while dates, amounts, years, order and
case numbers and postcodes stay, because the comments are read for their content.

- Fødselsnummer (DDMMYY + 3-digit individual number + 2 check digits), D-nummer (day + 40) and
  H-nummer (month + 40) are accepted only when the date part is a real date and both mod-11 check digits
  hold, so an 11-digit order number survives. A space, dot or hyphen between the date and the personal
  part is allowed ("010190 12345").
- Phone numbers: with a +47 / 0047 prefix in any common grouping; without a prefix in the Norwegian
  groupings "922 33 444" and "73 86 80 00"; eight digits in a row only for mobile numbers (4xx/9xx) or
  after a word such as "tlf", "telefon", "mobil" or "ring", and never after "ordre", "sak", "faktura"
  and the like.
- E-mail addresses, also written with "(at)" / "[at]".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

PLACEHOLDER_FNR = "[fødselsnummer]"
PLACEHOLDER_DNR = "[d-nummer]"
PLACEHOLDER_HNR = "[h-nummer]"
PLACEHOLDER_PHONE = "[telefon]"
PLACEHOLDER_EMAIL = "[e-post]"

_W1 = (3, 7, 6, 1, 8, 9, 4, 5, 2)
_W2 = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)

# 6 digits, an optional single separator, 5 digits; not part of a longer number.
_ID_RE = re.compile(r"(?<!\d)(?<!\d[ \u00a0.,-])(\d{6})[ \u00a0.\-]?(\d{5})(?!\d)(?![ \u00a0.,]\d)")

_SP = r"[ \u00a0]"
_PREFIX = r"\(?(?:\+|00)[ \u00a0]?47\)?[ \u00a0\-]?"
_GROUPED = (
    rf"\d{{3}}{_SP}\d{{2}}{_SP}\d{{3}}"  # 922 33 444
    rf"|\d{{2}}{_SP}\d{{2}}{_SP}\d{{2}}{_SP}\d{{2}}"  # 73 86 80 00
)
_ANY8 = _GROUPED + rf"|\d{{4}}{_SP}\d{{4}}|\d{{3}}{_SP}\d{{3}}{_SP}\d{{2}}|\d{{8}}"
_NOT_BEFORE = r"(?<![\d+])(?<!\d[ \u00a0.,\-])"
_NOT_AFTER = r"(?!\d)(?![ \u00a0.,\-]?\d)"
_PHONE_PREFIXED_RE = re.compile(rf"(?<![\w+(])(?:{_PREFIX})(?:{_ANY8}){_NOT_AFTER}")
_PHONE_GROUPED_RE = re.compile(rf"{_NOT_BEFORE}(?:{_GROUPED}){_NOT_AFTER}")
_PHONE_PLAIN_RE = re.compile(rf"{_NOT_BEFORE}(\d{{8}}){_NOT_AFTER}")

# Words that make a bare 8-digit number a phone number, or certainly not one (within a few words before it).
_PHONE_CUE = re.compile(
    r"\b(?:tlf|telefon\w*|mobil\w*|mob|ring\w*|sms|nummer\s+mitt|nr\s+mitt|tel|phone)\b\W*"
    r"(?:\w+\W+){0,3}$",
    re.IGNORECASE,
)
_NUMBER_CUE = re.compile(
    r"\b(?:ordre\w*|order|sak\w*|saks\w*|faktura\w*|kunde\w*|referanse\w*|ref|konto\w*|kontonr|journal\w*|"
    r"rekvisisjon\w*|bestilling\w*|avtale\w*|kvittering\w*|org\w*|id|løpe\w*|versjon|v|artikkel\w*|vare\w*|"
    r"kr|nok|kroner|beløp\w*)\b\W*(?:\w+\W+){0,2}$",
    re.IGNORECASE,
)

_EMAIL_RE = re.compile(
    r"(?<![\w.+\-])[\w.+\-]*\w(?:@|\s?[\[(]at[\])]\s?)[\w\-]+(?:\.[\w\-]+)*\.[a-zA-Z]{2,24}\b", re.IGNORECASE
)


def _checksum_ok(digits: str) -> bool:
    d = [int(c) for c in digits]
    k1 = 11 - sum(w * x for w, x in zip(_W1, d[:9], strict=True)) % 11
    k1 = 0 if k1 == 11 else k1
    if k1 == 10 or k1 != d[9]:
        return False
    k2 = 11 - sum(w * x for w, x in zip(_W2, d[:10], strict=True)) % 11
    k2 = 0 if k2 == 11 else k2
    return k2 != 10 and k2 == d[10]


def _date_ok(day: int, month: int, yy: int) -> bool:
    # The century follows from the individual number, but any century that makes a real date will do here.
    for century in (1900, 2000, 1800):
        try:
            date(century + yy, month, day)
            return True
        except ValueError:
            continue
    return False


def identity_number_kind(digits: str) -> str | None:
    """'fnr', 'dnr' or 'hnr' if 11 digits form a valid Norwegian identity number, else None."""
    if len(digits) != 11 or not digits.isdigit() or not _checksum_ok(digits):
        return None
    day, month, yy = int(digits[0:2]), int(digits[2:4]), int(digits[4:6])
    kind = "fnr"
    if day > 40:
        day, kind = day - 40, "dnr"
    elif month > 40:
        month, kind = month - 40, "hnr"
    if month > 80 and kind == "fnr":  # synthetic test numbers from Skatteetaten (month + 80)
        month -= 80
    return kind if _date_ok(day, month, yy) else None


_ID_PLACEHOLDER = {"fnr": PLACEHOLDER_FNR, "dnr": PLACEHOLDER_DNR, "hnr": PLACEHOLDER_HNR}


def _redact_ids(text: str) -> tuple[str, int]:
    count = 0

    def repl(m: re.Match[str]) -> str:
        nonlocal count
        kind = identity_number_kind(m.group(1) + m.group(2))
        if kind is None:
            return m.group(0)
        count += 1
        return _ID_PLACEHOLDER[kind]

    return _ID_RE.sub(repl, text), count


def _redact_phones(text: str) -> tuple[str, int]:
    count = 0

    def repl(m: re.Match[str]) -> str:
        nonlocal count
        count += 1
        return PLACEHOLDER_PHONE

    text = _PHONE_PREFIXED_RE.sub(repl, text)

    def grouped(m: re.Match[str]) -> str:
        nonlocal count
        before = text_ref[max(0, m.start() - 40) : m.start()]
        if m.group(0)[0] in "01" or _NUMBER_CUE.search(before):
            return m.group(0)
        count += 1
        return PLACEHOLDER_PHONE

    text_ref = text
    text = _PHONE_GROUPED_RE.sub(grouped, text)

    def plain(m: re.Match[str]) -> str:
        nonlocal count
        digits = m.group(1)
        before = text_ref[max(0, m.start() - 40) : m.start()]
        if digits[0] in "01" or _NUMBER_CUE.search(before):
            return digits
        if digits[0] in "49" or _PHONE_CUE.search(before):
            count += 1
            return PLACEHOLDER_PHONE
        return digits

    text_ref = text
    text = _PHONE_PLAIN_RE.sub(plain, text)
    return text, count


def _redact_emails(text: str) -> tuple[str, int]:
    new, n = _EMAIL_RE.subn(PLACEHOLDER_EMAIL, text)
    return new, n


@dataclass(frozen=True)
class Redacted:
    """A text with its personal data replaced by placeholders, and how many items were replaced."""

    text: str
    count: int


@dataclass(frozen=True)
class RedactedMapping:
    """A document's `extra` with every string redacted, and how many items were replaced."""

    values: dict[str, Any]
    count: int


def redact(text: str) -> Redacted:
    """Replace personal data with placeholders; the new text and how many items were replaced."""
    if not text:
        return Redacted(text, 0)
    total = 0
    for step in (_redact_emails, _redact_ids, _redact_phones):
        text, n = step(text)
        total += n
    return Redacted(text, total)


def redact_mapping(values: dict[str, Any]) -> RedactedMapping:
    """Redact every string (also inside lists and nested mappings) of a document's `extra`; keys are kept.

    Bare links are left alone; integers of 8 or 11 digits (spreadsheet cells) are checked as text."""
    total = 0

    def walk(v: Any) -> Any:
        nonlocal total
        if isinstance(v, str):
            if v.startswith(("http://", "https://")) and not any(c.isspace() for c in v):
                return v  # a link (search link, feed URL): its numbers are ids, not phone numbers
            r = redact(v)
            total += r.count
            return r.text
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [walk(x) for x in v]
        if isinstance(v, float) and v.is_integer() and 1e7 <= abs(v) < 1e11:
            v = int(v)
        if isinstance(v, int) and not isinstance(v, bool) and len(str(abs(v))) in (8, 11):
            # A bare number from a spreadsheet cell or JSON: as text, so the same rules apply.
            r = redact(str(v))
            total += r.count
            return r.text if r.count else v
        return v

    return RedactedMapping(walk(values), total)
