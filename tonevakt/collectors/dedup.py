"""Near-copy grouping: syndicated texts (one NTB agency story in several papers) become one story.

Exact duplicates are handled before this: documents with the same canonical URL get the same id
(`models.document_id`) and are stored once. Here, documents with different URLs whose text is nearly the
same (a different headline or first paragraph, the same body) share a `story_id`, so counts can count a
story once (the `story_tone` view).

Method: word 3-shingles of the normalised title + text (first `MAX_WORDS` words), a 128-value MinHash
signature per document, LSH banding (32 bands of 4 rows) to find candidates without comparing all pairs,
and the estimated Jaccard similarity (share of equal signature values) ≥ `THRESHOLD` to accept one.
"""

from __future__ import annotations

import logging
import re
import zlib
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from tonevakt.models import Document

logger = logging.getLogger(__name__)

SHINGLE = 3
NUM_PERM = 128
BANDS = 32
ROWS = NUM_PERM // BANDS
THRESHOLD = 0.6
MIN_SHINGLES = 6  # shorter texts (a bare headline) are never grouped: too little to tell a copy
MAX_WORDS = 400

# Universal hashing (a*x + b) mod p with p a prime just above 2^32: x, a, b < 2^32 keep a*x + b below 2^64,
# so it is exact in uint64 (a larger p such as 2^61 - 1 would barely wrap and make the minimum follow the
# smallest x instead of a random permutation).
_PRIME = np.uint64(4294967311)
_MASK32 = (1 << 32) - 1
_rng = np.random.default_rng(20261125)
_A = _rng.integers(1, _MASK32, size=NUM_PERM, dtype=np.uint64)
_B = _rng.integers(0, _MASK32, size=NUM_PERM, dtype=np.uint64)
_WORD_RE = re.compile(r"[^\W_]+")


def shingles(text: str) -> set[int]:
    """32-bit hashes of the word 3-shingles of the normalised text."""
    words = _WORD_RE.findall(text.casefold())[:MAX_WORDS]
    if len(words) < SHINGLE:
        return set()
    return {
        zlib.crc32(" ".join(words[i : i + SHINGLE]).encode("utf-8")) & _MASK32
        for i in range(len(words) - SHINGLE + 1)
    }


def signature(hashes: set[int]) -> np.ndarray:
    """MinHash signature (NUM_PERM values) of a shingle set; (a*x + b) mod p, exact in 64-bit integers."""
    x = np.fromiter(hashes, dtype=np.uint64, count=len(hashes))
    values = (np.outer(x, _A) + _B) % _PRIME
    return values.min(axis=0)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Estimated Jaccard similarity of two signatures."""
    return float(np.count_nonzero(a == b)) / NUM_PERM


class StoryIndex:
    """MinHash LSH index of documents with their story ids."""

    def __init__(self) -> None:
        self._buckets: list[dict[bytes, list[int]]] = [defaultdict(list) for _ in range(BANDS)]
        self._signatures: list[np.ndarray] = []
        self._stories: list[str] = []
        self._by_id: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._stories)

    def story_of(self, doc_id: str) -> str | None:
        return self._by_id.get(doc_id)

    def add(self, doc_id: str, story_id: str, sig: np.ndarray | None) -> None:
        self._by_id.setdefault(doc_id, story_id)
        if sig is None:
            return
        idx = len(self._stories)
        self._signatures.append(sig)
        self._stories.append(story_id)
        for band, key in enumerate(_band_keys(sig)):
            self._buckets[band][key].append(idx)

    def best_match(self, sig: np.ndarray) -> tuple[str, float] | None:
        """The story of the most similar indexed document at or above THRESHOLD (earliest on a tie)."""
        candidates: set[int] = set()
        for band, key in enumerate(_band_keys(sig)):
            candidates.update(self._buckets[band].get(key, ()))
        best: tuple[float, int] | None = None
        for idx in sorted(candidates):
            sim = similarity(sig, self._signatures[idx])
            if sim >= THRESHOLD and (best is None or sim > best[0]):
                best = (sim, idx)
        if best is None:
            return None
        return self._stories[best[1]], best[0]


def _band_keys(sig: np.ndarray) -> list[bytes]:
    return [sig[b * ROWS : (b + 1) * ROWS].tobytes() for b in range(BANDS)]


def _signature_of(text: str) -> np.ndarray | None:
    hashes = shingles(text)
    return signature(hashes) if len(hashes) >= MIN_SHINGLES else None


def document_key(doc: Document) -> str:
    """The text compared for near-copies: title and text (the lead is usually inside either)."""
    return f"{doc.title} {doc.text}"


def assign_stories(docs: list[Document], recent: Sequence[tuple[str, str, str]]) -> None:
    """Set each document's `story_id`: the story of a stored or earlier near-copy, else its own id.

    `recent` holds (document id, story id, title + text) of stored documents of the last weeks. A document
    already stored keeps its story. Documents are matched in the order given, so the first copy of a
    story in a batch founds it and later copies join it.
    """
    index = StoryIndex()
    for doc_id, story_id, text in recent:
        if index.story_of(doc_id) is None:
            index.add(doc_id, story_id or doc_id, _signature_of(text or ""))
    grouped = 0
    for doc in docs:
        known = index.story_of(doc.id)
        if known is not None:
            doc.story_id = known
            continue
        sig = _signature_of(document_key(doc))
        match = index.best_match(sig) if sig is not None else None
        if match is not None:
            doc.story_id = match[0]
            grouped += 1
        else:
            doc.story_id = doc.id
        index.add(doc.id, doc.story_id, sig)
    if grouped:
        logger.info("grouped %d of %d documents into existing stories (near-copies)", grouped, len(docs))
