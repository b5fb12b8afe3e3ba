"""Near-copy grouping: syndicated texts (one NTB agency story in several papers) become one story.

Exact duplicates are handled before this: documents with the same canonical URL get the same id
(`models.document_id`) and are stored once. Here, documents with different URLs whose text is nearly the
same (a different headline or first paragraph, the same body) share a `story_id`, so counts can count a
story once (the `story_tone` view).

Method: word 3-shingles of the normalised title + text (first `MAX_WORDS` words), a 128-value MinHash
signature per document, LSH banding (32 bands of 4 rows) to find candidates without comparing all pairs
(bounded work per document: see `StoryIndex`), and the estimated Jaccard similarity (share of equal signature
values) ≥ `THRESHOLD` to accept one. Words are hashed with CRC-32, the same in every process, so a signature
computed once is stored with its document (`storage/story_index.py`) and never recomputed.

Pure: texts, signatures and records in, story ids out. It runs at store time: `batch.store_outcomes` signs
the new documents, asks `story_index` for the stored documents of the last `STORY_WINDOW` that share an LSH
bucket with one of them, and groups the new documents against those.
"""

from __future__ import annotations

import logging
import re
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

import numpy as np

from tonevakt.models import Document, IdenticalText, StoryMember

logger = logging.getLogger(__name__)

SHINGLE = 3
NUM_PERM = 128
BANDS = 32
ROWS = NUM_PERM // BANDS
THRESHOLD = 0.6
MIN_SHINGLES = 6  # shorter texts (a bare headline) are never grouped: too little to tell a copy
MAX_WORDS = 400
MAX_BUCKET_STORIES = 64  # stories kept per LSH bucket (a bucket is one band's key: boilerplate fills some)
MAX_CANDIDATE_STORIES = 32  # stories compared per lookup, those sharing the most bands first
MEMBERS_PER_STORY = 4  # members of one story compared per lookup
STORY_WINDOW = timedelta(days=14)  # a new document is grouped with stored ones published this recently

# Multiply-shift hashing, one (a, b) pair per permutation: h(x) = ((a*x + b) mod 2^64) >> 32, with a odd.
# No division (uint64 arithmetic wraps by itself), 32-bit results.
_MASK32 = (1 << 32) - 1
_rng = np.random.default_rng(20261125)
_A = _rng.integers(0, np.iinfo(np.uint64).max, size=NUM_PERM, dtype=np.uint64, endpoint=True) | np.uint64(1)
_B = _rng.integers(0, np.iinfo(np.uint64).max, size=NUM_PERM, dtype=np.uint64, endpoint=True)
_SHIFT = np.uint64(32)
_WORD_RE = re.compile(r"[^\W_]+")


_M = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F), np.uint64(0x165667B19E3779F9))


def shingle_array(text: str) -> np.ndarray:
    """32-bit hashes (as uint64, repeats possible) of the word 3-shingles of the normalised text.

    Words are hashed with CRC-32 of their UTF-8 (stable across processes and versions: signatures are
    stored) and combined in numpy."""
    words = _WORD_RE.findall(text.casefold())[:MAX_WORDS]
    if len(words) < SHINGLE:
        return np.empty(0, dtype=np.uint64)
    w = np.fromiter((zlib.crc32(x.encode()) for x in words), dtype=np.uint64, count=len(words))
    return (w[:-2] * _M[0] + w[1:-1] * _M[1] + w[2:] * _M[2]) >> _SHIFT


def shingles(text: str) -> set[int]:
    """The set of shingle hashes of a text (see `shingle_array`)."""
    return set(shingle_array(text).tolist())


def signature(hashes: set[int] | np.ndarray) -> np.ndarray:
    """MinHash signature (NUM_PERM 32-bit values) of a shingle set."""
    x = hashes if isinstance(hashes, np.ndarray) else np.fromiter(hashes, dtype=np.uint64, count=len(hashes))
    values = (np.outer(x, _A) + _B) >> _SHIFT
    return values.min(axis=0).astype(np.uint32)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Estimated Jaccard similarity of two signatures."""
    return float(np.count_nonzero(a == b)) / NUM_PERM


@dataclass
class GroupingStats:
    """What one `assign_stories` call did (for logs, benchmarks and tests)."""

    documents: int = 0
    grouped: int = 0  # joined an existing story
    comparisons: int = 0  # signature comparisons made


class StoryIndex:
    """MinHash LSH index of documents with their story ids.

    Work per lookup is bounded whatever the data: a bucket keeps one member per story (the first of that story to
    fall in it) and at most `MAX_BUCKET_STORIES` stories, and a lookup compares the new signature with at most
    `MEMBERS_PER_STORY` members of each of at most `MAX_CANDIDATE_STORIES` stories, those sharing the most bands
    with it first. Before, a lookup compared with every earlier document in its buckets: 6,000 near-identical
    comments made 18 million comparisons (64 s)."""

    def __init__(self) -> None:
        self._buckets: list[dict[int, dict[str, int]]] = [defaultdict(dict) for _ in range(BANDS)]
        self._matrix = np.empty((256, NUM_PERM), dtype=np.uint32)  # signatures, one row per member
        self._stories: list[str] = []
        self._by_id: dict[str, str] = {}
        self.comparisons = 0

    def __len__(self) -> int:
        return len(self._stories)

    def story_of(self, doc_id: str) -> str | None:
        return self._by_id.get(doc_id)

    def add(self, doc_id: str, story_id: str, sig: np.ndarray | None) -> None:
        self._by_id.setdefault(doc_id, story_id)
        if sig is None:
            return
        idx = len(self._stories)
        if idx == len(self._matrix):
            self._matrix = np.concatenate([self._matrix, np.empty_like(self._matrix)])
        self._matrix[idx] = sig
        self._stories.append(story_id)
        for band, key in enumerate(band_keys(sig)):
            bucket = self._buckets[band][key]
            if story_id not in bucket and len(bucket) < MAX_BUCKET_STORIES:
                bucket[story_id] = idx

    def best_match(self, sig: np.ndarray) -> tuple[str, float] | None:
        """The story of the most similar compared member at or above THRESHOLD (earliest on a tie)."""
        found: list[int] = []
        for band, key in enumerate(band_keys(sig)):
            bucket = self._buckets[band].get(key)
            if bucket:
                found.extend(bucket.values())
        if not found:
            return None
        chosen: list[int] = []
        taken: dict[str, int] = {}
        for idx, _ in Counter(found).most_common():  # most bands shared first (then first found)
            story = self._stories[idx]
            n = taken.get(story, 0)
            if n < MEMBERS_PER_STORY and (n or len(taken) < MAX_CANDIDATE_STORIES):
                taken[story] = n + 1
                chosen.append(idx)
        chosen.sort()
        equal = np.count_nonzero(self._matrix[chosen] == sig, axis=1)
        self.comparisons += len(chosen)
        best = int(np.argmax(equal))  # the first of the most similar: the earliest member
        sim = float(equal[best]) / NUM_PERM
        return (self._stories[chosen[best]], sim) if sim >= THRESHOLD else None


_MIX = np.uint64(0x9E3779B97F4A7C15)


def band_keys(sig: np.ndarray) -> list[int]:
    """One signed 64-bit key per band (its 4 values mixed; signed to fit a BIGINT column); a rare key collision
    only adds a candidate."""
    pairs = np.ascontiguousarray(sig, dtype=np.uint32).reshape(BANDS, ROWS).view(np.uint64)
    keys = pairs[:, 0]
    for i in range(1, pairs.shape[1]):
        keys = keys * _MIX ^ pairs[:, i]
    return keys.view(np.int64).tolist()


def text_signature(text: str) -> np.ndarray | None:
    """The MinHash signature of a text, None when it is too short to tell a copy (fewer than MIN_SHINGLES)."""
    hashes = shingle_array(text)
    if MIN_SHINGLES <= len(hashes) < 4 * MIN_SHINGLES:
        hashes = np.unique(hashes)  # short text: count distinct shingles
    return signature(hashes) if len(hashes) >= MIN_SHINGLES else None


def to_bytes(sig: np.ndarray | None) -> bytes | None:
    """A signature as stored (NUM_PERM little-endian uint32)."""
    return None if sig is None else np.asarray(sig, dtype="<u4").tobytes()


def from_bytes(raw: bytes | None) -> np.ndarray | None:
    """A stored signature back as an array; a value of the wrong size is a programming error."""
    if raw is None:
        return None
    sig = np.frombuffer(raw, dtype="<u4")
    if sig.shape != (NUM_PERM,):
        raise ValueError(f"stored story signature has {sig.size} values, expected {NUM_PERM}")
    return sig.astype(np.uint32)


def document_key(doc: Document) -> str:
    """The text compared for near-copies: title and text (the lead is usually inside either)."""
    return f"{doc.title} {doc.text}"


DOCUMENT_KEY_SQL = "title || ' ' || text"  # `document_key` of a stored row (`documents.title` is NOT NULL)


def sign_documents(docs: Sequence[Document]) -> dict[str, np.ndarray | None]:
    """Each document's signature by id (None: too short to group). When a batch holds one id twice (a feed entry
    and a search hit of the same article), the first copy is the one stored (`repository.insert_documents`), so
    its text is the one signed."""
    out: dict[str, np.ndarray | None] = {}
    for d in docs:
        if d.id not in out:
            out[d.id] = text_signature(document_key(d))
    return out


def wanted_keys(signatures: Iterable[np.ndarray | None]) -> list[tuple[int, int]]:
    """The (band, key) pairs of the given signatures: the buckets whose stored members a batch can match."""
    return sorted(
        {(band, key) for sig in signatures if sig is not None for band, key in enumerate(band_keys(sig))}
    )


def assign_stories(
    docs: list[Document],
    recent: Sequence[StoryMember],
    signatures: Mapping[str, np.ndarray | None] | None = None,
) -> GroupingStats:
    """Set each document's `story_id`: the story of a stored or earlier near-copy, else its own id.

    `recent` holds stored documents of the last weeks with their signatures, oldest first (all of them, or
    only those sharing a bucket with one of `docs`: the result is the same). A document already stored keeps
    its story. Documents are matched in the order given, so the first copy of a story in a batch founds it and
    later copies join it. `signatures`: those of `docs` by id when the caller has them (`sign_documents`).
    """
    index = StoryIndex()
    for member in recent:
        if index.story_of(member.document_id) is None:
            story = member.story_id or member.document_id
            index.add(member.document_id, story, from_bytes(member.signature))
    grouped = 0
    for doc in docs:
        known = index.story_of(doc.id)
        if known is not None:
            doc.story_id = known
            continue
        sig = signatures[doc.id] if signatures is not None else text_signature(document_key(doc))
        match = index.best_match(sig) if sig is not None else None
        if match is not None:
            doc.story_id = match[0]
            grouped += 1
        else:
            doc.story_id = doc.id
        index.add(doc.id, doc.story_id, sig)
    if grouped:
        logger.info("grouped %d of %d documents into existing stories (near-copies)", grouped, len(docs))
    return GroupingStats(documents=len(docs), grouped=grouped, comparisons=index.comparisons)


def _identical_key(text: str) -> str:
    return " ".join(text.split()).casefold()


def share_identical_stories(docs: list[Document], stored: Sequence[IdenticalText]) -> int:
    """Give a document the story of an identical text (title + text, whitespace and case aside) of the same
    voice from another source: the same feedback file imported under two source ids, a statement published
    by two unions. Near-copy grouping never groups short texts (fewer than MIN_SHINGLES shingles), so without
    this "Bra app" imported twice would count twice. `stored` holds the stored documents with the same texts,
    oldest first. Returns how many documents changed story."""
    holders: dict[tuple[str, str], tuple[str, str]] = {}  # (voice, key) → (source id, story id) of the first
    for t in stored:
        holders.setdefault((t.voice, _identical_key(t.text)), (t.source_id, t.story_id))
    changed = 0
    for doc in docs:
        key = (doc.voice, _identical_key(document_key(doc)))
        holder = holders.setdefault(key, (doc.source_id, doc.story_id or doc.id))
        if holder[0] != doc.source_id and doc.story_id != holder[1]:
            doc.story_id = holder[1]
            changed += 1
    if changed:
        logger.info("%d documents share a story with an identical text from another source", changed)
    return changed
