"""A classification head on frozen sentence embeddings: multinomial logistic regression in numpy.

Stored as a small `.npz`: the weights, the feature standardisation, and a JSON metadata record (encoder name
and dimension, label order, training data hash, hyper-parameters, dev figures). A head is only ever applied to
embeddings of the encoder it was trained on: anything else is refused with a ModelError.
"""

from __future__ import annotations

import json
import logging
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tonevakt.errors import ModelError
from tonevakt.nlp.sentiment.base import LABELS

logger = logging.getLogger(__name__)

HEAD_FORMAT = 1


@dataclass
class Head:
    weights: np.ndarray  # (dim, 3)
    bias: np.ndarray  # (3,)
    mean: np.ndarray  # (dim,) feature standardisation
    scale: np.ndarray  # (dim,)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.weights.shape[0])

    @property
    def encoder(self) -> str:
        return str(self.meta.get("encoder", ""))

    def logits(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ModelError(f"head expects ({self.dim})-dimensional embeddings, got shape {x.shape}")
        z = (x.astype(np.float64) - self.mean) / self.scale
        return z @ self.weights + self.bias

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return softmax(self.logits(x))

    def check_encoder(self, encoder: str, dim: int, where: str = "") -> None:
        """Refuse a head built for another encoder or dimension."""
        src = f" ({where})" if where else ""
        if self.encoder != encoder:
            raise ModelError(
                f"sentiment head{src} was trained on embeddings of {self.encoder or 'an unknown encoder'!r}, "
                f"not {encoder!r}: retrain it with 'tonevakt model train-head'"
            )
        if self.dim != dim:
            raise ModelError(
                f"sentiment head{src} expects {self.dim}-dimensional embeddings but encoder {encoder!r} gives {dim}"
            )

    # -- files ---------------------------------------------------------------------------------------------

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {**self.meta, "format": HEAD_FORMAT, "labels": list(LABELS), "encoder_dim": self.dim}
        with path.open("wb") as f:
            np.savez_compressed(
                f,
                weights=self.weights.astype(np.float32),
                bias=self.bias.astype(np.float32),
                mean=self.mean.astype(np.float32),
                scale=self.scale.astype(np.float32),
                meta=np.array(json.dumps(meta, ensure_ascii=False, sort_keys=True)),
            )

    @classmethod
    def load(cls, path: Path) -> Head:
        keys = ("weights", "bias", "mean", "scale", "meta")
        try:
            with np.load(path, allow_pickle=False) as z:
                missing = [k for k in keys if k not in z.files]
                if missing:
                    raise ModelError(f"{path} is not a sentiment head: {', '.join(missing)} missing")
                arrays = {k: z[k] for k in keys}
        except FileNotFoundError as e:
            raise ModelError(f"sentiment head not found: {path}") from e
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:  # a cut-off copy is a BadZipFile
            raise ModelError(f"cannot read sentiment head {path}: {e}") from e
        try:
            meta = json.loads(str(arrays["meta"]))
        except json.JSONDecodeError as e:
            raise ModelError(f"{path}: metadata is not valid JSON: {e}") from e
        if meta.get("format") != HEAD_FORMAT:
            raise ModelError(
                f"{path}: head format {meta.get('format')!r} is not supported (expected {HEAD_FORMAT})"
            )
        if tuple(meta.get("labels", ())) != LABELS:
            raise ModelError(f"{path}: label order {meta.get('labels')!r} is not {list(LABELS)!r}")
        w = arrays["weights"].astype(np.float64)
        if w.ndim != 2 or w.shape[1] != len(LABELS) or arrays["bias"].shape != (len(LABELS),):
            raise ModelError(f"{path}: weights of shape {w.shape} do not fit {len(LABELS)} labels")
        if meta.get("encoder_dim") != w.shape[0] or arrays["mean"].shape != (w.shape[0],):
            raise ModelError(
                f"{path}: encoder_dim {meta.get('encoder_dim')!r} does not fit weights {w.shape}"
            )
        return cls(
            w,
            arrays["bias"].astype(np.float64),
            arrays["mean"].astype(np.float64),
            arrays["scale"].astype(np.float64),
            meta,
        )


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_logistic(
    x: np.ndarray,
    y: np.ndarray,
    l2: float = 1e-3,
    class_weight: np.ndarray | None = None,
    iterations: int = 400,
    lr: float = 0.05,
) -> Head:
    """Multinomial logistic regression (full-batch Adam, zero start: deterministic) on standardised
    features. `l2` is the penalty per example; `class_weight` weighs each class's examples."""
    x = x.astype(np.float64)
    n, d = x.shape
    k = len(LABELS)
    mean = x.mean(axis=0)
    scale = x.std(axis=0) + 1e-6
    z = ((x - mean) / scale).astype(np.float32)  # float32: half the memory traffic, same result to 1e-5
    onehot = np.eye(k, dtype=np.float32)[y]
    sw = np.ones(n) if class_weight is None else class_weight[y]
    sw = (sw / sw.sum()).astype(np.float32)
    w = np.zeros((d, k), dtype=np.float32)
    b = np.zeros(k, dtype=np.float32)
    mw, vw, mb, vb = np.zeros_like(w), np.zeros_like(w), np.zeros_like(b), np.zeros_like(b)
    b1, b2, eps = 0.9, 0.999, 1e-8
    for t in range(1, iterations + 1):
        p = softmax(z @ w + b)
        g = (p - onehot) * sw[:, None]
        gw = z.T @ g + l2 * w
        gb = g.sum(axis=0)
        mw, vw = b1 * mw + (1 - b1) * gw, b2 * vw + (1 - b2) * gw * gw
        mb, vb = b1 * mb + (1 - b1) * gb, b2 * vb + (1 - b2) * gb * gb
        c1, c2 = 1 - b1**t, 1 - b2**t
        w -= lr * (mw / c1) / (np.sqrt(vw / c2) + eps)
        b -= lr * (mb / c1) / (np.sqrt(vb / c2) + eps)
    return Head(w.astype(np.float64), b.astype(np.float64), mean, scale, {})
