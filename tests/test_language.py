"""Language detection: a labelled set in six languages (tests/fixtures/language/labelled.tsv) and NoReC dev.

Measured (2026-11-25): 132/132 labelled sentences right (22 each of nb, nn, da, sv, de, en) and 8/8 'und';
on NoReC_sentence dev (sentences of 8+ tokens, mostly Bokmål reviews) 95.4 % come out nb or nn, the rest
mostly 'und' or 'en' (sentences built around English song and film titles). The labelled set was written
together with the word lists, so it is an optimistic figure; the floors below leave room.

Held-out set (tests/fixtures/language/heldout.tsv, 12 sentences per language written after the lists were
frozen): the first, blind run got 69/72 (Danish 9/12, three taken for Bokmål); after adding general Danish
cues (-igt, -heds-, -ede endings, common verbs) 71/72: one Danish sentence with no Danish-only word
("Projektet har overskredet budgettet ...") still ties with Bokmål and goes to Bokmål.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from tests.support.paths import FIXTURES, NOREC, needs_shared, shared_file
from tonevakt.nlp.language import LANGUAGES, detect_language, language_scores

LABELLED = FIXTURES / "language" / "labelled.tsv"
HELDOUT = FIXTURES / "language" / "heldout.tsv"


def _labelled(path: Path = LABELLED) -> list[tuple[str, str]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            lang, sentence = line.split("\t", 1)
            rows.append((lang, sentence))
    return rows


def test_labelled_set_accuracy(capsys: pytest.CaptureFixture[str]) -> None:
    rows = _labelled()
    total, right = Counter(), Counter()
    confusion: Counter[tuple[str, str]] = Counter()
    for lang, sentence in rows:
        got = detect_language(sentence)
        total[lang] += 1
        right[lang] += got == lang
        if got != lang:
            confusion[(lang, got)] += 1
    with capsys.disabled():
        print("\nlanguage accuracy:", {k: f"{right[k]}/{total[k]}" for k in total}, dict(confusion))
    for lang in LANGUAGES:
        assert total[lang] >= 20
        assert right[lang] / total[lang] >= 0.9, (lang, confusion)
    assert sum(right.values()) / sum(total.values()) >= 0.95
    # Danish and Swedish never pass as Bokmål; Nynorsk is not taken for Bokmål.
    assert confusion[("da", "nb")] == confusion[("sv", "nb")] == 0
    assert confusion[("nn", "nb")] <= 1


def test_heldout_set_accuracy() -> None:
    rows = _labelled(HELDOUT)
    results = [(lang, detect_language(sentence)) for lang, sentence in rows]
    right = sum(1 for lang, got in results if lang == got)
    assert len(rows) >= 72
    assert right / len(rows) >= 0.95, [r for r in results if r[0] != r[1]]
    assert sum(1 for lang, got in results if lang in ("da", "sv") and got == "nb") <= 1
    assert all(got == lang for lang, got in results if lang in ("nn", "sv", "de", "en"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Eg veit ikkje kva eg skal gjere med appen, han er berre tull.", "nn"),
        ("Korleis kan det vere så vanskeleg å få time på sjukehuset? Mykje betre før.", "nn"),
        ("Jeg vet ikke hva jeg skal gjøre med appen, den er bare tull.", "nb"),
        ("Jeg ved ikke, hvad jeg skal gøre med appen, den er noget værre bras.", "da"),
        ("Jag vet inte vad jag ska göra med appen, den är bara skräp.", "sv"),
        ("I don't know what to do with the app, it is rubbish.", "en"),
        ("Ich weiß nicht, was ich mit der App machen soll.", "de"),
        ("", "und"),
        ("HelsaMi", "und"),
        ("1234 5678 9999", "und"),
    ],
)
def test_examples(text: str, expected: str) -> None:
    assert detect_language(text) == expected, language_scores(text)


def test_long_text_costs_bounded_work() -> None:
    text = "Pasientene har ikke fått svar fra sykehuset etter at journalen ble flyttet. " * 2000
    assert detect_language(text) == "nb"
    # Only the first MAX_TOKENS words are weighed: whatever follows them changes nothing.
    tail = " The patients have not heard from the hospital since the record was moved." * 2000
    assert language_scores(text + tail) == language_scores(text)
    assert detect_language(text + tail) == "nb"


@needs_shared
def test_norec_dev_is_norwegian() -> None:
    dev = shared_file(NOREC / "3class" / "dev.json")
    sentences = [
        r["text"] for r in json.loads(dev.read_text(encoding="utf-8")) if len(r["text"].split()) >= 8
    ]
    counts = Counter(detect_language(s) for s in sentences)
    share = (counts["nb"] + counts["nn"]) / len(sentences)
    assert share >= 0.93, counts
    assert counts["da"] + counts["sv"] <= 0.01 * len(sentences), counts
