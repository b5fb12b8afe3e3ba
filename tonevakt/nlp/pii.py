"""Personal data redaction: Norwegian identity numbers, phone numbers and e-mail addresses.

Runs on every document before anything is stored (`nlp/enrich.py`). It has to be strict in both
directions: every identity number, phone number and address goes, while dates, amounts, years, order and
case numbers and postcodes stay, because the comments are read for their content.

- Fødselsnummer (DDMMYY + 3-digit individual number + 2 check digits), D-nummer (day + 40) and
  H-nummer (month + 40) are accepted only when the date part is a real date and both mod-11 check digits
  hold (python-stdnum's `stdnum.no.fodselsnummer`), so an 11-digit order number survives. A space, dot or
  hyphen between the date and the personal part is allowed ("010190 12345").
- Phone numbers are found by phonenumbers' `PhoneNumberMatcher` for Norway at leniency VALID (a number of
  the numbering plan: no 8-digit number starting with 0 or 1); the context decides which of them are phone
  numbers: with a + / 00 prefix always; without one in the Norwegian groupings "922 33 444" and
  "73 86 80 00"; eight digits in a row only for mobile numbers (4xx/9xx) or after a word such as "tlf",
  "telefon", "mobil" or "ring"; never after "ordre", "sak", "faktura" and the like, nor as part of a longer
  number. phonenumbers alone redacts amounts ("92 500 000 kr"), order numbers after "ordre" and dates at
  leniency VALID, and misses "922 33 444" at the stricter grouping leniencies; the context rules are ours
  (measured side by side in `benchmarks/bench_libraries.py`).
- E-mail addresses, also written with "(at)" / "[at]".
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from datetime import date
from typing import Any

import phonenumbers
from stdnum.exceptions import InvalidComponent, ValidationError
from stdnum.no import fodselsnummer

PLACEHOLDER_FNR = "[fødselsnummer]"
PLACEHOLDER_DNR = "[d-nummer]"
PLACEHOLDER_HNR = "[h-nummer]"
PLACEHOLDER_PHONE = "[telefon]"
PLACEHOLDER_EMAIL = "[e-post]"

# 6 digits, an optional single separator, 5 digits; not part of a longer number.
_ID_RE = re.compile(r"(?<!\d)(?<!\d[ \u00a0.,-])(\d{6})[ \u00a0.\-]?(\d{5})(?!\d)(?![ \u00a0.,]\d)")

_SP = r"[ \u00a0]"
# How an unprefixed Norwegian number is written: "922 33 444", "73 86 80 00", or eight digits in a row.
_GROUPED_RE = re.compile(rf"\d{{3}}{_SP}\d{{2}}{_SP}\d{{3}}|\d{{2}}{_SP}\d{{2}}{_SP}\d{{2}}{_SP}\d{{2}}")
_PLAIN_RE = re.compile(r"\d{8}")
_PREFIXED_RE = re.compile(r"\(?(?:\+|00)")  # "+47 …", "0047 …", "(+47) …", and other countries' codes
_DIGIT_BEFORE = re.compile(r"[\d+]$|\d[ \u00a0.,\-]$")  # part of a longer number
_WORD_BEFORE = re.compile(r"[\w+(]$")
_DIGIT_AFTER = re.compile(r"[ \u00a0.,\-]?\d")
# Cheap test before the matcher: eight digits with at most a few characters between them.
_MAYBE_PHONE = re.compile(r"\d(?:\D{0,4}\d){7}")
_WORD_START = re.compile(r"\s(?!.*\s)", re.DOTALL)  # the last whitespace in the searched range
_WORD_END = re.compile(r"\s")

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

_EMAIL_HINT = re.compile(r"@|at[\])]", re.IGNORECASE)  # what every address _EMAIL_RE finds contains
_EMAIL_RE = re.compile(
    r"(?<![\w.+\-])[\w.+\-]*\w(?:@|\s?[\[(]at[\])]\s?)[\w\-]+(?:\.[\w\-]+)*\.[a-zA-Z]{2,24}\b", re.IGNORECASE
)


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
    """'fnr', 'dnr' or 'hnr' if 11 digits form a valid Norwegian identity number, else None.

    python-stdnum checks the two mod-11 check digits. Its date check is stricter than redaction wants: it
    derives the century from the individual number and refuses birth dates in the future, so it would leave
    3 of the 27 identity numbers of tests/fixtures/pii/ in the text, and 15 % of the generated numbers whose
    individual number does not match the century (`benchmarks/bench_libraries.py`). A number that passes
    both check digits is redacted when any century makes its date real: the hand-written date check stays."""
    if len(digits) != 11 or not digits.isdecimal():
        return None
    digits = "".join(str(int(c)) for c in digits) if not digits.isascii() else digits  # "１５０９…" too
    try:
        fodselsnummer.validate(digits)
    except InvalidComponent:
        pass  # both check digits hold; the date is judged below
    except ValidationError:
        return None
    day, month, yy = int(digits[0:2]), int(digits[2:4]), int(digits[4:6])
    kind = "fnr"
    if day > 40:
        day, kind = day - 40, "dnr"
    elif month > 40:
        month, kind = month - 40, "hnr"
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


def _phone_to_redact(text: str, raw: str, start: int, end: int) -> bool:
    """Is this number, which phonenumbers found valid, a phone number in its context (see the docstring)?"""
    before = text[max(0, start - 40) : start]
    if _DIGIT_AFTER.match(text, end):
        return False
    if _PREFIXED_RE.match(raw):
        return not _WORD_BEFORE.search(before)
    if _DIGIT_BEFORE.search(before) or _NUMBER_CUE.search(before):
        return False
    if _GROUPED_RE.fullmatch(raw):
        return True
    if _PLAIN_RE.fullmatch(raw):
        return raw[0] in "49" or bool(_PHONE_CUE.search(before))
    return False  # another grouping without a prefix: "92 500 000" is an amount


def _windows(text: str) -> list[tuple[int, int]]:
    """The stretches of `text` around each run of eight digits (which every phone number has), widened to
    whole words and merged: the matcher reads these instead of the whole text, which costs it several times
    more on a news article (`benchmarks/bench_libraries.py`)."""
    spans: list[tuple[int, int]] = []
    for m in _MAYBE_PHONE.finditer(text):
        lo = _WORD_START.search(text, max(0, m.start() - 60), max(0, m.start() - 12))
        # After the run there may be up to seven more digits of the same number ("+46 70 123 45 67"); a window
        # that still cuts one leaves a digit right after the match, which is then not redacted (_DIGIT_AFTER).
        hi = _WORD_END.search(text, min(len(text), m.end() + 24), m.end() + 80)
        start = lo.end() if lo else max(0, m.start() - 60)
        end = hi.start() if hi else min(len(text), m.end() + 80)
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(end, spans[-1][1]))
        else:
            spans.append((start, end))
    return spans


def _redact_phones(text: str) -> tuple[str, int]:
    parts, last, count = [], 0, 0
    for start, end in _windows(text):
        # VALID: numbers of Norway's numbering plan (and, with a prefix, any country's); the default max_tries
        # (65,535 candidates) would stop finding numbers in a long stretch of digits.
        matcher = phonenumbers.PhoneNumberMatcher(
            text[start:end], "NO", leniency=phonenumbers.Leniency.VALID, max_tries=sys.maxsize
        )
        for m in matcher:
            m_start, m_end = start + m.start, start + m.end
            if _phone_to_redact(text, m.raw_string, m_start, m_end):
                parts += [text[last:m_start], PLACEHOLDER_PHONE]
                last, count = m_end, count + 1
    return ("".join(parts) + text[last:], count) if count else (text, 0)


def _redact_emails(text: str) -> tuple[str, int]:
    if not _EMAIL_HINT.search(text):  # most texts: a scan for '@' / "at]" instead of the address pattern
        return text, 0
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
