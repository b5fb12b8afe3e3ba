"""Personal data redaction: unit cases and the synthetic patient-comment corpus (tests/fixtures/pii/)."""

from __future__ import annotations

import json

import pytest

from tests.support.paths import FIXTURES
from tonevakt.nlp.pii import (
    PLACEHOLDER_DNR,
    PLACEHOLDER_EMAIL,
    PLACEHOLDER_FNR,
    PLACEHOLDER_PHONE,
    Redacted,
    RedactedMapping,
    identity_number_kind,
    redact,
    redact_mapping,
)

CORPUS = FIXTURES / "pii" / "comments.jsonl"
PLACEHOLDERS = ("[fødselsnummer]", "[d-nummer]", "[h-nummer]", "[telefon]", "[e-post]")


def _with_check_digits(first9: str) -> str | None:
    w1, w2 = (3, 7, 6, 1, 8, 9, 4, 5, 2), (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)
    k1 = (11 - sum(a * int(b) for a, b in zip(w1, first9, strict=True)) % 11) % 11
    if k1 == 10:
        return None
    k2 = (11 - sum(a * int(b) for a, b in zip(w2, first9 + str(k1), strict=True)) % 11) % 11
    return None if k2 == 10 else first9 + str(k1) + str(k2)


def test_identity_number_checksums() -> None:
    assert identity_number_kind("15099947613") == "fnr"
    assert identity_number_kind("54114911987") == "dnr"  # day 54 = 14 + 40
    hnr = _with_check_digits("015290123")  # month 52 = 12 + 40
    assert hnr is not None and identity_number_kind(hnr) == "hnr"
    assert identity_number_kind("15099947614") is None  # last check digit off by one
    assert identity_number_kind("15099947603") is None  # first check digit wrong
    bad_date = _with_check_digits("310290123")  # 31 February
    assert bad_date is None or identity_number_kind(bad_date) is None
    assert identity_number_kind("1509994761") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("fnr 15099947613.", f"fnr {PLACEHOLDER_FNR}."),
        ("fnr 150999 47613.", f"fnr {PLACEHOLDER_FNR}."),
        ("fnr 150999.47613.", f"fnr {PLACEHOLDER_FNR}."),
        ("fnr 150999-47613.", f"fnr {PLACEHOLDER_FNR}."),
        ("f.nr.15099947613", f"f.nr.{PLACEHOLDER_FNR}"),
        ("(15099947613)", f"({PLACEHOLDER_FNR})"),
        ("tlf.92233444", f"tlf.{PLACEHOLDER_PHONE}"),
        ("D-nr 54114911987", f"D-nr {PLACEHOLDER_DNR}"),
        ("ring 922 33 444", f"ring {PLACEHOLDER_PHONE}"),
        ("ring 73 86 80 00 i dag", f"ring {PLACEHOLDER_PHONE} i dag"),
        ("ring +47 922 33 444", f"ring {PLACEHOLDER_PHONE}"),
        ("ring +4792233444", f"ring {PLACEHOLDER_PHONE}"),
        ("ring 0047 73 86 80 00", f"ring {PLACEHOLDER_PHONE}"),
        ("ring (+47) 9223 3444", f"ring {PLACEHOLDER_PHONE}"),
        ("mobil 92233444", f"mobil {PLACEHOLDER_PHONE}"),
        ("tlf: 73868000", f"tlf: {PLACEHOLDER_PHONE}"),
        ("skriv til ola.nordmann@example.no!", f"skriv til {PLACEHOLDER_EMAIL}!"),
        ("skriv til kari [at] example.com", f"skriv til {PLACEHOLDER_EMAIL}"),
        # Any country's number with its prefix (phonenumbers knows their plans; the +47-only regex missed them).
        ("svensk mobil +46 70 123 45 67.", f"svensk mobil {PLACEHOLDER_PHONE}."),
        ("ring 0045 20 12 34 56", f"ring {PLACEHOLDER_PHONE}"),
    ],
)
def test_redacts(text: str, expected: str) -> None:
    assert redact(text) == Redacted(expected, 1)


@pytest.mark.parametrize(
    "text",
    [
        "ordrenummer 15099947614",  # 11 digits, bad checksum
        "ordrenummer 91234567",  # 8 digits after an order cue
        "landline-like 73868000 without a cue",
        "kostet 12 500 000 kr",
        "1,2 milliarder kroner",
        "12 500 kr",
        "møte 12.03.2024 kl. 08.15",
        "7030 Trondheim",
        "i 2023 og 2024",
        "sak 2023/14587",
        "org.nr. 974 749 025",
        "1 234 567 oppslag",
        "ring 113 eller 116 117",
        "kostet 92 500 000 kr",  # a valid mobile number's digits, but not in a phone number's grouping
        "ring 43 57 80 69",  # a series no phone number has in Norway's numbering plan (phonenumbers)
        "+47 12 34 56 78",  # nor with a prefix
        "https://helsenorge.no/@konto og @StOlavs",
        "150999476131",  # 12 digits: not an identity number, not a phone number
        "0,15099947613 og 3.15099947613",  # decimals
        "2026-11-23T08:14:02 og 20261123",
        "",
    ],
)
def test_keeps(text: str) -> None:
    assert redact(text) == Redacted(text, 0)


# Not a timing assertion: a pattern that backtracks without bound would take minutes on this text; the timeout
# fails the test then instead of holding up the suite (redacting it takes well under a second).
@pytest.mark.timeout(60)
def test_redaction_is_idempotent_on_18000_words() -> None:
    text = "Kari (fnr 15099947613, tlf 922 33 444, kari@example.no) betalte 12 500 kr. " * 1500
    once = redact(text)
    assert once.count == 3 * 1500
    assert redact(once.text) == Redacted(once.text, 0)


def _kind(item: str) -> str | None:
    digits = item.replace(" ", "").replace(".", "").replace("-", "")
    return identity_number_kind(digits) if digits.isdigit() and len(digits) == 11 else None


def _corpus() -> list[dict]:
    return [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]


def measure_corpus() -> dict[str, int]:
    """found / missed / wrongly redacted over the synthetic corpus."""
    figures = {"comments": 0, "planted": 0, "found": 0, "missed": 0, "near_misses": 0, "wrongly_redacted": 0}
    for rec in _corpus():
        result = redact(rec["text"])
        out, n = result.text, result.count
        figures["comments"] += 1
        figures["planted"] += len(rec["personal"])
        figures["near_misses"] += len(rec["keep"])
        missed = [p for p in rec["personal"] if p in out]
        figures["missed"] += len(missed)
        figures["found"] += len(rec["personal"]) - len(missed)
        kept_wrong = [k for k in rec["keep"] if k not in out]
        # Anything redacted beyond the planted items is a wrong redaction too, listed or not.
        figures["wrongly_redacted"] += max(len(kept_wrong), n - (len(rec["personal"]) - len(missed)))
    return figures


def test_corpus_is_big_enough_and_well_formed() -> None:
    recs = _corpus()
    assert len(recs) >= 60
    assert len({r["id"] for r in recs}) == len(recs)
    kinds = " ".join(p for r in recs for p in r["personal"])
    assert "@" in kinds and "+47" in kinds and "0047" in kinds
    assert sum(1 for r in recs for p in r["personal"] if _kind(p) == "dnr") >= 5
    assert sum(1 for r in recs for p in r["personal"] if _kind(p) == "fnr") >= 12
    assert sum(len(r["keep"]) for r in recs) >= 40
    for r in recs:
        for item in (*r["personal"], *r["keep"]):
            assert item in r["text"], (r["id"], item)


def test_corpus_nothing_missed_nothing_wrongly_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    figures = measure_corpus()
    with capsys.disabled():
        print("\nPII corpus:", ", ".join(f"{k} {v}" for k, v in figures.items()))
    assert figures["missed"] == 0, figures
    assert figures["wrongly_redacted"] == 0, figures
    assert figures["found"] == figures["planted"] >= 60


def test_corpus_placeholders_name_the_kind() -> None:
    for rec in _corpus():
        out = redact(rec["text"]).text
        for p in rec["personal"]:
            kind = _kind(p)
            if kind == "fnr":
                assert PLACEHOLDER_FNR in out
            elif kind == "dnr":
                assert PLACEHOLDER_DNR in out
            elif "@" in p or "(at)" in p:
                assert PLACEHOLDER_EMAIL in out
            else:
                assert PLACEHOLDER_PHONE in out, (rec["id"], out)
        assert any(ph in out for ph in PLACEHOLDERS) == bool(rec["personal"])


def test_redact_mapping_for_document_extra() -> None:
    extra = {
        "Telefon": 92233444,
        "Fnr": 15099947613.0,
        "Avdeling": "Ortopedi",
        "Notat": ["ring 922 33 444"],
        "nested": {"epost": "kari@example.no"},
        "row": 3,
        "ok": True,
        "sum": 12500,
        "ordre": 92622439332,
    }
    got = redact_mapping(extra)
    assert got.count == 4
    assert got.values == {
        "Telefon": PLACEHOLDER_PHONE,
        "Fnr": PLACEHOLDER_FNR,
        "Avdeling": "Ortopedi",
        "Notat": [f"ring {PLACEHOLDER_PHONE}"],
        "nested": {"epost": PLACEHOLDER_EMAIL},
        "row": 3,
        "ok": True,
        "sum": 12500,
        "ordre": 92622439332,
    }
    assert redact_mapping({}) == RedactedMapping({}, 0)
    link = {"search_link": "https://news.example.com/rss/articles/92233444?oc=5"}
    assert redact_mapping(link) == RedactedMapping(link, 0)
