"""Enrichment of collected documents before storage: personal data, language, relevance, topics, regions."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import cached_property

from tonevakt.config import Settings
from tonevakt.limits import bound_document, precut
from tonevakt.models import Document
from tonevakt.nlp.language import detect_language
from tonevakt.nlp.pii import redact, redact_mapping
from tonevakt.nlp.relevance import RelevanceMatcher
from tonevakt.nlp.topics import TopicTagger

logger = logging.getLogger(__name__)


class Enricher:
    """Built once per pass from the settings; `enrich` annotates documents in place."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.always_relevant = {s.id for s in settings.sources if s.relevance == "always"}

    @cached_property
    def relevance(self) -> RelevanceMatcher:
        return RelevanceMatcher.from_settings(self.settings.relevance)

    @cached_property
    def tagger(self) -> TopicTagger:
        return TopicTagger.from_settings(self.settings.topics, self.settings.regions)

    def is_candidate(self, text: str) -> bool:
        """Does a title/summary look relevant enough to fetch the full text?"""
        return bool(self.relevance.match(text))

    def enrich(self, docs: Sequence[Document]) -> None:
        redacted = 0
        for d in docs:
            precut(d)  # absurdly long fields: bounded before redaction (tonevakt/limits.py)
            # Personal data goes first, so that nothing downstream (or stored) ever sees it.
            title, lead, text = redact(d.title), redact(d.lead), redact(d.text)
            d.title, d.lead, d.text = title.text, lead.text, text.text
            n = title.count + lead.count + text.count
            if d.author and d.voice == "patient":
                author = redact(d.author)
                d.author, n = author.text, n + author.count
            if d.extra:  # unmapped file columns, feed extras: redacted like the text
                extra = redact_mapping(d.extra)
                d.extra, n = extra.values, n + extra.count
            bound_document(d)  # absurd dates and over-long fields, after redaction
            d.redactions += n
            redacted += n
            full = "\n".join(x for x in (d.title, d.lead, d.text) if x)
            if d.language is None:
                d.language = detect_language(full)
            if d.relevant is None:
                d.matched = self.relevance.match(full)
                d.relevant = bool(d.matched)
                if not d.relevant and d.source_id in self.always_relevant:
                    d.relevant, d.matched = True, ["(source: always relevant)"]
            tags = self.tagger.tag(full)
            d.topics, d.regions = tags.topics, tags.regions
            if d.region and d.region not in d.regions:
                d.regions = [*d.regions, d.region]
        if redacted:
            logger.info("redacted %d personal data items in %d documents", redacted, len(docs))
