"""The one sentiment interface. A backend implements `predict`; document scoring is done once, here.

scorer = load_scorer(settings.sentiment)
probs = scorer.predict(["Helseplattformen fungerer godt."])   # (n, 3): negative, neutral, positive
scores = scorer.score_documents(docs, progress=callback)        # one models.Score per document
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np

from tonevakt.errors import ModelError
from tonevakt.models import TONE_LABELS, Document, Score
from tonevakt.nlp.passages import select_passages, windows
from tonevakt.nlp.relevance import target_terms

logger = logging.getLogger(__name__)

LABELS: tuple[str, ...] = TONE_LABELS  # ("negative", "neutral", "positive"): the column order of predict()
Progress = Callable[[str, int, int], None]  # (what, done, total)
# The data sets a model's dev figure can come from (`Scorer.dev_set`, stored as `models.dev_set`).
NOREC_DEV = "norec_sentence"  # NoReC_sentence dev: evaluative words in reviews (the secondary benchmark)
INDOMAIN_DEV = "helseplattformen_tone"  # labelled texts about Helseplattformen: the product's figure

WORDS_PER_TOKEN = 0.6  # Norwegian news text: about 1.6 subword tokens per word in e5/BERT vocabularies


class Scorer:
    """Base class of every sentiment backend.

    Subclasses set the attributes and implement `predict`. `model_id` is what `scores.model` stores, so two
    different models (or heads) must have different ids.
    """

    model_id: str = ""
    backend: str = ""
    description: str = ""
    dev_macro_f1: float | None = None
    dev_set: str | None = None  # where dev_macro_f1 was measured: NOREC_DEV or INDOMAIN_DEV
    max_length: int = 256  # tokens per passage; longer passages are cut into windows
    batch_size: int = 32
    context_sentences: int = 1
    max_passages: int = 8

    def predict(self, texts: list[str]) -> np.ndarray:
        """Probabilities (n, 3) in the order negative, neutral, positive; rows sum to 1."""
        raise NotImplementedError

    # -- shared machinery -----------------------------------------------------------------------------

    def configure(self, max_length: int, batch_size: int, context_sentences: int, max_passages: int) -> None:
        """Passage settings (from `SentimentSettings`)."""
        self.max_length = max_length
        self.batch_size = batch_size
        self.context_sentences = context_sentences
        self.max_passages = max_passages

    def predict_batched(
        self, texts: Sequence[str], progress: Progress | None = None, what: str = "scoring passages"
    ) -> np.ndarray:
        """`predict` in batches of similar length (less padding), results in the input order."""
        n = len(texts)
        out = np.zeros((n, 3), dtype=np.float64)
        if n == 0:
            return out
        order = sorted(range(n), key=lambda i: len(texts[i]))
        done = 0
        for start in range(0, n, self.batch_size):
            idx = order[start : start + self.batch_size]
            probs = np.asarray(self.predict([texts[i] for i in idx]), dtype=np.float64)
            if probs.shape != (len(idx), 3):
                raise ModelError(
                    f"model {self.model_id!r} returned shape {probs.shape}, expected ({len(idx)}, 3)"
                )
            out[idx] = probs
            done += len(idx)
            if progress:
                progress(what, done, n)
        return out

    def passages(self, doc: Document) -> list[str]:
        """The windows to score for one document (at least one when it has any text)."""
        chosen = select_passages(doc, target_terms(doc.matched), self.context_sentences, self.max_passages)
        max_words = max(16, int(self.max_length * WORDS_PER_TOKEN))
        out = [w for p in chosen for w in windows(p, max_words)]
        return out[: self.max_passages * 4]

    def score_documents(self, docs: Sequence[Document], progress: Progress | None = None) -> list[Score]:
        """Score documents: tone = mean over passages of P(pos) − P(neg); label = argmax of the mean
        probabilities; the passage with the strongest |tone| is kept. Documents without text are skipped."""
        texts: list[str] = []
        owner: list[int] = []
        for k, d in enumerate(docs):
            for p in self.passages(d):
                texts.append(p)
                owner.append(k)
        probs = self.predict_batched(
            texts, progress=progress, what=f"scoring passages of {len(docs)} documents"
        )
        by_doc: dict[int, list[int]] = {}
        for row, k in enumerate(owner):
            by_doc.setdefault(k, []).append(row)
        scores: list[Score] = []
        for k, d in enumerate(docs):
            rows = by_doc.get(k)
            if not rows:
                logger.warning("document %s has no text to score; skipped", d.id)
                continue
            p = probs[rows]
            tones = p[:, 2] - p[:, 0]
            mean = p.mean(axis=0)
            strongest = rows[int(np.argmax(np.abs(tones)))]
            scores.append(
                Score(
                    document_id=d.id,
                    model=self.model_id,
                    tone=float(tones.mean()),
                    label=LABELS[int(np.argmax(mean))],
                    p_negative=float(mean[0]),
                    p_neutral=float(mean[1]),
                    p_positive=float(mean[2]),
                    passage=texts[strongest],
                    n_passages=len(rows),
                )
            )
        return scores

    def info(self) -> dict[str, object]:
        return {
            "model": self.model_id,
            "backend": self.backend,
            "description": self.description,
            "dev_macro_f1": self.dev_macro_f1,
            "dev_set": self.dev_set,
        }
