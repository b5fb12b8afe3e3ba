"""The passages of a document that speak of the target: Norwegian sentence splitting and selection.

A passage is a sentence that mentions Helseplattformen (or what the relevance query matched) with
`context` sentences on each side; overlapping passages are merged. When no sentence mentions the target, the
title and lead are the passage (or the first sentences, without them). Long passages are cut into windows.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from tonevakt.models import Document
from tonevakt.nlp.boolean_query import Term, tokenize

# Abbreviations after which a full stop does not end a sentence (casefolded, without the final dot).
ABBREVIATIONS = frozenset(
    [
        "st",
        "bl",
        "bl.a",
        "ca",
        "kl",
        "f.eks",
        "eks",
        "dvs",
        "osv",
        "mv",
        "m.m",
        "o.l",
        "jf",
        "jfr",
        "nr",
        "pga",
        "p.g.a",
        "evt",
        "ev",
        "inkl",
        "ekskl",
        "mht",
        "m.h.t",
        "tlf",
        "ifm",
        "iflg",
        "ift",
        "vs",
        "mrd",
        "mill",
        "dr",
        "prof",
        "adv",
        "ass",
        "avd",
        "sen",
        "kap",
        "pkt",
        "ref",
        "red",
        "sst",
        "stud",
        "tidl",
        "t.o.m",
        "f.o.m",
        "o.a",
        "ol",
        "mfl",
        "m.fl",
        "a.s",
        "asa",
        "nov",
        "des",
        "jan",
        "feb",
        "mar",
        "apr",
        "aug",
        "sep",
        "sept",
        "okt",
        "ordf",
        "jr",
        "sr",
        "mr",
        "mrs",
        "ms",
        "bla",
    ]
)
_BOUNDARY_RE = re.compile(r"([.!?…]+)([\"'»”’)\]]*)(\s+)")
_OPENERS = "\"'«“‘([–—-"


def split_sentences(text: str) -> list[str]:
    """Split Norwegian text into sentences. Line breaks always end a sentence; a full stop does not after
    an abbreviation (St. Olavs, bl.a., kl. 07.00, ca., f.eks.), an initial, or before a lower-case word."""
    out: list[str] = []
    for line in re.split(r"\s*\n\s*", text):
        line = line.strip()
        if not line:
            continue
        start = 0
        for m in _BOUNDARY_RE.finditer(line):
            end = m.end(2)
            rest = line[m.end() :]
            if not rest:
                continue
            if not _ends_sentence(line[start : m.start()], m.group(1), rest):
                continue
            sentence = line[start:end].strip()
            if sentence:
                out.append(sentence)
            start = m.end()
        tail = line[start:].strip()
        if tail:
            out.append(tail)
    return out


def _ends_sentence(before: str, punct: str, rest: str) -> bool:
    nxt = rest.lstrip(_OPENERS + " ")
    if not nxt:
        return False
    first = nxt[0]
    if first.islower():
        return False  # "ca. ti", "kl. ni", "1. januar"
    if punct != ".":
        return True  # ! ? … end a sentence before a capital or a digit
    word = before.rsplit(None, 1)[-1] if before.strip() else ""
    word = word.lstrip(_OPENERS).casefold()
    if word in ABBREVIATIONS:
        return False
    if len(word) == 1 and word.isalpha():
        return False  # an initial: "Ole K. Hansen"
    if word.isdigit() and first.isdigit():
        return False  # "kl. 07. 30" and similar
    return bool(first.isupper() or first.isdigit())


def mentions(sentence: str, terms: Sequence[Term]) -> bool:
    tokens = tokenize(sentence)
    return any(t.hits(tokens) for t in terms)


def select_passages(
    doc: Document, terms: Sequence[Term], context: int = 1, max_passages: int = 8
) -> list[str]:
    """The passages of `doc` that speak of the target (see the module docstring)."""
    sentences: list[str] = []
    title, lead, text = (x.strip() for x in (doc.title or "", doc.lead or "", doc.text or ""))
    # Feeds and imports often repeat the title (or lead) as the start of the text: keep one copy.
    if lead and _repeats(lead, text):
        lead = ""
    if title and _repeats(title, lead or text):
        title = ""
    if title:
        sentences.append(title)
    for part in (lead, text):
        for s in split_sentences(part):
            if not sentences or s != sentences[-1]:
                sentences.append(s)
    if not sentences:
        return []
    hits = [i for i, s in enumerate(sentences) if mentions(s, terms)]
    if not hits:
        head = [x for x in (title, lead) if x]
        if head:
            return [_join(head)]
        return [_join(sentences[: 1 + 2 * context])]
    spans: list[list[int]] = []
    for i in hits:
        lo, hi = max(0, i - context), min(len(sentences) - 1, i + context)
        if spans and lo <= spans[-1][1] + 1:
            spans[-1][1] = max(spans[-1][1], hi)
        else:
            spans.append([lo, hi])
    return [_join(sentences[lo : hi + 1]) for lo, hi in spans[:max_passages]]


def _squash(text: str) -> str:
    return " ".join(text.split()).casefold()


def _repeats(head: str, body: str) -> bool:
    """Is `head` the same as the first sentence(s) of `body`?"""
    want = _squash(head)
    got = ""
    for sentence in split_sentences(body)[:8]:
        got = f"{got} {_squash(sentence)}".strip()
        if got == want:
            return True
        if len(got) >= len(want):
            return False
    return False


def _join(sentences: Sequence[str]) -> str:
    out = ""
    for s in sentences:
        if out and out[-1] not in ".!?…:;»\"'":
            out += "."
        out = f"{out} {s}" if out else s
    return out


def windows(passage: str, max_words: int, overlap: int = 8) -> list[str]:
    """Cut a long passage into windows of at most `max_words` words (overlapping by `overlap`)."""
    words = passage.split()
    if len(words) <= max_words:
        return [passage]
    step = max(1, max_words - overlap)
    out = []
    for i in range(0, len(words), step):
        out.append(" ".join(words[i : i + max_words]))
        if i + max_words >= len(words):
            break
    return out
