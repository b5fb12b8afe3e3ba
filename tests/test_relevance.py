"""Relevance: the boolean query language and the real config's query on Bokmål, Nynorsk and near-misses."""

from __future__ import annotations

import pytest

from tests.support.paths import REPO
from tonevakt.config import load_config
from tonevakt.errors import ConfigError
from tonevakt.nlp.boolean_query import parse_query, tokenize
from tonevakt.nlp.relevance import RelevanceMatcher, target_terms


@pytest.fixture(scope="module")
def matcher() -> RelevanceMatcher:
    """The query of the real config.yaml: what production uses."""
    return RelevanceMatcher.from_settings(load_config(REPO / "config.yaml").relevance)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Helseplattformen er forsinket igjen", ["Helseplattformen"]),
        ("Helseplattformens framtid er uviss", ["Helseplattformens"]),
        ("helseplattform-prosjektet koster mer enn ventet", ["helseplattform-prosjektet"]),
        ("Helse-plattformen svikter i Trondheim", ["Helse-plattformen"]),
        ("Dei tilsette seier Helseplattforma er ustabil", ["Helseplattforma"]),  # Nynorsk
        ("Helseplattforma sine problem er ikkje løyste", ["Helseplattforma"]),
        ("Innføringa av helseplattforma i Helse Møre og Romsdal", ["helseplattforma"]),
        ("HelsaMi-appen var nede i helga", ["HelsaMi-appen"]),
        ("Eg brukar Helsa Mi kvar veke", ["Helsa Mi"]),
        ("Visjonen «En innbygger – en journal» lever videre", ["En innbygger – en journal"]),
        ("Ein innbyggjar – ein journal var målet", ["Ein innbyggjar – ein journal"]),
        ("St. Olavs hospital tok i bruk Epic i fjor", ["St. Olavs", "Epic"]),
        ("Epic-systemet i kommunene svikter", ["Epic-systemet", "kommunene"]),
        ("HELSEPLATTFORMEN: nye feil", ["HELSEPLATTFORMEN"]),
    ],
)
def test_relevant_forms(matcher: RelevanceMatcher, text: str, expected: list[str]) -> None:
    assert matcher.match(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Plattformen ble lansert i går",  # another "plattform" word
        "Den nye plattformen for strømming er populær",
        "Oljeplattformen i Nordsjøen stenges",
        "Olje-plattformen ble evakuert",
        "Helse Midt-Norge har nytt budsjett",  # the health trust alone is not the health record
        "Helse Midt-Norge vil bygge nytt sykehus i Molde",
        "The new health platform in Norway is delayed",  # English
        "Epic Games lanserer nytt spill",  # the other Epic
        "Epic Games saksøker Apple om App Store",
        "En episk kamp på Lerkendal",
        "",
    ],
)
def test_near_misses(matcher: RelevanceMatcher, text: str) -> None:
    assert matcher.match(text) == []


def test_near_distance() -> None:
    m = RelevanceMatcher("epic NEAR/3 journal*")
    assert m.match("Epic og den nye journalen")  # 3 words between
    assert m.match("journalen fra Epic")  # either order
    assert not m.match("Epic var ikke det vi tenkte på da journalen kom")


def test_and_or_not_and_implicit_and() -> None:
    m = RelevanceMatcher('(helse* OR sykehus*) AND "nytt system" NOT spill*')
    assert m.match("Sykehuset får nytt system") == ["Sykehuset", "nytt system"]
    assert not m.match("Sykehuset får nytt system for spill")
    assert not m.match("Sykehuset får nye rutiner")
    m2 = RelevanceMatcher("helse plattform")  # adjacent terms: AND
    assert m2.match("plattform for helse") == ["plattform", "helse"]
    assert not m2.match("helse")
    m3 = RelevanceMatcher("helse* AND NOT midt")
    assert m3.match("helsetjenesten") and not m3.match("Helse Midt")


def test_operators_are_upper_case_only() -> None:
    # "and" is a Norwegian word (a duck): lower-case operators are ordinary words
    m = RelevanceMatcher("and or not")
    assert m.match("en and, or og not")
    assert not m.match("en and")


def test_min_score() -> None:
    m = RelevanceMatcher("helseplattform*", min_score=2)
    assert not m.match("Helseplattformen")
    assert m.match("Helseplattformen og helseplattformens kritikere") == [
        "Helseplattformen",
        "helseplattformens",
    ]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "empty"),
        ("(helse* OR sykehus", "never closed"),
        ("helse*)", "')' without a matching '('"),
        ('"en innbygger', "unclosed quote"),
        ("helse OR", "term is missing"),
        ("epic NEAR/x journal", "NEAR/n"),
        ("epic NEAR/0 journal", "NEAR/n"),
        ("epic NEAR/3 (NOT journal)", "NOT cannot be used inside NEAR"),
        ("NOT helse", "not only what to leave out"),
        ("he*lse", "only allowed at the end"),
        ("*", "needs at least one letter"),
        ("AND helse", "expected a term"),
    ],
)
def test_invalid_query_names_the_problem(query: str, message: str) -> None:
    with pytest.raises(ConfigError, match="query") as e:
        parse_query(query)
    assert message in str(e.value)


def test_invalid_query_in_config_is_a_config_error(make_settings) -> None:  # type: ignore[no-untyped-def]
    s = make_settings(relevance={"query": "(helseplattform* OR"})
    with pytest.raises(ConfigError, match="term is missing"):
        RelevanceMatcher.from_settings(s.relevance)


def test_tokenize_compounds_and_norwegian_letters() -> None:
    toks = tokenize("Sjukehus-økonomi på Ålesund")
    assert [t.norm for t in toks] == ["sjukehus", "økonomi", "på", "ålesund"]
    assert toks[0].joined == "sjukehusøkonomi"


def test_target_terms_skip_notes_and_use_matches() -> None:
    terms = target_terms(["(source: always relevant)", "Epic-systemet"])
    texts = [str(t) for t in terms]
    assert "helseplattform*" in texts and '"epic systemet"' in texts
    assert not any("source" in t for t in texts)
