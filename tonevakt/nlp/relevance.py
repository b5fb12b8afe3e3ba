"""Is a document about Helseplattformen? A boolean query from config (see `tonevakt.nlp.boolean_query`)."""

from __future__ import annotations

import logging

from tonevakt.config import RelevanceSettings
from tonevakt.nlp.boolean_query import Node, Term, normalise, parse_query, tokenize

logger = logging.getLogger(__name__)

# The target's own names, used to find the passages that speak of it when a document's stored matches do
# not say (documents from always-relevant sources, or matched before the query changed).
TARGET_TERMS: tuple[str, ...] = (
    "helseplattform*",
    "helseplattforma*",
    '"helse plattformen"',
    "helsami*",
    '"helsa mi"',
    '"en innbygger en journal"',
    '"ein innbyggjar ein journal"',
)


class RelevanceMatcher:
    """Built once from the settings; `match(text)` gives what matched (empty: not relevant)."""

    def __init__(self, query: str, min_score: int = 1) -> None:
        self.query = query
        self.tree: Node = parse_query(query)
        self.min_score = min_score

    @classmethod
    def from_settings(cls, settings: RelevanceSettings) -> RelevanceMatcher:
        return cls(settings.query, settings.min_score)

    def match(self, text: str) -> list[str]:
        """The words and phrases that made `text` relevant, in order of appearance, each once (empty: not
        relevant). With `min_score` > 1, at least that many matching places are needed."""
        tokens = tokenize(text)
        result = self.tree.evaluate(tokens)
        if not result.matched or len({(h.start, h.end) for h in result.hits}) < self.min_score:
            return []
        seen: set[str] = set()
        out: list[str] = []
        for h in sorted(result.hits, key=lambda h: (h.start, -h.end)):
            key = "".join(ch for ch in normalise(h.surface) if ch.isalnum())
            if key not in seen:
                seen.add(key)
                out.append(h.surface)
        return out

    def terms(self) -> list[Term]:
        """The query's positive terms (for finding the passages that mention the target)."""
        return self.tree.terms()


def target_terms(matched: list[str] | tuple[str, ...] = ()) -> list[Term]:
    """Terms for a document's target passages: what matched it (stored surface forms) plus the target's
    own names. Stored notes in parentheses, such as "(source: always relevant)", are skipped."""
    terms = [Term.parse(t) for t in TARGET_TERMS]
    for m in matched:
        if m.startswith("(") or not any(ch.isalnum() for ch in m):
            continue
        t = Term.parse(m)
        if t not in terms:
            terms.append(t)
    return terms
