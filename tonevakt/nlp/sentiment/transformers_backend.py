"""The `transformers` backend: any Hugging Face sequence-classification model, by hub id or local folder.

The model's own labels (`config.id2label`: "negative", "LABEL_0", "1 star", "Mixed", ...) are mapped onto
negative / neutral / positive: first through `sentiment.label_map` in config, then by the defaults below.
Probabilities of model labels that map onto the same class are added. A label that maps nowhere is an error.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from tonevakt.config import SentimentSettings
from tonevakt.errors import ModelError
from tonevakt.nlp.sentiment.base import LABELS, Scorer

logger = logging.getLogger(__name__)

# Model label (casefolded, trimmed) -> our class.
DEFAULT_LABELS: dict[str, str] = {
    "negative": "negative",
    "neg": "negative",
    "negativ": "negative",
    "negativt": "negative",
    "neutral": "neutral",
    "neu": "neutral",
    "nøytral": "neutral",
    "nøytralt": "neutral",
    "mixed": "neutral",
    "positive": "positive",
    "pos": "positive",
    "positiv": "positive",
    "positivt": "positive",
    "1 star": "negative",
    "2 stars": "negative",
    "3 stars": "neutral",
    "4 stars": "positive",
    "5 stars": "positive",
    "very negative": "negative",
    "very positive": "positive",
}
_GENERIC = re.compile(r"^label_(\d+)$")


def map_labels(id2label: dict[int, str], label_map: dict[str, str]) -> list[int]:
    """For each model output index (in order), the index of our class in LABELS. Raises ModelError."""
    n = len(id2label)
    names = [str(id2label[i]) for i in range(n)]
    unknown = sorted(set(label_map) - set(names))
    if unknown:
        raise ModelError(
            f"sentiment.label_map names labels the model does not have: {', '.join(unknown)} "
            f"(the model's labels: {', '.join(names)})"
        )
    generic = all(_GENERIC.match(x.casefold()) for x in names)
    out: list[int] = []
    unmapped: list[str] = []
    for i, name in enumerate(names):
        key = name.strip().casefold()
        target = label_map.get(name) or DEFAULT_LABELS.get(key)
        if target is None and generic and n in (2, 3):
            # LABEL_0.. without names: the common convention is negative(, neutral), positive
            target = ("negative", "positive")[i] if n == 2 else LABELS[i]
        if target is None:
            unmapped.append(name)
            continue
        out.append(LABELS.index(target))
    if unmapped:
        raise ModelError(
            f"cannot map the model's labels {', '.join(repr(x) for x in unmapped)} onto "
            f"negative/neutral/positive: set sentiment.label_map in the config, e.g. "
            f"label_map: {{{unmapped[0]}: negative}}"
        )
    if generic and not label_map:
        logger.warning("model labels %s have no names: assumed %s", names, [LABELS[i] for i in out])
    return out


class TransformersScorer(Scorer):
    """AutoModelForSequenceClassification + its tokenizer; softmax over the logits, mapped to our labels."""

    backend = "transformers"

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        model_id: str,
        mapping: list[int],
        device: str,
        max_length: int = 256,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.model_id = model_id
        self.mapping = mapping
        self.device = device
        self.max_length = max_length
        self.description = f"transformers {model.__class__.__name__} ({model_id}) on {device}"

    @classmethod
    def from_settings(cls, settings: SentimentSettings) -> TransformersScorer:
        try:
            import torch
            from transformers import AutoModelForSequenceClassification, AutoTokenizer
        except ImportError as e:
            raise ModelError(f"the transformers backend needs torch and transformers: {e}") from e
        name = settings.model
        local = Path(name).expanduser()
        source = str(local) if local.exists() else name
        offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0", "false", "False")
        kwargs: dict[str, Any] = {
            "revision": settings.revision,
            "trust_remote_code": settings.trust_remote_code,
        }
        if offline or local.exists():
            kwargs["local_files_only"] = True
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a "Loading weights" bar per load is noise in logs and journald
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
            model = AutoModelForSequenceClassification.from_pretrained(source, **kwargs)
        except (OSError, ValueError, KeyError) as e:
            hint = (
                " (HF_HUB_OFFLINE is set: only models already in the local cache or a folder work)"
                if offline
                else ""
            )
            raise ModelError(f"cannot load sentiment model {name!r}: {e}{hint}") from e
        id2label = {int(k): v for k, v in (model.config.id2label or {}).items()}
        if not id2label:
            raise ModelError(f"model {name!r} has no id2label in its config")
        mapping = map_labels(id2label, dict(settings.label_map))
        device = settings.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        elif device == "cuda" and not torch.cuda.is_available():
            raise ModelError("sentiment.device is 'cuda' but no CUDA device is available")
        model.to(device)
        model.eval()
        model_id = name  # as configured: the hub id, or the folder as written in config.yaml
        if settings.revision:
            model_id = f"{model_id}@{settings.revision}"
        return cls(model, tokenizer, model_id, mapping, device, settings.max_length)

    def predict(self, texts: list[str]) -> np.ndarray:
        import torch

        if not texts:
            return np.zeros((0, 3))
        limit = min(
            self.max_length, getattr(self.tokenizer, "model_max_length", self.max_length) or self.max_length
        )
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=limit, return_tensors="pt")
        enc = {k: v.to(self.device) for k, v in enc.items()}
        with torch.inference_mode():
            logits = self.model(**enc).logits.float()
        probs = torch.softmax(logits, dim=-1).cpu().numpy().astype(np.float64)
        out = np.zeros((len(texts), 3))
        for j, target in enumerate(self.mapping):
            out[:, target] += probs[:, j]
        return out
