"""The human-label loop (issue 15): which stories are most worth a human look, and undoing a label.

A story is worth a look when the model is unsure of it (its probabilities are close to a tie: high entropy)
and when many people read it (many copies of the story). The queue takes each voice's most worthwhile stories
in turn, so that a queue is not all media. Labels are stored by `repository.set_label`, which keeps every
label in `label_history`; `undo_label` restores what a label replaced.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from tonevakt.errors import TonevaktError
from tonevakt.models import TONE_LABELS
from tonevakt.storage.db import Database
from tonevakt.storage.kept_tone import refresh_tone

REACH_WEIGHT = 0.5  # how much being widely copied counts beside the model's uncertainty (both in [0, 1])


@dataclass(frozen=True)
class QueueItem:
    """One story offered for a human label."""

    document_id: str
    voice: str
    title: str
    outlet: str
    published_at: datetime
    passage: str
    model_label: str
    probabilities: tuple[float, float, float]  # negative, neutral, positive
    copies: int
    uncertainty: float  # entropy of the probabilities / log 3, in [0, 1]
    worth: float


@dataclass(frozen=True)
class Undone:
    """A label that was taken back, and what the document's label is now (None: no label)."""

    document_id: str
    label: str
    restored: str | None


def uncertainty(p: tuple[float, float, float]) -> float:
    """Normalised entropy of the class probabilities: 0 when sure, 1 at a three-way tie."""
    total = sum(p) or 1.0
    h = -sum((x / total) * math.log(x / total) for x in p if x > 0)
    return h / math.log(len(TONE_LABELS))


_CANDIDATES = """
WITH copies AS (
    SELECT voice, coalesce(story_id, document_id) AS story, count(*) AS copies
    FROM document_tone GROUP BY voice, coalesce(story_id, document_id)
),
labelled_stories AS (
    SELECT DISTINCT d.voice, coalesce(d.story_id, d.id) AS story
    FROM labels l JOIN documents d ON d.id = l.document_id
)
SELECT st.document_id, st.voice, st.title, coalesce(st.outlet, src.name, st.source_id) AS outlet,
       st.published_at, coalesce(nullif(st.passage, ''), nullif(d.lead, ''), d.text) AS passage, s.label,
       s.p_negative, s.p_neutral, s.p_positive, c.copies
FROM story_tone st
JOIN scores s ON s.document_id = st.document_id AND s.model = st.model
JOIN documents d ON d.id = st.document_id
JOIN copies c ON c.voice = st.voice AND c.story = coalesce(st.story_id, st.document_id)
LEFT JOIN sources src ON src.id = st.source_id
WHERE NOT st.human_label AND st.published_at >= ?
  AND (st.voice, coalesce(st.story_id, st.document_id)) NOT IN (SELECT voice, story FROM labelled_stories)
"""


def label_queue(db: Database, since: datetime, limit: int = 20) -> list[QueueItem]:
    """The unlabelled stories published since `since` most worth a human look, spread over the voices."""
    rows = db.fetchall(_CANDIDATES, [since])
    max_copies = max((int(r[10]) for r in rows), default=1)
    items = []
    for r in rows:
        p = (float(r[7]), float(r[8]), float(r[9]))
        u = uncertainty(p)
        reach = math.log1p(int(r[10])) / math.log1p(max_copies) if max_copies > 1 else 0.0
        items.append(
            QueueItem(
                document_id=r[0],
                voice=r[1],
                title=r[2] or "",
                outlet=r[3] or "",
                published_at=r[4],
                passage=" ".join((r[5] or "").split()),
                model_label=r[6],
                probabilities=p,
                copies=int(r[10]),
                uncertainty=u,
                worth=u + REACH_WEIGHT * reach,
            )
        )
    return spread_over_voices(items, limit)


def spread_over_voices(items: list[QueueItem], limit: int) -> list[QueueItem]:
    """Each voice's items by worth, taken in turn (the voice with the most worthwhile item first)."""
    by_voice: dict[str, list[QueueItem]] = {}
    for it in sorted(items, key=lambda i: (-i.worth, i.published_at, i.document_id)):
        by_voice.setdefault(it.voice, []).append(it)
    order = sorted(by_voice, key=lambda v: (-by_voice[v][0].worth, v))
    out: list[QueueItem] = []
    depth = 0
    while len(out) < limit and any(depth < len(by_voice[v]) for v in order):
        for v in order:
            if depth < len(by_voice[v]) and len(out) < limit:
                out.append(by_voice[v][depth])
        depth += 1
    return out


def undo_label(db: Database, history_id: int | None = None) -> Undone:
    """Take back a label: the given one (a `label_history` id) or the latest one not undone yet. The label it
    replaced, if any, comes back. Raises TonevaktError when there is nothing to undo."""
    with db.transaction():
        if history_id is None:
            row = db.fetchone(
                """SELECT id, document_id, label, previous_label, previous_labelled_by, previous_note,
                          previous_labelled_at
                   FROM label_history WHERE undone_at IS NULL ORDER BY id DESC LIMIT 1"""
            )
            if row is None:
                raise TonevaktError("no label to undo")
        else:
            row = db.fetchone(
                """SELECT id, document_id, label, previous_label, previous_labelled_by, previous_note,
                          previous_labelled_at
                   FROM label_history WHERE id = ? AND undone_at IS NULL""",
                [history_id],
            )
            if row is None:
                raise TonevaktError(f"label {history_id} does not exist or was undone already")
            later = db.scalar(
                "SELECT count(*) FROM label_history WHERE document_id = ? AND id > ? AND undone_at IS NULL",
                [row[1], history_id],
            )
            if later:
                raise TonevaktError(
                    f"document {row[1]} was labelled again after label {history_id}; undo that label first"
                )
        hid, doc, label, prev, prev_by, prev_note, prev_at = row
        if prev is None:
            db.execute("DELETE FROM labels WHERE document_id = ?", [doc])
        else:
            db.execute(
                "UPDATE labels SET label = ?, labelled_by = ?, note = ?, labelled_at = ? WHERE document_id = ?",
                [prev, prev_by, prev_note, prev_at, doc],
            )
        db.execute("UPDATE label_history SET undone_at = ? WHERE id = ?", [datetime.now(UTC), hid])
        refresh_tone(db, [doc])  # the kept story tone follows the label (storage/kept_tone.py)
    return Undone(document_id=doc, label=label, restored=prev)
