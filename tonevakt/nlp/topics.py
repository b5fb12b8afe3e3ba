"""Topics and regions from the taxonomy in config.yaml (words, stems with *, phrases; see nlp/boolean_query.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tonevakt.config import TaxonomyEntry
from tonevakt.errors import ConfigError
from tonevakt.nlp.boolean_query import Term, tokenize


def _compile(kind: str, entries: Mapping[str, TaxonomyEntry]) -> dict[str, list[Term]]:
    out: dict[str, list[Term]] = {}
    for key, entry in entries.items():
        terms = []
        for raw in entry.terms:
            try:
                terms.append(Term.parse(raw))
            except ConfigError as e:
                raise ConfigError(f"{kind}.{key}: bad term {raw!r}: {e}") from e
        out[key] = terms
    return out


@dataclass(frozen=True)
class Tags:
    """The topic ids and region ids found in a text, in config order."""

    topics: list[str]
    regions: list[str]


class TopicTagger:
    """`tag(text)` gives the topic ids and region ids whose terms occur in the text (config order)."""

    def __init__(self, topics: Mapping[str, TaxonomyEntry], regions: Mapping[str, TaxonomyEntry]) -> None:
        self.topics = _compile("topics", topics)
        self.regions = _compile("regions", regions)

    @classmethod
    def from_settings(
        cls, topics: Mapping[str, TaxonomyEntry], regions: Mapping[str, TaxonomyEntry]
    ) -> TopicTagger:
        return cls(topics, regions)

    def tag(self, text: str) -> Tags:
        tokens = tokenize(text)

        def found(table: dict[str, list[Term]]) -> list[str]:
            return [key for key, terms in table.items() if any(t.hits(tokens) for t in terms)]

        return Tags(found(self.topics), found(self.regions))
