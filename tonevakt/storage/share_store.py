"""Reads and writes behind the corrected weekly shares (issue 15; migration 0007, docs/schema.md).

- `model_confusion`: a model's in-domain confusion, from its own metadata (`save_confusion`, `load_confusion`);
- `human_confusion`: the human labels paired with the same model's labels for the same documents;
- `week_counts`: each voice's stories per week by label, human labels apart (the estimator's input);
- `stored_inputs`, `write_estimates`: a model's stored estimates (`weekly_shares` shows them), redone only
  where their inputs changed;
- `rated_tones`: the stars and tones of rated documents (`RatedTones`), for the Spearman correlation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from tonevakt.dates import week_sql
from tonevakt.models import TONE_INDEX, TONE_LABELS, Confusion, ShareEstimate, WeekCounts
from tonevakt.storage.db import Database


def save_confusion(db: Database, model: str, confusion: Confusion | None) -> None:
    """Record (or, with None, forget) a model's in-domain confusion."""
    now = datetime.now(UTC)
    with db.transaction():
        db.execute("DELETE FROM model_confusion WHERE model = ?", [model])
        if confusion is None:
            return
        for t, true in enumerate(TONE_LABELS):
            for p, predicted in enumerate(TONE_LABELS):
                db.execute(
                    "INSERT INTO model_confusion VALUES (?, ?, ?, ?, ?, ?)",
                    [model, true, predicted, confusion.counts[t][p], confusion.source, now],
                )


def load_confusion(db: Database, model: str) -> Confusion | None:
    rows = db.fetchall(
        "SELECT true_label, predicted_label, documents, source FROM model_confusion WHERE model = ?", [model]
    )
    if not rows:
        return None
    counts = [[0, 0, 0] for _ in TONE_LABELS]
    for true, predicted, n, _ in rows:
        counts[TONE_INDEX[true]][TONE_INDEX[predicted]] = int(n)
    return Confusion(tuple(tuple(r) for r in counts), rows[0][3] or "")  # type: ignore[arg-type]


def human_confusion(db: Database, model: str) -> Confusion:
    """Human labels against `model`'s labels of the same documents."""
    pairs = db.fetchall(
        """SELECT l.label, s.label FROM labels l JOIN scores s ON s.document_id = l.document_id AND s.model = ?""",
        [model],
    )
    return Confusion.from_pairs([(t, p) for t, p in pairs], source="human labels")


def week_counts(db: Database) -> list[WeekCounts]:
    """Per week and voice: stories by the model's label (no human label) and by human label (the first copies
    of the kept story tone, `storage/kept_tone.py`: what `story_tone` holds, without joining the documents)."""
    rows = db.fetchall(
        """SELECT week, voice, human_label, label, count(*) FROM document_tone_kept
           WHERE first_copy AND label IS NOT NULL GROUP BY ALL ORDER BY week, voice"""
    )
    cells: dict[tuple[str, str], tuple[list[int], list[int]]] = {}
    for week, voice, human, label, n in rows:
        model_counts, human_counts = cells.setdefault((week, voice), ([0, 0, 0], [0, 0, 0]))
        (human_counts if human else model_counts)[TONE_INDEX[label]] += int(n)
    return [
        WeekCounts(week, voice, tuple(m), tuple(h))  # type: ignore[arg-type]
        for (week, voice), (m, h) in cells.items()
    ]


_ESTIMATE_ROW = "(" + ", ".join("?" * 24) + ")"


def stored_inputs(db: Database, model: str) -> dict[tuple[str, str], str]:
    """(week, voice) → the inputs key of `model`'s stored estimate."""
    return {
        (r[0], r[1]): r[2]
        for r in db.fetchall("SELECT week, voice, inputs_key FROM share_estimates WHERE model = ?", [model])
    }


def write_estimates(
    db: Database, model: str, estimates: Sequence[ShareEstimate], current: Sequence[tuple[str, str]]
) -> None:
    """Store `model`'s new estimates (replacing those cells) and drop its cells no longer in `current` (weeks
    and voices without stories now), in one transaction."""
    now = datetime.now(UTC)
    with db.transaction():
        db.execute(
            """DELETE FROM share_estimates WHERE model = ? AND (
                 (week, voice) NOT IN (SELECT unnest(?), unnest(?))
                 OR (week, voice) IN (SELECT unnest(?), unnest(?)))""",
            [
                model,
                [w for w, _ in current],
                [v for _, v in current],
                [e.week for e in estimates],
                [e.voice for e in estimates],
            ],
        )
        for i in range(0, len(estimates), 200):
            chunk = estimates[i : i + 200]
            db.execute(
                f"INSERT INTO share_estimates VALUES {', '.join([_ESTIMATE_ROW] * len(chunk))}",
                [
                    v
                    for e in chunk
                    for v in (
                        e.week,
                        e.voice,
                        model,
                        e.n,
                        e.human_n,
                        *e.negative,
                        *e.neutral,
                        *e.positive,
                        *e.tone,
                        e.observed_negative,
                        e.observed_positive,
                        e.labelled_n,
                        e.corrected,
                        e.misfit,
                        e.inputs_key,
                        now,
                    )
                ],
            )


@dataclass(frozen=True)
class RatedTones:
    """The rated documents a model scored: their stars and the model's tone, in the same order."""

    stars: list[int]
    tones: list[float]


def rated_tones(db: Database, model: str, weeks: Sequence[str]) -> RatedTones:
    """Stars and the model's tone of the rated documents `model` scored in these ISO weeks (Europe/Oslo)."""
    rows = [
        (int(r[0]), float(r[1]))
        for r in db.fetchall(
            f"""SELECT d.rating, s.tone FROM documents d JOIN scores s ON s.document_id = d.id AND s.model = ?
               WHERE d.rating IS NOT NULL AND d.relevant AND {week_sql("d.published_at")} IN (SELECT unnest(?))
               ORDER BY d.id""",
            [model, list(weeks)],
        )
    ]
    return RatedTones([stars for stars, _ in rows], [tone for _, tone in rows])
