"""Tone toward Helseplattformen at the level of the document: labelled in-domain documents, the fit of the
document-level head (`nlp/e5/scorer.ToneHead`), its cross-validation and calibration.

Used by `tonevakt model train-tone` (the shipped head, from `../shared/data/helseplattformen_tone/train.jsonl`)
and `tonevakt model adapt` (the same data plus the human labels stored in `labels`), and by
`tonevakt evaluate FILE` for files in that format and `tonevakt evaluate --labels` (`measure`). The head is a class-balanced multinomial logistic
regression; its penalty is chosen by cross-validation over documents, never on the file it is measured on.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tonevakt.errors import ModelError
from tonevakt.models import TONE_LABELS, Document, HumanLabel
from tonevakt.nlp.evaluate import EvaluationError, compute_metrics, evaluate_documents, normalise_label
from tonevakt.nlp.sentiment.head import softmax

logger = logging.getLogger(__name__)

PENALTIES = (0.01, 0.03, 0.1)  # C of the logistic regression, chosen by cross-validation
FOLDS = 5
REPEATS = 3
LAYERS = (6, 12)  # the encoder's layers the head reads (pooled): a middle one and the last


class ToneDataError(ModelError):
    """A labelled in-domain file cannot be read or holds unusable rows."""


@dataclass(frozen=True)
class LabelledDocument:
    document: Document
    label: str  # negative | neutral | positive
    origin: str  # where the label comes from: "file" (a labelled set) or "human" (tonevakt label)


def is_tone_file(path: Path) -> bool:
    """Does `path` hold labelled documents in the helseplattformen_tone format (`text`, `tone`, `on_topic`)?"""
    try:
        with Path(path).open(encoding="utf-8-sig") as f:
            first = f.readline()
        row = json.loads(first)
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(row, dict) and "tone" in row and "label" not in row


def read_tone_file(path: Path, voice: str = "media") -> list[LabelledDocument]:
    """The on-topic rows with a tone of a helseplattformen_tone JSONL file, as documents (off-topic rows, whose
    tone is null, are left out: they test the relevance filter, not the tone)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError as e:
        raise ToneDataError(f"no such file: {path}") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ToneDataError(f"cannot read {path}: {e}") from e
    out: list[LabelledDocument] = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as e:
            raise ToneDataError(f"{path}:{i}: not valid JSON: {e}") from e
        if not isinstance(row, dict) or "text" not in row or "tone" not in row:
            raise ToneDataError(f"{path}:{i}: a row needs 'text' and 'tone' (null for off-topic items)")
        if row.get("on_topic") is False or row["tone"] is None:
            continue
        try:
            label = normalise_label(row["tone"], f"{path}:{i}: ", "tone")
        except EvaluationError as e:
            raise ToneDataError(str(e)) from e
        doc = Document(
            source_id=str(row.get("source") or "labelled"),
            voice=voice,
            title=str(row.get("title") or ""),
            text=str(row["text"] or ""),
            url=row.get("url"),
            id=f"{path.stem}:{i}",
            language=row.get("lang"),
        )
        if doc.text.strip():
            out.append(LabelledDocument(doc, label, "file"))
    if not out:
        raise ToneDataError(f"{path}: no on-topic rows with a tone")
    return out


# -- the fit ----------------------------------------------------------------------------------------------


def balanced_weights(y: np.ndarray) -> np.ndarray:
    counts = np.bincount(y, minlength=len(TONE_LABELS)).astype(np.float64)
    return len(y) / (len(TONE_LABELS) * np.maximum(counts, 1.0))


def fit_logistic(x: np.ndarray, y: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
    """Class-balanced multinomial logistic regression with an L2 penalty 1 / (2 C n), fitted by L-BFGS on
    standardised features; returns (weight (3, d), bias (3,)) that act on the raw features."""
    import torch

    mu = x.mean(axis=0)
    sd = x.std(axis=0) + 1e-6
    xt = torch.tensor((x - mu) / sd, dtype=torch.float64)
    yt = torch.tensor(y, dtype=torch.long)
    sample_w = torch.tensor(balanced_weights(y), dtype=torch.float64)[yt]
    w = torch.zeros(x.shape[1], len(TONE_LABELS), dtype=torch.float64, requires_grad=True)
    b = torch.zeros(len(TONE_LABELS), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=300, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(xt @ w + b, yt, reduction="none")
        total = (loss * sample_w).sum() / sample_w.sum() + (w**2).sum() / (2 * c * len(y))
        total.backward()
        return total

    opt.step(closure)
    weight = (w.detach().numpy() / sd[:, None]).T
    bias = b.detach().numpy() - (mu / sd) @ w.detach().numpy()
    return weight, bias


def predict_logistic(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    return softmax(x @ weight.T + bias)


def stratified_folds(y: np.ndarray, folds: int, rng: np.random.Generator) -> np.ndarray:
    fold = np.zeros(len(y), dtype=int)
    for c in range(len(TONE_LABELS)):
        idx = np.where(y == c)[0]
        rng.shuffle(idx)
        fold[idx] = np.arange(len(idx)) % folds
    return fold


def out_of_fold(x: np.ndarray, y: np.ndarray, c: float, seed: int = 0) -> np.ndarray:
    """Probabilities of each document from heads that did not see it ((n, 3), averaged over REPEATS seeded
    splits into FOLDS)."""
    probs = np.zeros((len(y), len(TONE_LABELS)))
    for r in range(REPEATS):
        fold = stratified_folds(y, FOLDS, np.random.default_rng(seed + r))
        for f in range(FOLDS):
            train = fold != f
            weight, bias = fit_logistic(x[train], y[train], c)
            probs[~train] += predict_logistic(x[~train], weight, bias)
    return probs / REPEATS


@dataclass
class FitReport:
    """What `fit_head` measured, for the head's metadata, the CLI and docs/model.md."""

    n: int
    penalty: float
    cv_by_penalty: dict[str, float]
    cv: dict[str, Any]  # metrics of the out-of-fold labels (evaluate.Metrics.to_dict())
    confusion: dict[str, Any]  # the out-of-fold confusion in nlp/shares.py's format
    out_of_fold: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((0, 3)))


def fit_head(
    vectors: np.ndarray, labels: Sequence[str], source: str
) -> tuple[np.ndarray, np.ndarray, FitReport]:
    """Choose the penalty by cross-validation, then fit on every document: (weight, bias, report)."""
    y = np.array([TONE_LABELS.index(lab) for lab in labels])
    counts = np.bincount(y, minlength=len(TONE_LABELS))
    if len(y) < 2 * FOLDS or counts.min() < FOLDS:
        raise ToneDataError(
            f"too few labelled documents to fit and cross-validate a tone head: {dict(zip(TONE_LABELS, counts.tolist(), strict=True))} "
            f"(at least {FOLDS} of each class)"
        )
    by_penalty: dict[str, float] = {}
    best: tuple[float, float, np.ndarray] | None = None
    for c in PENALTIES:
        oof = out_of_fold(vectors, y, c)
        m = compute_metrics(labels, [TONE_LABELS[i] for i in oof.argmax(axis=1)], TONE_LABELS)
        by_penalty[str(c)] = round(m.macro_f1, 4)
        if best is None or m.macro_f1 > best[0] + 1e-9:
            best = (m.macro_f1, c, oof)
    assert best is not None
    _, c, oof = best
    predicted = [TONE_LABELS[i] for i in oof.argmax(axis=1)]
    metrics = compute_metrics(labels, predicted, TONE_LABELS)
    weight, bias = fit_logistic(vectors, y, c)
    confusion = {
        "labels": list(TONE_LABELS),
        "counts": metrics.confusion,
        "n": len(y),
        "source": f"cross-validated ({FOLDS} folds × {REPEATS}) on {source}",
    }
    report = FitReport(
        n=len(y),
        penalty=c,
        cv_by_penalty=by_penalty,
        cv=metrics.to_dict(),
        confusion=confusion,
        out_of_fold=oof,
    )
    return weight, bias, report


# -- heads from labelled documents --------------------------------------------------------------------------


def provisional_head(model_id: str, encoder: str, layers: tuple[int, ...] = LAYERS) -> Any:
    """A head with the right layers and no weights yet: what a `ToneScorer` needs to compute document vectors
    before a head is fitted."""
    from tonevakt.nlp.e5.scorer import ToneHead

    return ToneHead(
        model_id=model_id, weight=np.zeros((3, 1)), bias=np.zeros(3), layers=layers, encoder=encoder
    )


def vectors_of(scorer: Any, docs: Sequence[Document], progress: Any = None) -> np.ndarray:
    """Document vectors (as the scorer computes them when scoring) of documents that all have text."""
    kept, vectors, _, _ = scorer.document_vectors(docs, progress)
    if len(kept) != len(docs):
        raise ToneDataError(f"{len(docs) - len(kept)} labelled documents have no text to read")
    return vectors


def train_head(
    scorer: Any,
    train: Sequence[LabelledDocument],
    model_id: str,
    source: str,
    progress: Any = None,
    meta: dict[str, Any] | None = None,
    vectors: np.ndarray | None = None,
) -> tuple[Any, FitReport]:
    """Fit a tone head on labelled documents with the scorer's encoder (penalty by cross-validation); the
    head carries its cross-validated figures and confusion. `vectors`: the documents' vectors (`vectors_of`)
    when the caller has them already."""
    from tonevakt.nlp.e5.scorer import ToneHead

    if vectors is None:
        vectors = vectors_of(scorer, [t.document for t in train], progress)
    weight, bias, report = fit_head(vectors, [t.label for t in train], source)
    about = {
        "indomain_cv": {
            "n": report.n,
            "penalty": report.penalty,
            "by_penalty": report.cv_by_penalty,
            "macro_f1": report.cv["macro_f1"],
            "per_class": report.cv["per_class"],
            "source": source,
        },
        **(meta or {}),
    }
    head = ToneHead(
        model_id=model_id,
        weight=weight,
        bias=bias,
        layers=scorer.head.layers,
        encoder=scorer.head.encoder,
        confusion=report.confusion,
        meta=about,
    )
    return head, report


def measure(scorer: Any, labelled: Sequence[LabelledDocument], progress: Any = None) -> Any:
    """Document-level figures (`evaluate.evaluate_documents`) of a scorer on labelled documents, scored as the
    pipeline scores them; `extra` also holds the shares of each class, true and predicted (from the confusion
    matrix: its rows are the true labels, its columns the predicted ones), and their difference."""
    gold = {t.document.id: t.label for t in labelled}
    m = evaluate_documents(scorer, [t.document for t in labelled], gold, progress)
    n = max(m.n, 1)
    counts = np.array(m.confusion, dtype=int).reshape(len(TONE_LABELS), len(TONE_LABELS))
    true = {lab: round(int(c) / n, 4) for lab, c in zip(TONE_LABELS, counts.sum(axis=1), strict=True)}
    pred = {lab: round(int(c) / n, 4) for lab, c in zip(TONE_LABELS, counts.sum(axis=0), strict=True)}
    error = {lab: round(pred[lab] - true[lab], 4) for lab in TONE_LABELS}
    m.extra.update(shares_true=true, shares_predicted=pred, share_error=error)
    return m


@dataclass
class Adaptation:
    """What `adapt` made and measured: the refitted head, its cross-validated figures, and the comparison with
    the active model on the human-labelled documents (the new head's labels there are out of fold)."""

    head: Any
    report: FitReport
    n_file: int
    n_human: int
    active_model: str
    active_macro_f1: float
    new_macro_f1: float
    active_accuracy: float
    new_accuracy: float

    @property
    def better(self) -> bool:
        """Not worse than the active model on the human-labelled documents (macro-F1, then accuracy)."""
        return (self.new_macro_f1, self.new_accuracy) >= (self.active_macro_f1, self.active_accuracy)


def adapt(
    scorer: Any,
    shared: Sequence[LabelledDocument],
    human: Sequence[LabelledDocument],
    model_id: str,
    progress: Any = None,
) -> Adaptation:
    """Refit the tone head on the shared labelled documents plus the human labels, with the active scorer's
    encoder, and measure both heads on the human-labelled documents."""
    if not human:
        raise ToneDataError("no human labels stored yet: label documents first ('tonevakt label --queue')")
    everything = list(shared) + list(human)
    # every document is read once: the active head's labels of the human-labelled ones come from the same
    # vectors the new head is fitted on (what the active scorer's `score_documents` would label them)
    vectors = vectors_of(scorer, [t.document for t in everything], progress)
    active = scorer.head.probabilities(vectors[len(shared) :]).argmax(axis=1)
    head, report = train_head(
        scorer,
        everything,
        model_id,
        source=f"{len(shared)} shared labelled documents + {len(human)} human labels",
        progress=progress,
        vectors=vectors,
    )
    gold = [h.label for h in human]
    oof = report.out_of_fold[len(shared) :]
    new = compute_metrics(gold, [TONE_LABELS[i] for i in oof.argmax(axis=1)], TONE_LABELS)
    old = compute_metrics(gold, [TONE_LABELS[i] for i in active], TONE_LABELS)
    head.meta["adapted"] = {
        "from": scorer.model_id,
        "shared": len(shared),
        "human": len(human),
        "human_macro_f1_new": round(new.macro_f1, 4),
        "human_macro_f1_active": round(old.macro_f1, 4),
    }
    return Adaptation(
        head=head,
        report=report,
        n_file=len(shared),
        n_human=len(human),
        active_model=scorer.model_id,
        active_macro_f1=old.macro_f1,
        new_macro_f1=new.macro_f1,
        active_accuracy=old.accuracy,
        new_accuracy=new.accuracy,
    )


def human_labelled(labels: Sequence[HumanLabel]) -> list[LabelledDocument]:
    """Stored documents with their human labels (`storage.repository.labelled_documents`), as labelled documents
    (`repository.set_label` stored them checked and normalised)."""
    return [LabelledDocument(h.document, h.label, "human") for h in labels]
