"""Topics and regions from the taxonomy (test config and the real config.yaml)."""

from __future__ import annotations

import pytest

from tests.support.paths import REPO
from tonevakt.config import Settings, TaxonomyEntry, load_config
from tonevakt.errors import ConfigError
from tonevakt.nlp.topics import Tags, TopicTagger


def test_tags_from_test_config(settings: Settings) -> None:
    tagger = TopicTagger.from_settings(settings.topics, settings.regions)
    tags = tagger.tag("Helseplattformen koster milliarder, og feilene rammer St. Olavs hospital i Trondheim.")
    assert tags == Tags(topics=["costs", "faults"], regions=["trondelag"])
    assert tagger.tag("Været er fint i dag.") == Tags([], [])


@pytest.fixture(scope="module")
def real() -> TopicTagger:
    s = load_config(REPO / "config.yaml")
    return TopicTagger.from_settings(s.topics, s.regions)


@pytest.mark.parametrize(
    ("text", "topics", "regions"),
    [
        ("Budsjettet sprekk: Helseplattformen får ny prislapp", ["costs"], []),
        ("Innføringa i Helse Møre og Romsdal blir utsett", ["rollout"], ["more_og_romsdal"]),
        (
            "Helsetilsynet granskar uønskte hendingar ved sjukehuset i Ålesund",
            ["patient_safety"],
            ["more_og_romsdal", "national"],
        ),
        ("Sykepleierforbundet: de ansatte jobber mye overtid", ["staff"], []),
        ("Fastlegene i kommunene får ikke sendt henvisninger", ["municipalities"], []),
        ("Pasientene får ikke innsyn i journalen i HelsaMi", ["patient_access"], []),
        ("Ny systemfeil ved St. Olavs hospital", ["faults"], ["trondelag"]),
        ("Helse- og omsorgsdepartementet ber om svar", [], ["national"]),
    ],
)
def test_real_taxonomy(real: TopicTagger, text: str, topics: list[str], regions: list[str]) -> None:
    assert real.tag(text) == Tags(topics, regions)


def test_bad_term_names_topic() -> None:
    with pytest.raises(ConfigError, match=r"topics\.costs: bad term 'bud\*sjett'"):
        TopicTagger({"costs": TaxonomyEntry(label="Kostnader", terms=["bud*sjett"])}, {})
