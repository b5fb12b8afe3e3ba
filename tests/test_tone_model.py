"""The default tone model: favourability toward Helseplattformen read per document (issue 14).

Its figures on the labelled in-domain dev set, and those of the member's review-sentiment head on NoReC dev,
stay above the floors pinned in tests/model_floors.json; `model adapt` refits the head on human labels through
the CLI on a real database, and refuses a head that is worse than the active one.

The data sets are read from ../shared under the rule of tests/support/paths.py: when ../shared is there, a
missing file fails the test instead of skipping it.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tests.support.paths import NOREC, TONE_DATA, needs_shared, shared_file
from tonevakt.cli import main
from tonevakt.errors import ModelError
from tonevakt.models import TONE_LABELS
from tonevakt.nlp import tone
from tonevakt.nlp.e5.scorer import TONE_MODEL_ID, ToneHead, ToneScorer, tone_head_path
from tonevakt.nlp.evaluate import compute_metrics, read_labelled

NOREC_DEV = NOREC / "3class" / "dev.json"
FLOORS = json.loads(Path(__file__).with_name("model_floors.json").read_text())[TONE_MODEL_ID]


# -- the head and its fit (no model needed) --------------------------------------------------------------


def test_head_round_trip_and_refuses_what_is_not_a_head(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    head = ToneHead(
        model_id="t",
        weight=rng.normal(size=(3, 8)),
        bias=rng.normal(size=3),
        layers=(6, 12),
        encoder="x.npz#0",
        logit_bias=np.array([0.1, 0.0, -0.1]),
        confusion={"labels": list(TONE_LABELS), "counts": [[3, 1, 0], [1, 2, 0], [0, 0, 2]], "n": 9},
        meta={"indomain_cv": {"macro_f1": 0.5}},
    )
    head.save(tmp_path / "h.npz")
    back = ToneHead.load(tmp_path / "h.npz")
    vectors = rng.normal(size=(5, 8))
    assert np.allclose(back.probabilities(vectors), head.probabilities(vectors), atol=1e-6)
    assert back.layers == (6, 12) and back.encoder == "x.npz#0" and back.confusion == head.confusion
    assert np.allclose(back.probabilities(vectors).sum(axis=1), 1.0, atol=1e-5)
    np.savez(
        tmp_path / "bad.npz",
        weight=np.zeros((2, 8)),
        bias=np.zeros(3),
        logit_bias=np.zeros(3),
        about=np.array(json.dumps({"model_id": "t", "layers": [12], "encoder": "x"})),
    )
    with pytest.raises(ModelError, match="not a tone head"):
        ToneHead.load(tmp_path / "bad.npz")
    with pytest.raises(ModelError, match="cannot read the tone head"):
        ToneHead.load(tmp_path / "missing.npz")


def test_fit_head_learns_separable_classes_and_reports_its_confusion() -> None:
    rng = np.random.default_rng(7)
    centres = rng.normal(size=(3, 16)) * 3
    labels = [TONE_LABELS[i % 3] for i in range(60)]
    vectors = np.stack([centres[TONE_LABELS.index(lab)] + rng.normal(size=16) for lab in labels])
    weight, bias, report = tone.fit_head(vectors, labels, "synthetic")
    assert report.cv["macro_f1"] > 0.9 and set(report.cv_by_penalty) == {str(c) for c in tone.PENALTIES}
    conf = report.confusion
    assert conf["n"] == 60 and conf["labels"] == list(TONE_LABELS)
    assert [sum(r) for r in conf["counts"]] == [20, 20, 20]
    predicted = tone.predict_logistic(vectors, weight, bias).argmax(axis=1)
    assert (predicted == np.array([TONE_LABELS.index(lab) for lab in labels])).mean() > 0.95
    with pytest.raises(tone.ToneDataError, match="too few labelled documents"):
        tone.fit_head(vectors[:12], labels[:12], "tiny")


def test_tone_file_errors_name_the_line(tmp_path: Path) -> None:
    good = {
        "url": "https://example.no/a",
        "source": "example.no",
        "title": None,
        "date": None,
        "lang": "nb",
        "text": "Helseplattformen er forsinket igjen.",
        "on_topic": True,
        "tone": "negative",
    }
    off = dict(good, on_topic=False, tone=None)
    path = tmp_path / "set.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in (good, off)) + "\n", encoding="utf-8")
    docs = tone.read_tone_file(path)
    assert [d.label for d in docs] == ["negative"] and tone.is_tone_file(path)
    path.write_text(json.dumps(good) + "\n" + json.dumps(dict(good, tone="sur")) + "\n", encoding="utf-8")
    with pytest.raises(tone.ToneDataError, match=r"set.jsonl:2: bad tone 'sur'"):
        tone.read_tone_file(path)
    path.write_text(json.dumps(good) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(tone.ToneDataError, match=r"set.jsonl:2: not valid JSON"):
        tone.read_tone_file(path)
    with pytest.raises(tone.ToneDataError, match="no such file"):
        tone.read_tone_file(tmp_path / "missing.jsonl")


def test_adaptation_is_accepted_only_when_not_worse() -> None:
    def adaptation(new: float, old: float, new_acc: float = 0.5, old_acc: float = 0.5) -> tone.Adaptation:
        return tone.Adaptation(
            head=None,
            report=None,
            n_file=1,
            n_human=1,
            active_model="a",  # type: ignore[arg-type]
            active_macro_f1=old,
            new_macro_f1=new,
            active_accuracy=old_acc,
            new_accuracy=new_acc,
        )

    assert adaptation(0.7, 0.6).better and adaptation(0.6, 0.6).better
    assert not adaptation(0.59, 0.6).better and not adaptation(0.6, 0.6, 0.4, 0.5).better


def test_adapt_reads_each_document_once() -> None:
    """`tone.adapt` computes the document vectors once: the new head is fitted on them and the active head's
    labels of the human-labelled documents come from them (no second pass through the encoder)."""
    from tonevakt.models import Document

    rng = np.random.default_rng(3)
    centres = rng.normal(size=(3, 8)) * 3
    labels = [TONE_LABELS[i % 3] for i in range(60)]
    vectors = {f"d{i}": centres[TONE_LABELS.index(lab)] + rng.normal(size=8) for i, lab in enumerate(labels)}

    class Reader:
        model_id = "active"
        head = ToneHead(
            model_id="active", weight=centres, bias=np.zeros(3), layers=(6, 12), encoder="w.npz#0"
        )
        read: list[str] = []

        def document_vectors(self, docs, progress=None):  # noqa: ANN001, ANN202
            self.read += [d.id for d in docs]
            return list(range(len(docs))), np.stack([vectors[d.id] for d in docs]), [], []

        def score_documents(self, docs, progress=None):  # noqa: ANN001, ANN202
            raise AssertionError("adapt scores no document twice")

    def doc(i: int) -> Document:
        return Document(source_id="s", voice="media", title="", text="t", id=f"d{i}")

    shared = [tone.LabelledDocument(doc(i), labels[i], "file") for i in range(45)]
    human = [tone.LabelledDocument(doc(i), labels[i], "human") for i in range(45, 60)]
    reader = Reader()
    result = tone.adapt(reader, shared, human, "new")
    assert sorted(reader.read) == sorted(vectors) and len(reader.read) == 60
    active = Reader.head.probabilities(np.stack([vectors[h.document.id] for h in human])).argmax(axis=1)
    expected = compute_metrics([h.label for h in human], [TONE_LABELS[i] for i in active], TONE_LABELS)
    assert result.active_macro_f1 == expected.macro_f1 and result.n_human == 15


# -- the shipped model on real data ------------------------------------------------------------------------


def test_shipped_head_is_small_and_names_its_encoder() -> None:
    head = ToneHead.load(tone_head_path())
    assert tone_head_path().stat().st_size < 1024 * 1024
    assert head.model_id == TONE_MODEL_ID and head.layers == tone.LAYERS
    assert head.confusion and head.confusion["n"] >= 100 and head.meta["indomain_dev"]["n"] >= 50


@pytest.mark.slow
@needs_shared
def test_indomain_dev_figures_stay_above_floors(tmp_path: Path, make_settings) -> None:  # noqa: ANN001
    """`tonevakt evaluate dev.jsonl` scores the documents as the pipeline does: macro-F1, every class's F1 and
    the shares of negative and positive documents against the truth stay within the pinned floors."""
    dev = shared_file(TONE_DATA / "dev.jsonl")
    make_settings(sentiment={"backend": "embedded", "model": TONE_MODEL_ID})
    result = CliRunner().invoke(
        main, ["--config", str(tmp_path / "config.yaml"), "evaluate", str(dev), "--json"]
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output[result.output.index("{") :])
    print(json.dumps({k: figures[k] for k in ("macro_f1", "shares_true", "shares_predicted")}))
    assert figures["n"] >= 50 and figures["model"] == TONE_MODEL_ID
    assert figures["macro_f1"] >= FLOORS["indomain_dev_macro_f1"]
    for label, floor in FLOORS["indomain_dev_f1_per_class"].items():
        assert figures["per_class"][label]["f1"] >= floor, label
    for label in ("negative", "positive"):
        assert abs(figures["share_error"][label]) <= FLOORS["indomain_dev_max_share_error"], label


@pytest.mark.slow
@needs_shared
def test_norec_dev_review_sentiment_stays_above_floor() -> None:
    examples = read_labelled(shared_file(NOREC_DEV))
    scorer = ToneScorer.load()
    probs = scorer.predict_sentiment([e.text for e in examples])
    m = compute_metrics(
        [e.label for e in examples], [TONE_LABELS[i] for i in probs.argmax(axis=1)], TONE_LABELS
    )
    assert m.macro_f1 >= FLOORS["norec_dev_3class_macro_f1"]


ADAPT_TEXTS = {
    "negative": [
        "Helseplattformen: nye forsinkelser ved St. Olavs hospital, pasienter venter lenger på svar.",
        "Helsetilsynet fant alvorlige avvik etter innføringen av Helseplattformen i Trondheim kommune.",
        "Legene ved sykehuset i Ålesund advarer: Helseplattformen gjør arbeidsdagen tyngre og tryggheten mindre.",
        "Helseplattformen vil koste 300 millioner mer enn planlagt, viser nye tall fra Helse Midt-Norge.",
        "Sykepleiere vurderer å slutte etter månedsvis med feil i Helseplattformen.",
    ],
    "neutral": [
        "Helseplattformen tas i bruk ved sykehusene i Møre og Romsdal etter planen i november.",
        "Slik logger du inn i HelsaMi: bruk BankID og velg riktig kommune i Helseplattformen.",
        "Styret i Helse Midt-Norge behandler saken om Helseplattformen på møtet torsdag.",
        "Kommunen orienterer om opplæringen i Helseplattformen for nyansatte i januar.",
        "Helseplattformen AS har ansatt ny direktør, opplyser selskapet i en pressemelding.",
    ],
    "positive": [
        "Pasientene er fornøyde: HelsaMi gir rask tilgang til journalen og enklere timebestilling.",
        "Innføringen av Helseplattformen i Verdal gikk svært bra, sier kommunedirektøren.",
        "Legene i Molde roser Helseplattformen: nå er medisinlistene riktige og samlet på ett sted.",
        "Ventetidene har gått ned etter at Helseplattformen ble tatt i bruk, og de ansatte er fornøyde.",
        "Brukerutvalget: HelsaMi har gjort hverdagen lettere for mange pasienter i Trøndelag.",
    ],
}


@pytest.mark.slow
@needs_shared
def test_cli_model_adapt_refits_on_human_labels_and_guards_the_active_model(
    tmp_path: Path, make_settings
) -> None:  # noqa: ANN001
    """On a real database: documents imported, scored, labelled through `tonevakt label`, then `model adapt`
    refits the head on shared training documents plus those labels, and makes it active only when not worse.

    Each document is labelled with the active model's own label on it, so the active model is right on all 15
    human-labelled documents (accuracy 1) and the refitted head, whose labels there are out of fold, can at
    best tie it: this refit misses some, so it must be refused with nothing changed; `--force` then makes it
    active, and the adapted head is the configured model."""
    rows = [
        json.loads(line) for line in shared_file(TONE_DATA / "train.jsonl").read_text().splitlines() if line
    ]
    random.Random(3).shuffle(rows)
    data = tmp_path / "tone"
    data.mkdir()
    (data / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows[:45]) + "\n", encoding="utf-8")
    make_settings(sentiment={"backend": "embedded", "model": TONE_MODEL_ID})
    cfg = ["--config", str(tmp_path / "config.yaml")]
    feedback = tmp_path / "tilbakemeldinger.jsonl"
    texts = [t for ts in ADAPT_TEXTS.values() for t in ts]
    feedback.write_text("\n".join(json.dumps({"text": t}) for t in texts) + "\n", encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(main, [*cfg, "import", str(feedback), "--source", "skjema", "--voice", "patient"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, [*cfg, "score"])
    assert result.exit_code == 0, result.output
    from tonevakt.storage.db import database

    settings = make_settings(sentiment={"backend": "embedded", "model": TONE_MODEL_ID})
    with database(settings.db_path, 5) as db:
        own = db.fetchall(
            "SELECT d.id, s.label FROM documents d JOIN scores s ON s.document_id = d.id WHERE s.model = ?",
            [TONE_MODEL_ID],
        )
    assert len(own) == len(texts) == 15
    for doc_id, label in own:
        result = runner.invoke(main, [*cfg, "label", doc_id, label])
        assert result.exit_code == 0, result.output
    active = settings.models_path / "active.json"
    result = runner.invoke(main, [*cfg, "model", "adapt", "--data", str(data)])
    on_topic = sum(1 for r in rows[:45] if r["on_topic"])  # off-topic rows carry no tone and are left out
    assert f"refitted on {on_topic} shared labelled documents and 15 human labels" in result.output, (
        result.output
    )
    assert (
        "cross-validated macro-F1" in result.output and "on the 15 human-labelled documents" in result.output
    )
    assert f"active {TONE_MODEL_ID} macro-F1" in result.output and "(accuracy 1.000)" in result.output, (
        result.output
    )
    assert result.exit_code != 0, result.output
    assert "refused: the refitted head is worse" in result.output and not active.exists()
    result = runner.invoke(main, [*cfg, "model", "adapt", "--data", str(data), "--force"])
    assert result.exit_code == 0, result.output
    assert active.exists() and "active now: tonevakt-e5-small-tone+adapted-" in result.output
    info = runner.invoke(main, [*cfg, "model", "info", "--json"])
    assert info.exit_code == 0, info.output
    shown = json.loads(info.output[info.output.index("{") :])
    assert shown["model"].startswith(TONE_MODEL_ID + "+adapted-") and shown["adapted"]["human"] == 15
