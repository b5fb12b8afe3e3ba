"""The hand-written code that issue 17 replaced with maintained libraries, kept verbatim (only renamed) so that
`bench_libraries.py` measures old and new side by side in one run. Not imported by Tonevakt.

- PII: `tonevakt/nlp/pii.py` before python-stdnum (identity numbers) and phonenumbers (phone numbers);
- robots.txt: `urllib.robotparser` as `collectors/http.py` used it before Protego;
- encodings: `collectors/files.py` `_decode` before charset-normalizer (`collectors/encoding.py`).
"""

from __future__ import annotations

import re
import urllib.robotparser
from datetime import date

# -- PII (tonevakt/nlp/pii.py before issue 17) -------------------------------------------------------------

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


def redact(text: str) -> tuple[str, int]:
    """Replace personal data with placeholders; return the new text and how many items were replaced."""
    if not text:
        return text, 0
    total = 0
    for step in (_redact_emails, _redact_ids, _redact_phones):
        text, n = step(text)
        total += n
    return text, total


# -- robots.txt (collectors/http.py before issue 17) --------------------------------------------------------


def robots_parser(text: str) -> urllib.robotparser.RobotFileParser:
    parser = urllib.robotparser.RobotFileParser("http://example.no/robots.txt")
    parser.parse(text.splitlines())
    return parser


def robots_allowed(parser: urllib.robotparser.RobotFileParser, url: str, agent: str) -> bool:
    return parser.can_fetch(agent, url)


# -- encodings (collectors/files.py _decode before issue 17) ------------------------------------------------


def decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            return data.decode("latin-1")
