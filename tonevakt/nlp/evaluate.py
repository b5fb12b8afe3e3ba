"""Measure a sentiment model on a labelled file (or on the stored human labels).

Files: a JSON list, JSONL or CSV with `text` and `label` columns; labels positive / negative / neutral in any
case. A file without neutral labels is binary: the model's neutral predictions are then resolved by comparing
P(positive) with P(negative), and the metrics are over positive and negative only.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tonevakt.errors import TonevaktError
from tonevakt.models import Document
from tonevakt.nlp.sentiment.base import LABELS, Progress, Scorer

logger = logging.getLogger(__name__)


class EvaluationError(TonevaktError):
    """A labelled file cannot be read or holds unusable labels."""


@dataclass(frozen=True)
class Example:
    text: str
    label: str  # negative | neutral | positive


@dataclass
class ClassMetrics:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass
class Metrics:
    labels: list[str]  # the classes measured, in order (rows/columns of the confusion matrix)
    n: int
    accuracy: float
    macro_f1: float
    per_class: dict[str, ClassMetrics]
    confusion: list[list[int]]  # confusion[gold][predicted]
    binary: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "binary": self.binary,
            "labels": self.labels,
            "per_class": {k: vars(v) for k, v in self.per_class.items()},
            "confusion": {
                "rows": "gold",
                "columns": "predicted",
                "labels": self.labels,
                "matrix": self.confusion,
            },
            **self.extra,
        }


def normalise_label(raw: object, where: str = "", what: str = "label") -> str:
    """`raw` as one of LABELS (any case, surrounding space, Norwegian and short aliases); EvaluationError
    naming `where` and `what` (the column) otherwise."""
    v = str(raw).strip().casefold()
    aliases = {
        "pos": "positive",
        "neg": "negative",
        "neu": "neutral",
        "positiv": "positive",
        "negativ": "negative",
        "nøytral": "neutral",
    }
    v = aliases.get(v, v)
    if v not in LABELS:
        raise EvaluationError(f"{where}bad {what} {raw!r}: expected positive, negative or neutral")
    return v


def read_labelled(path: Path) -> list[Example]:
    """Read `text` + `label` from a JSON list, JSONL or CSV file."""
    try:
        raw = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError as e:
        raise EvaluationError(f"no such file: {path}") from e
    except (OSError, UnicodeDecodeError) as e:
        raise EvaluationError(f"cannot read {path}: {e}") from e
    rows: list[dict[str, Any]]
    stripped = raw.lstrip()
    suffix = Path(path).suffix.lower()
    if suffix == ".csv" or not stripped.startswith(("[", "{")):
        rows = list(csv.DictReader(io.StringIO(raw)))
    elif stripped.startswith("["):
        try:
            rows = json.loads(raw)
        except json.JSONDecodeError as e:
            raise EvaluationError(f"{path}: not valid JSON: {e}") from e
    else:
        rows = []
        for i, line in enumerate(raw.splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise EvaluationError(f"{path}:{i}: not valid JSON: {e}") from e
    out = []
    for i, r in enumerate(rows, 1):
        if not isinstance(r, dict) or "text" not in r or "label" not in r:
            raise EvaluationError(f"{path}: row {i} has no 'text' and 'label'")
        text = str(r["text"] or "").strip()
        if text:
            out.append(Example(text, normalise_label(r["label"], f"{path}: row {i}: ")))
    if not out:
        raise EvaluationError(f"{path}: no labelled rows")
    return out


def compute_metrics(gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> Metrics:
    """Accuracy, macro-F1 over `labels`, per-class precision/recall/F1 and the confusion matrix."""
    if len(gold) != len(predicted):
        raise ValueError("gold and predicted differ in length")
    labels = list(labels)
    idx = {lab: i for i, lab in enumerate(labels)}
    cm = np.zeros((len(labels), len(labels)), dtype=int)
    for g, p in zip(gold, predicted, strict=True):
        cm[idx[g], idx[p]] += 1
    per: dict[str, ClassMetrics] = {}
    for i, lab in enumerate(labels):
        tp = int(cm[i, i])
        pred = int(cm[:, i].sum())
        sup = int(cm[i, :].sum())
        prec = tp / pred if pred else 0.0
        rec = tp / sup if sup else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        per[lab] = ClassMetrics(prec, rec, f1, sup)
    n = len(gold)
    return Metrics(
        labels=labels,
        n=n,
        accuracy=float(np.trace(cm)) / n if n else 0.0,
        macro_f1=float(np.mean([m.f1 for m in per.values()])),
        per_class=per,
        confusion=cm.tolist(),
        binary=len(labels) == 2,
    )


def predicted_labels(probs: np.ndarray, binary: bool) -> list[str]:
    """Labels from (n, 3) probabilities; binary: positive when P(pos) >= P(neg), else negative."""
    if binary:
        return ["positive" if p[2] >= p[0] else "negative" for p in probs]
    return [LABELS[int(i)] for i in np.argmax(probs, axis=1)]


def evaluate_examples(
    scorer: Scorer, examples: Sequence[Example], progress: Progress | None = None
) -> Metrics:
    """Run the scorer over the texts (as sentences: no passage selection) and measure it."""
    binary = not any(e.label == "neutral" for e in examples)
    probs = scorer.predict_batched([e.text for e in examples], progress=progress, what="evaluating")
    labels = ["negative", "positive"] if binary else list(LABELS)
    m = compute_metrics([e.label for e in examples], predicted_labels(probs, binary), labels)
    m.extra["model"] = scorer.model_id
    return m


def format_report(m: Metrics, title: str = "") -> str:
    """A plain-text report (the CLI prints it)."""
    lines = []
    if title:
        lines.append(title)
    kind = "binary (positive/negative)" if m.binary else "3-class"
    lines.append(f"n = {m.n}, {kind}: accuracy {m.accuracy:.3f}, macro-F1 {m.macro_f1:.3f}")
    lines.append(f"{'':<10} {'precision':>9} {'recall':>7} {'F1':>6} {'n':>6}")
    for lab, c in m.per_class.items():
        lines.append(f"{lab:<10} {c.precision:>9.3f} {c.recall:>7.3f} {c.f1:>6.3f} {c.support:>6}")
    lines.append("confusion (rows: gold, columns: predicted)")
    lines.append(" " * 11 + "".join(f"{lab[:8]:>10}" for lab in m.labels))
    for lab, row in zip(m.labels, m.confusion, strict=True):
        lines.append(f"{lab:<11}" + "".join(f"{v:>10}" for v in row))
    if "shares_true" in m.extra:  # documents (nlp/tone.measure): the shares the report would show
        true, pred = m.extra["shares_true"], m.extra["shares_predicted"]
        true_text = " / ".join(f"{true[k]:.3f}" for k in m.labels)
        pred_text = " / ".join(f"{pred[k]:.3f}" for k in m.labels)
        lines.append(f"shares ({' / '.join(m.labels)}): true {true_text}, predicted {pred_text}")
    return "\n".join(lines)


def evaluate_documents(
    scorer: Scorer, docs: Sequence[Document], gold: dict[str, str], progress: Progress | None = None
) -> Metrics:
    """Measure the scorer against labelled documents (`gold`: document id → label), scoring them as the
    pipeline does (passages that speak of the target); documents without text to score are left out."""
    scores = scorer.score_documents(docs, progress=progress)
    m = compute_metrics([gold[s.document_id] for s in scores], [s.label for s in scores], LABELS)
    m.extra["model"] = scorer.model_id
    return m
