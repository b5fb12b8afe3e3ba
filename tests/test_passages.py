"""Norwegian sentence splitting and the selection of passages that speak of the target."""

from __future__ import annotations

import pytest

from tonevakt.models import Document
from tonevakt.nlp.passages import select_passages, split_sentences, windows
from tonevakt.nlp.relevance import target_terms


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Pasienter ved St. Olavs hospital venter. Det tar tid.",
            ["Pasienter ved St. Olavs hospital venter.", "Det tar tid."],
        ),
        ("Det gjelder bl.a. legene. De er slitne.", ["Det gjelder bl.a. legene.", "De er slitne."]),
        (
            "Møtet starter kl. 07.00 i morgen. Alle kommer.",
            ["Møtet starter kl. 07.00 i morgen.", "Alle kommer."],
        ),
        ("Det koster ca. 3 milliarder. Det er mye.", ["Det koster ca. 3 milliarder.", "Det er mye."]),
        ("Vi har f.eks. HelsaMi. Den virker.", ["Vi har f.eks. HelsaMi.", "Den virker."]),
        (
            "Fra 1. januar gjelder det. Ole K. Hansen er enig.",
            ["Fra 1. januar gjelder det.", "Ole K. Hansen er enig."],
        ),
        (
            "«Det er feil.» Han var sint! Hvorfor? Ingen vet.",
            ["«Det er feil.»", "Han var sint!", "Hvorfor?", "Ingen vet."],
        ),
        (
            "Tittel uten punktum\nFørste setning. Andre setning.",
            ["Tittel uten punktum", "Første setning.", "Andre setning."],
        ),
        ("", []),
    ],
)
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


def _doc(title: str, lead: str, text: str, matched: list[str] | None = None) -> Document:
    return Document(source_id="t", voice="media", title=title, lead=lead, text=text, matched=matched or [])


BODY = (
    "Været var fint. Mange møtte opp på St. Olavs hospital. Helseplattformen krasjet igjen i natt. "
    "Legene måtte skrive på papir. Kantinen serverte fisk. Ingen nevnte lønn. Busstreiken fortsetter. "
    "Det kom nye tall for turismen. Til slutt sa direktøren at HelsaMi fungerer godt. Han var fornøyd."
)


def test_passages_with_context_and_merge() -> None:
    d = _doc("Ny dag på sykehuset", "", BODY)
    got = select_passages(d, target_terms(), context=1, max_passages=8)
    assert got == [
        "Mange møtte opp på St. Olavs hospital. Helseplattformen krasjet igjen i natt. Legene måtte skrive på papir.",
        "Det kom nye tall for turismen. Til slutt sa direktøren at HelsaMi fungerer godt. Han var fornøyd.",
    ]
    assert select_passages(d, target_terms(), context=0, max_passages=1) == [
        "Helseplattformen krasjet igjen i natt."
    ]


def test_passages_use_what_matched() -> None:
    d = _doc(
        "Sykehuset",
        "",
        "Ingenting her. Epic-systemet i kommunene svikter. Slutt.",
        ["Epic-systemet", "kommunene"],
    )
    assert select_passages(d, target_terms(d.matched), context=0) == ["Epic-systemet i kommunene svikter."]


def test_title_and_lead_when_no_sentence_mentions_target() -> None:
    d = _doc("Nye problemer for journalsystemet", "Legene er frustrerte", "Ingen nevner navnet. Det er rart.")
    assert select_passages(d, target_terms(), context=1) == [
        "Nye problemer for journalsystemet. Legene er frustrerte"
    ]
    d2 = _doc("", "", "Første. Andre. Tredje. Fjerde.")
    assert select_passages(d2, target_terms(), context=1) == ["Første. Andre. Tredje."]


def test_windows() -> None:
    text = " ".join(f"w{i}" for i in range(50))
    assert windows("kort tekst", 20) == ["kort tekst"]
    parts = windows(text, 20, overlap=5)
    assert all(len(p.split()) <= 20 for p in parts)
    assert parts[0].split()[0] == "w0" and parts[-1].split()[-1] == "w49"
    assert parts[1].split()[0] == "w15"


def test_title_repeated_as_start_of_text_is_kept_once() -> None:
    d = _doc("HelsaMi er fantastisk. Takk!", "", "HelsaMi er fantastisk. Takk!")
    assert select_passages(d, target_terms(), context=1) == ["HelsaMi er fantastisk. Takk!"]
    d2 = _doc(
        "Helseplattformen", "Helseplattformen krasjet.", "Helseplattformen krasjet. Legene skrev på papir."
    )
    assert select_passages(d2, target_terms(), context=0) == ["Helseplattformen. Helseplattformen krasjet."]
