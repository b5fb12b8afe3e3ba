"""The transformers backend, through the real loading path, on a tiny random BERT saved in a tmp folder."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tonevakt.config import Settings
from tonevakt.errors import ModelError
from tonevakt.models import Document
from tonevakt.nlp.sentiment import load_scorer
from tonevakt.nlp.sentiment.transformers_backend import TransformersScorer, map_labels

VOCAB = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    *"abcdefghijklmnopqrstuvwxyzæøå",
    "##e",
    "##n",
    "##t",
    "helseplattformen",
    "er",
    "bra",
    "dårlig",
    "ikke",
    "god",
    ".",
    ",",
    "!",
    "journal",
    "sykehus",
]


def build_tiny_bert(folder: Path, id2label: dict[int, str]) -> Path:
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab_file=str(vocab), do_lower_case=True)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(VOCAB),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        num_labels=len(id2label),
        id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
    )
    model = BertForSequenceClassification(config)
    model.eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), {0: "negative", 1: "neutral", 2: "positive"})


def _settings(make_settings: Callable[..., Settings], model: Path | str, **extra: object) -> Settings:
    return make_settings(
        sentiment={
            "backend": "transformers",
            "model": str(model),
            "device": "cpu",
            "max_length": 32,
            "batch_size": 2,
            **extra,
        }
    )


def test_offline_environment() -> None:
    assert os.environ.get("HF_HUB_OFFLINE") == "1"


def test_loads_folder_and_predicts_probabilities(
    tiny_bert: Path, make_settings: Callable[..., Settings]
) -> None:
    scorer = load_scorer(_settings(make_settings, tiny_bert).sentiment)
    assert isinstance(scorer, TransformersScorer)
    assert scorer.backend == "transformers" and scorer.model_id == str(tiny_bert) and scorer.device == "cpu"
    texts = ["Helseplattformen er bra.", "Helseplattformen er ikke god!", "journal", "x " * 200]
    probs = scorer.predict(texts)
    assert probs.shape == (4, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
    # the same as running the model by hand (3 labels in our order: no remapping)
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_bert)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert).eval()
    with torch.no_grad():
        ref = torch.softmax(model(**tok(texts[:1], return_tensors="pt")).logits, -1).numpy()
    np.testing.assert_allclose(probs[:1], ref, rtol=1e-4, atol=1e-6)


def test_scores_documents(tiny_bert: Path, make_settings: Callable[..., Settings]) -> None:
    scorer = load_scorer(_settings(make_settings, tiny_bert).sentiment)
    docs = [
        Document(
            source_id="s", voice="media", title="Sykehus", lead="", text="Helseplattformen er bra. Slutt."
        ),
        Document(source_id="s", voice="patient", title="", lead="", text="Helseplattformen er dårlig."),
    ]
    scores = scorer.score_documents(docs)
    assert [s.document_id for s in scores] == [d.id for d in docs]
    for s in scores:
        assert s.model == str(tiny_bert)
        assert -1 <= s.tone <= 1 and abs(s.p_negative + s.p_neutral + s.p_positive - 1) < 1e-6
        assert s.label in ("negative", "neutral", "positive")
        assert abs(s.tone - (s.p_positive - s.p_negative)) < 1e-9  # one passage each: tone of the mean


def test_revision_goes_into_model_id_and_label_map_is_used(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    folder = build_tiny_bert(tmp_path / "stars", {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2", 3: "LABEL_3"})
    with pytest.raises(ModelError, match="cannot map the model's labels 'LABEL_0', 'LABEL_1'"):
        load_scorer(_settings(make_settings, folder).sentiment)
    s = _settings(
        make_settings,
        folder,
        label_map={"LABEL_0": "negative", "LABEL_1": "negative", "LABEL_2": "neutral", "LABEL_3": "positive"},
    )
    scorer = load_scorer(s.sentiment)
    assert isinstance(scorer, TransformersScorer) and scorer.mapping == [0, 0, 1, 2]
    probs = scorer.predict(["bra"])
    np.testing.assert_allclose(probs.sum(), 1.0, rtol=1e-6)


def test_unknown_label_in_label_map(tiny_bert: Path, make_settings: Callable[..., Settings]) -> None:
    with pytest.raises(ModelError, match="does not have: POSITIVE"):
        load_scorer(_settings(make_settings, tiny_bert, label_map={"POSITIVE": "positive"}).sentiment)


def test_missing_model_is_a_clear_error(tmp_path: Path, make_settings: Callable[..., Settings]) -> None:
    with pytest.raises(
        ModelError, match=r"(?s)cannot load sentiment model 'no-such-org/no-such-model'.*HF_HUB_OFFLINE"
    ):
        load_scorer(_settings(make_settings, "no-such-org/no-such-model").sentiment)


@pytest.mark.parametrize(
    ("id2label", "expected"),
    [
        ({0: "negative", 1: "neutral", 2: "positive"}, [0, 1, 2]),
        ({0: "Positive", 1: "Negative", 2: "Mixed", 3: "Neutral"}, [2, 0, 1, 1]),
        ({0: "1 star", 1: "2 stars", 2: "3 stars", 3: "4 stars", 4: "5 stars"}, [0, 0, 1, 2, 2]),
        ({0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}, [0, 1, 2]),
        ({0: "LABEL_0", 1: "LABEL_1"}, [0, 2]),
        ({0: "NEG", 1: "POS"}, [0, 2]),
    ],
)
def test_default_label_mapping(id2label: dict[int, str], expected: list[int]) -> None:
    assert map_labels(id2label, {}) == expected


def test_unmappable_labels() -> None:
    with pytest.raises(ModelError, match="'joy', 'anger'.*label_map"):
        map_labels({0: "joy", 1: "anger", 2: "neutral"}, {})
