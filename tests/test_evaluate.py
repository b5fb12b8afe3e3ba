"""Evaluation: metrics against hand-computed values, labelled files in every format, the CLI (file and
human labels) with the real shipped model."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tonevakt.cli import main
from tonevakt.config import Settings
from tonevakt.nlp.evaluate import (
    EvaluationError,
    compute_metrics,
    format_report,
    predicted_labels,
    read_labelled,
)
from tonevakt.nlp.sentiment import FROZEN_HEAD_MODEL
from tonevakt.nlp.sentiment.embedded import shipped_head_path

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "eval"
LABELS3 = ["negative", "neutral", "positive"]
needs_head = pytest.mark.skipif(not shipped_head_path(FROZEN_HEAD_MODEL).exists(), reason="no shipped head")


def test_three_class_metrics_by_hand() -> None:
    gold = [
        "negative",
        "negative",
        "neutral",
        "neutral",
        "neutral",
        "positive",
        "positive",
        "positive",
        "positive",
        "negative",
    ]
    pred = [
        "negative",
        "neutral",
        "neutral",
        "neutral",
        "positive",
        "positive",
        "positive",
        "negative",
        "positive",
        "negative",
    ]
    m = compute_metrics(gold, pred, LABELS3)
    # confusion (rows gold, columns predicted): neg [2 1 0], neu [0 2 1], pos [1 0 3]
    assert m.confusion == [[2, 1, 0], [0, 2, 1], [1, 0, 3]]
    assert m.n == 10 and m.accuracy == pytest.approx(0.7)
    assert m.per_class["negative"].precision == pytest.approx(2 / 3)
    assert m.per_class["negative"].recall == pytest.approx(2 / 3)
    assert m.per_class["neutral"].f1 == pytest.approx(2 / 3)
    assert m.per_class["positive"].precision == pytest.approx(3 / 4)
    assert m.per_class["positive"].recall == pytest.approx(3 / 4)
    assert m.per_class["positive"].support == 4
    assert m.macro_f1 == pytest.approx((2 / 3 + 2 / 3 + 3 / 4) / 3)  # 0.6944
    assert not m.binary


def test_binary_metrics_by_hand_and_unpredicted_class() -> None:
    m = compute_metrics(
        ["positive", "positive", "positive", "negative"],
        ["positive", "negative", "negative", "negative"],
        ["negative", "positive"],
    )
    assert m.binary and m.accuracy == pytest.approx(0.5)
    assert m.per_class["negative"].precision == pytest.approx(1 / 3) and m.per_class["negative"].recall == 1.0
    assert m.per_class["negative"].f1 == pytest.approx(0.5)
    assert m.per_class["positive"].precision == 1.0 and m.per_class["positive"].recall == pytest.approx(1 / 3)
    assert m.macro_f1 == pytest.approx(0.5)
    never = compute_metrics(["negative", "positive"], ["negative", "negative"], ["negative", "positive"])
    assert never.per_class["positive"].precision == 0.0 and never.per_class["positive"].f1 == 0.0
    assert never.macro_f1 == pytest.approx((2 / 3 + 0) / 2)


def test_predicted_labels_binary_resolves_neutral() -> None:
    probs = np.array([[0.2, 0.7, 0.1], [0.1, 0.6, 0.3], [0.5, 0.1, 0.4]])
    assert predicted_labels(probs, binary=False) == ["neutral", "neutral", "negative"]
    assert predicted_labels(probs, binary=True) == ["negative", "positive", "negative"]


@pytest.mark.parametrize("name", ["check.json", "check.jsonl", "check.csv"])
def test_read_labelled_formats(name: str) -> None:
    ex = read_labelled(FIXTURES / name)
    assert [e.label for e in ex] == ["positive", "negative", "neutral", "negative"]
    assert ex[0].text.startswith("HelsaMi")


def test_read_labelled_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nFint,kjempebra\n", encoding="utf-8")
    with pytest.raises(EvaluationError, match="row 1: bad label 'kjempebra'"):
        read_labelled(bad)
    nolabel = tmp_path / "nolabel.jsonl"
    nolabel.write_text('{"text": "Fint"}\n', encoding="utf-8")
    with pytest.raises(EvaluationError, match="row 1 has no 'text' and 'label'"):
        read_labelled(nolabel)
    with pytest.raises(EvaluationError, match="no such file"):
        read_labelled(tmp_path / "missing.json")


def test_format_report() -> None:
    m = compute_metrics(["negative", "positive"], ["negative", "positive"], LABELS3)
    text = format_report(m, "demo")
    assert "accuracy 1.000" in text and "confusion (rows: gold, columns: predicted)" in text


@needs_head
def test_cli_evaluate_file_json(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    s = make_settings()
    r = CliRunner().invoke(main, ["--config", s.file, "evaluate", str(FIXTURES / "check.jsonl"), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["n"] == 4 and out["model"] == FROZEN_HEAD_MODEL and not out["binary"]
    assert 0 <= out["accuracy"] <= 1 and 0 <= out["macro_f1"] <= 1
    assert sum(map(sum, out["confusion"]["matrix"])) == 4
    r2 = CliRunner().invoke(main, ["--config", s.file, "evaluate", str(FIXTURES / "binary.csv")])
    assert r2.exit_code == 0, r2.output
    assert "binary (positive/negative)" in r2.output


def test_cli_evaluate_needs_file_or_labels(make_settings: Callable[..., Settings]) -> None:
    s = make_settings()
    r = CliRunner().invoke(main, ["--config", s.file, "evaluate"])
    assert r.exit_code == 2 and "give a FILE or --labels" in r.output


@needs_head
def test_cli_evaluate_labels(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    from tonevakt import pipeline
    from tonevakt.storage import repository as repo
    from tonevakt.storage.db import database

    s = make_settings()
    src = tmp_path / "feedback.jsonl"
    rows = [
        {"text": "HelsaMi er helt fantastisk, jeg får svar med en gang. Takk!", "label": "positive"},
        {
            "text": "Jeg er svært skuffet over Helseplattformen, den krasjer hele tiden.",
            "label": "negative",
        },
        {"text": "Helseplattformen blir tatt i bruk i Ålesund i november.", "label": "neutral"},
    ]
    src.write_text(
        "\n".join(json.dumps({"text": r["text"]}, ensure_ascii=False) for r in rows), encoding="utf-8"
    )
    pipeline.import_file(s, src, "feedback", voice="patient")
    with database(s.db_path) as db:
        ids = {t: i for i, t in db.fetchall("SELECT id, text FROM documents")}
        for r in rows:
            repo.set_label(db, ids[r["text"]], r["label"])
    res = CliRunner().invoke(main, ["--config", s.file, "evaluate", "--labels", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["n"] == 3 and out["source"] == "human labels"
    # measured as a labelled file of documents is (nlp/tone.measure): the shares come with the figures
    assert out["shares_true"] == {"negative": 0.3333, "neutral": 0.3333, "positive": 0.3333}
    assert sum(out["shares_predicted"].values()) == pytest.approx(1.0, abs=1e-3)
    assert [sum(row) for row in out["confusion"]["matrix"]] == [1, 1, 1]  # one gold label of each class
    # the two plainly worded cases come out right with the shipped model
    assert out["per_class"]["positive"]["recall"] == 1.0 and out["per_class"]["negative"]["recall"] == 1.0


def test_cli_evaluate_labels_without_labels(make_settings: Callable[..., Settings]) -> None:
    from tonevakt import pipeline

    s = make_settings()
    pipeline.init(s)
    r = CliRunner().invoke(main, ["--config", s.file, "evaluate", "--labels"])
    assert r.exit_code == 1 and "no human labels stored yet" in r.output
