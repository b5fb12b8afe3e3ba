"""Typed records passed between the stages. Third-party dicts are converted into these at the edge."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, get_args

from tonevakt.limits import MAX_FILE_ROWS

# Each closed set is spelled once, as a type; its tuple (loops, click choices, column order) is read off it.
Voice = Literal["media", "union", "patient", "official"]
VOICES: tuple[Voice, ...] = get_args(Voice)

SourceKind = Literal["rss", "news_search", "web", "appstore", "files"]

ToneLabel = Literal["negative", "neutral", "positive"]
# the label order: the columns of every probability array
TONE_LABELS: tuple[ToneLabel, ...] = get_args(ToneLabel)
TONE_INDEX: dict[str, int] = {label: i for i, label in enumerate(TONE_LABELS)}  # label → its column


class FetchStatus(StrEnum):
    """Classified outcome of one fetch (after rss-fetcher's Status)."""

    OK = "ok"
    NOT_MODIFIED = "not_modified"  # 304, or the body hash is unchanged
    SOFT_ERROR = "soft_error"  # the server answered but what it gave is unusable (HTML for a feed, empty)
    HARD_ERROR = "hard_error"  # 404/410, refused address, bad scheme: will not fix itself
    TEMPORARY = "temporary"  # timeouts, 5xx, 429, DNS, connection refused: try again later

    @property
    def failed(self) -> bool:
        return self in (FetchStatus.SOFT_ERROR, FetchStatus.HARD_ERROR, FetchStatus.TEMPORARY)


@dataclass(frozen=True)
class Source:
    """One configured source (from config.yaml)."""

    id: str
    kind: SourceKind
    voice: Voice
    name: str = ""
    region: str | None = None
    url: str | None = None
    enabled: bool = True
    full_text: str = "relevant"  # never | relevant | always
    interval_minutes: int = 60
    respect_robots: bool = True
    include: str | None = None  # regex for article links (web)
    sitemap: str | None = None
    app_id: str | None = None
    country: str = "no"
    max_pages: int = 10
    path: str | None = None  # inbox folder (files)
    columns: dict[str, str] = field(default_factory=dict)  # our field -> column in the file
    paywalled: bool = False
    relevance: str = "match"  # match | always (every document of the source is about Helseplattformen)
    max_rows: int = MAX_FILE_ROWS  # files: rows per feedback file; a file with more is refused


@dataclass
class FetchResult:
    """What the HTTP chokepoint gives back: bytes plus a classified outcome, never None."""

    url: str
    status: FetchStatus
    final_url: str | None = None
    http_status: int | None = None
    reason: str = ""
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    duration_s: float = 0.0
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    retry_after_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.status is FetchStatus.OK


@dataclass
class Document:
    """One collected text, ready to be enriched, scored and stored."""

    source_id: str
    voice: Voice
    title: str
    text: str
    url: str | None = None
    id: str = ""
    lead: str = ""
    author: str | None = None
    outlet: str | None = None
    published_at: datetime | None = None
    published_estimated: bool = False  # the source gave no date: collection time used
    collected_at: datetime | None = None
    language: str | None = None
    relevant: bool | None = None
    matched: list[str] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)
    regions: list[str] = field(default_factory=list)
    region: str | None = None  # the source's region, if any
    paywalled: bool = False
    rating: int | None = None
    app_version: str | None = None
    story_id: str | None = None
    redactions: int = 0
    kind: str = "article"  # article | review | feedback | statement
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.id:
            self.id = document_id(self.url, self.source_id, self.title, self.text)


@dataclass(frozen=True)
class Score:
    """The sentiment of one document by one model."""

    document_id: str
    model: str
    tone: float  # P(pos) - P(neg), in [-1, 1]
    label: ToneLabel
    p_negative: float
    p_neutral: float
    p_positive: float
    passage: str = ""  # the passage that carried the tone
    n_passages: int = 1


@dataclass
class FetchLogEntry:
    """One row of the fetch log (and the input to a source's health)."""

    source_id: str
    url: str
    status: FetchStatus
    started_at: datetime
    http_status: int | None = None
    reason: str = ""
    duration_ms: int = 0
    bytes: int = 0
    items: int = 0
    new_documents: int = 0
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    primary: bool = True  # the source's own URL (feed, listing); False for article pages: no health update
    # The body was read but not all of it handled (the per-pass cap, the time budget): the validators and body
    # hash are forgotten so that the next pass reads the feed in full again instead of being told "unchanged".
    incomplete: bool = False


@dataclass
class ItemOutcome:
    """What became of one item of a source in a pass: an article page of a listing, a later page of a feed.

    `status` None: not tried (the source's time budget, the pass deadline or the per-pass cap came first).
    A failed or untried item is remembered (`pending_items`) and tried again in a later pass."""

    url: str
    kind: str  # "article": an article page (web); "page": a page of a paged feed (appstore)
    status: FetchStatus | None = None
    reason: str = ""

    @property
    def done(self) -> bool:
        """Fetched (whatever the page held), or failed in a way that will not fix itself (404, robots.txt)."""
        return self.status in (FetchStatus.OK, FetchStatus.NOT_MODIFIED, FetchStatus.HARD_ERROR)

    @property
    def tried(self) -> bool:
        return self.status is not None


@dataclass(frozen=True)
class StoryMember:
    """A stored document as near-copy grouping reads it (`storage/stories.assign_stories`)."""

    document_id: str
    story_id: str
    signature: bytes | None  # its MinHash signature as stored (`stories.to_bytes`); None: too short to group


@dataclass(frozen=True)
class IdenticalText:
    """A stored document whose text a new one repeats (`storage/stories.share_identical_stories`)."""

    story_id: str
    source_id: str
    voice: str
    text: str  # title + text


@dataclass(frozen=True)
class HumanLabel:
    """A stored document with the tone label a person gave it (`tonevakt label`)."""

    document: Document
    label: str


@dataclass(frozen=True)
class PendingItem:
    """An item remembered from an earlier pass (a row of `pending_items`), handed to the source's collector."""

    source_id: str
    url: str
    kind: str
    attempts: int = 0
    last_error: str = ""
    next_due_at: datetime | None = None


@dataclass
class SourceOutcome:
    """One source's part of a pass, as a collector hands it back: documents, the fetch log rows, and files
    imported (files kind). Stored as one batch, or buffered as one in the spool (`storage/spool.py`)."""

    source: Source
    documents: list[Document] = field(default_factory=list)
    fetches: list[FetchLogEntry] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    imported_files: list[tuple[str, str, str, int]] = field(default_factory=list)  # hash, source, path, rows
    skipped: bool = False  # not due yet (backoff or interval), or not started before the pass deadline
    deferred: bool = False  # due, but the pass deadline came first: the source is first in the next pass
    # What became of each item tried or left over (article pages, feed pages): failed and untried ones are
    # remembered as pending items and handed back to the collector in a later pass.
    items: list[ItemOutcome] = field(default_factory=list)

    @property
    def items_left(self) -> int:
        """Items this pass did not finish (failed or not tried): they wait for a later pass."""
        return sum(1 for i in self.items if not i.done)

    @property
    def failed(self) -> bool:
        return any(f.primary and f.status.failed for f in self.fetches)

    @property
    def reason(self) -> str:
        return next((f.reason for f in self.fetches if f.primary and f.status.failed), "")


@dataclass
class CollectState:
    """What a collect pass starts from, read from the database (or, while it is busy, from the analyst
    snapshot and the spool): per source id its row of `sources` (validators, health, `next_due_at`), the
    content hashes of imported files, the URLs already stored, and the pending items per source."""

    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    known_files: set[str] = field(default_factory=set)
    known_urls: set[str] = field(default_factory=set)
    pending: dict[str, list[PendingItem]] = field(default_factory=dict)


@dataclass
class PassSummary:
    """What one pass did; the CLI prints it, the scheduler logs it."""

    sources_ok: int = 0
    sources_failed: int = 0
    sources_skipped: int = 0
    sources_deferred: int = 0  # due, but not started before the pass deadline: first in the next pass
    items_pending: int = (
        0  # items of collected sources left for a later pass (failed, or not reached in time)
    )
    documents_seen: int = 0
    documents_new: int = 0
    documents_scored: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (source id, reason)
    duration_s: float = 0.0

    def line(self) -> str:
        return (
            f"pass done in {self.duration_s:.1f}s: sources ok {self.sources_ok}, failed {self.sources_failed}, "
            f"skipped {self.sources_skipped}"
            + (f", deferred {self.sources_deferred}" if self.sources_deferred else "")
            + (f", items pending {self.items_pending}" if self.items_pending else "")
            + f"; documents seen {self.documents_seen}, new {self.documents_new}, "
            f"scored {self.documents_scored}"
        )


@dataclass
class ImportSummary:
    """What `tonevakt import` did with one file; the CLI prints it."""

    rows: int  # rows read from the file
    new: int  # documents stored that were not stored before
    documents: int  # rows with text (documents made from the file)
    relevant: int  # of those, judged relevant
    relevance: str  # how relevance was judged: "query" (the relevance query) or "always"
    warnings: list[str] = field(default_factory=list)


def _digest(*parts: str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode("utf-8", "surrogatepass"))  # a lone surrogate (from a JSON escape) must not crash
        h.update(b"\x1f")
    return h.hexdigest()[:24]


def document_id(url: str | None, source_id: str, title: str, text: str) -> str:
    """Stable id: from the canonical URL, or from the content (with its source) when there is no URL."""
    if url:
        from tonevakt.urls import canonical_url

        return "u" + _digest(canonical_url(url))
    norm = " ".join((title + "\n" + text).split()).casefold()
    return "c" + _digest(source_id, norm)


@dataclass(frozen=True)
class Confusion:
    """How often the model gives each label to documents whose true label is known (issue 15).

    `counts[t][p]`: labelled documents of true label TONE_LABELS[t] that the model labelled TONE_LABELS[p]
    (rows: truth, columns: prediction). `source` says where the documents came from."""

    counts: tuple[tuple[int, int, int], ...]
    source: str = ""

    @property
    def n(self) -> int:
        return sum(sum(row) for row in self.counts)

    @property
    def agreed(self) -> int:
        """Documents the model labelled as the human did (the diagonal)."""
        return sum(self.counts[i][i] for i in range(len(self.counts)))

    def plus(self, other: Confusion) -> Confusion:
        """Both sets of labelled documents together."""
        counts = tuple(
            tuple(a + b for a, b in zip(r1, r2, strict=True))
            for r1, r2 in zip(self.counts, other.counts, strict=True)
        )
        source = " + ".join(s for s in (self.source, other.source) if s)
        return Confusion(counts, source)  # type: ignore[arg-type]

    @classmethod
    def from_pairs(cls, pairs: list[tuple[str, str]], source: str = "") -> Confusion:
        """From (true label, predicted label) pairs."""
        counts = [[0, 0, 0] for _ in TONE_LABELS]
        for true, predicted in pairs:
            counts[TONE_INDEX[true]][TONE_INDEX[predicted]] += 1
        return cls(tuple(tuple(r) for r in counts), source)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ShareEstimate:
    """One voice's shares of negative / neutral / positive stories in one week, corrected for the model's
    known errors, each with a 95 % bootstrap interval (low, high). `tone` = share positive − share negative."""

    week: str
    voice: Voice
    n: int  # stories that week
    human_n: int  # of which a human labelled
    negative: tuple[float, float, float]  # (estimate, ci_low, ci_high)
    neutral: tuple[float, float, float]
    positive: tuple[float, float, float]
    tone: tuple[float, float, float]
    observed_negative: float  # counting labels, as weekly_tone.share_negative
    observed_positive: float
    labelled_n: int  # labelled documents behind the correction (0: uncorrected)
    corrected: bool
    misfit: bool = False  # the week's labels contradict the measured confusion: the correction is unreliable
    inputs_key: str = (
        ""  # hash of what the estimate depends on (nlp.shares.inputs_key): unchanged, not redone
    )


@dataclass(frozen=True)
class WeekCounts:
    """One voice's stories in one week, by label: `model[i]` stories the model (alone) labelled
    TONE_LABELS[i], `human[i]` stories a human labelled TONE_LABELS[i] (a human label wins)."""

    week: str
    voice: Voice
    model: tuple[int, int, int]
    human: tuple[int, int, int]

    @property
    def n(self) -> int:
        return sum(self.model) + sum(self.human)
