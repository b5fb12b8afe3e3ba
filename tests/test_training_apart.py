"""Training stays out of the runtime path, its defaults live in one `Recipe`, and scoring uses only public
transformers APIs: the layer-by-layer forward with our own additive mask gives the same probabilities as the
encoder's own forward, on the shipped models and on tiny random ones."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import fields

import numpy as np
import pytest
import torch

from tests.support.paths import REPO
from tonevakt.nlp.e5 import convert
from tonevakt.nlp.e5.model import (
    E5Classifier,
    _ensemble_probs,
    attention_bias,
    load_members,
    predict_proba,
)
from tonevakt.nlp.e5.scorer import FineTunedScorer, weights_path

TEXTS = [
    "Helseplattformen har ført til store forsinkelser ved St. Olavs hospital .",
    "Bra app!",
    "HelsaMi er nede igjen – pasientene får ikke sett journalen sin, og ingen svarer på telefonen.",
    "Helseplattforma har gjeve store problem for dei tilsette på sjukehuset.",
    "Filmen er en fryd for øyet , men manuset halter ( 4/6 ) .",
    "Ok.",
]

# Run in a fresh interpreter: the CLI imported, its help shown, the default scorer and the lighter one built
# and scoring, then every tonevakt module loaded is listed.
RUNTIME_SCRIPT = """
import json, sys
from click.testing import CliRunner
import tonevakt.cli
from tonevakt.config import SentimentSettings
from tonevakt.nlp.sentiment import FROZEN_HEAD_MODEL, load_scorer

helps = [CliRunner().invoke(tonevakt.cli.main, args).exit_code for args in (["--help"], ["model", "--help"])]
probs = []
for settings in (SentimentSettings(), SentimentSettings(backend="embedded", model=FROZEN_HEAD_MODEL)):
    scorer = load_scorer(settings)
    probs.append([scorer.model_id, scorer.predict(["Helseplattformen fungerer godt."]).tolist()])
after_scoring = sorted(m for m in sys.modules if m.startswith("tonevakt"))
train_help = CliRunner().invoke(tonevakt.cli.main, ["model", "train", "--help"]).exit_code
after_train_help = sorted(m for m in sys.modules if m.startswith("tonevakt"))
print(json.dumps({"helps": helps, "probs": probs, "modules": after_scoring,
                  "train_help": train_help, "after_train_help": after_train_help}))
"""


def _training_modules(modules: list[str]) -> list[str]:
    return [
        m
        for m in modules
        if ".training" in m
        or any(w in m.rsplit(".", 1)[-1] for w in ("finetune", "ship", "train", "packing"))
    ]


def test_runtime_path_never_imports_training() -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    run = subprocess.run(
        [sys.executable, "-c", RUNTIME_SCRIPT],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,  # a hung model load must not hang the suite
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["helps"] == [0, 0] and out["train_help"] == 0
    from tonevakt.nlp.sentiment import FROZEN_HEAD_MODEL, TONE_MODEL

    assert [model for model, _ in out["probs"]] == [TONE_MODEL, FROZEN_HEAD_MODEL]
    for _, (p,) in out["probs"]:
        assert len(p) == 3 and abs(sum(p) - 1.0) < 1e-5
    # the torch scoring path was really taken, and nothing of training came with it
    assert "tonevakt.nlp.e5.model" in out["modules"] and "tonevakt.nlp.e5.scorer" in out["modules"]
    assert _training_modules(out["modules"]) == []
    # `model train --help` reads the recipe's defaults, and only the recipe (no torch training code)
    assert _training_modules(out["after_train_help"]) == ["tonevakt.training", "tonevakt.training.recipe"]


def test_cli_train_options_default_to_the_recipe() -> None:
    """Every option of `model train` named after a Recipe field takes its default from the Recipe (one place)."""
    from click.testing import CliRunner

    from tonevakt.cli import main
    from tonevakt.training.recipe import Recipe, parse_members

    train = main.get_command(None, "model").get_command(None, "train")  # type: ignore[union-attr]
    ctx = train.make_context("train", [], resilient_parsing=True)
    recipe = Recipe()
    shared = [f.name for f in fields(Recipe) if f.name in ctx.params]
    expected = {"members", "bits", "epochs", "lr", "layer_decay", "label_smoothing", "rdrop"}
    assert expected | {"domain_epochs", "domain_lr"} <= set(shared)
    assert {k: ctx.params[k] for k in shared} == {k: getattr(recipe, k) for k in shared}
    shown = CliRunner().invoke(main, ["model", "train", "--help"], terminal_width=200).output
    assert f"[default: {recipe.members}]" in shown and f"[default: {recipe.lr};" in shown
    # the shipped ensemble was trained with this recipe (tonevakt/nlp/weights/*.json records it)
    meta = json.loads(weights_path().with_suffix(".json").read_text())
    assert meta["members_spec"] == recipe.members
    assert len(parse_members(recipe.members)) == meta["members"]
    assert all(m["bits"] == int(recipe.bits) for m in meta["member_recipes"])
    assert (meta["recipe"]["lr"], meta["recipe"]["epochs"]) == (recipe.lr, recipe.epochs)


def test_registry_names_each_shipped_model_once() -> None:
    """Each embedded model's registered name is the id its scorer stores scores under."""
    from tonevakt.config import SentimentSettings
    from tonevakt.nlp.sentiment import EMBEDDED_MODELS, FINE_TUNED_MODEL, FROZEN_HEAD_MODEL, TONE_MODEL

    assert list(EMBEDDED_MODELS) == [TONE_MODEL, FROZEN_HEAD_MODEL, FINE_TUNED_MODEL]
    for name, factory in EMBEDDED_MODELS.items():
        assert factory(SentimentSettings(backend="embedded", model=name)).model_id == name


def _tiny(attn: str, seed: int = 0) -> E5Classifier:
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    cfg = BertConfig(
        vocab_size=60,
        hidden_size=32,
        num_hidden_layers=3,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=40,
        attn_implementation=attn,
    )
    return E5Classifier(BertModel(cfg, add_pooling_layer=False)).eval()


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_attention_bias_matches_the_encoders_own_mask(attn: str) -> None:
    """Layer by layer with `attention_bias` equals the encoder's own forward (which builds transformers' mask),
    for eager and SDPA attention, with padded rows; so does the training path's cached-layers forward."""
    from tonevakt.nlp.e5.model import run_layers

    clf = _tiny(attn)
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(5, 60, (4, 11), generator=gen)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    mask[3, 2:] = 0
    with torch.no_grad():
        ref = clf.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        h = clf.encoder.embeddings(input_ids=ids)
        ext = attention_bias(mask, h.dtype)
        assert ext.shape == (4, 1, 1, 11) and ext.dtype == h.dtype
        for layer in clf.encoder.encoder.layer:
            h = layer(h, ext)
        real = mask.bool()
        assert (h - ref)[real].abs().max() < 1e-6
        bottom = run_layers(clf.encoder, range(2), clf.encoder.embeddings(input_ids=ids), ext)
        top = run_layers(clf.encoder, range(2, 3), bottom, ext)
        assert (top - ref)[real].abs().max() < 1e-6


@pytest.fixture(scope="module")
def shipped() -> tuple[list[E5Classifier], object]:
    torch.set_num_threads(2)
    base = convert.ensure_base()
    members, _ = load_members(weights_path(), base)
    return members, convert.E5Tokenizer(base)


def test_shipped_ensemble_scores_equal_a_full_forward(shipped: tuple[list[E5Classifier], object]) -> None:
    """The shipped NoReC ensemble shares its untuned base layers and runs them layer by layer with our own
    mask; its probabilities equal the mean of each member's full forward through `BertModel.forward`
    (max abs diff < 1e-6), both inside `_ensemble_probs` and through `predict_proba`, what the scorer's `predict` runs."""
    members, tok = shipped
    firsts = [m.first_tuned for m in members]
    assert len(members) > 1 and min(firsts) >= 0 and len(set(firsts)) > 1, "the shared-layer path must run"
    ordered = sorted(TEXTS, key=len)  # the scorer batches by length: the same batch, the same padding
    ids, mask = tok.batch(ordered, 96)
    assert (mask == 0).any(), "the texts must be padded"
    with torch.no_grad():
        full = (sum(torch.softmax(m(ids, mask), -1) for m in members) / len(members)).numpy()
        layered = _ensemble_probs(members, ids, mask).numpy()
    assert np.abs(layered - full).max() < 1e-6
    # what `FineTunedScorer.predict` runs (the shipped file has no calibrated bias)
    assert FineTunedScorer(weights_path()).meta["logit_bias"] is None
    assert np.abs(predict_proba(members, tok, ordered, max_length=96, batch_size=64) - full).max() < 1e-6


def test_no_training_data_in_the_wheel() -> None:
    """The package data the setuptools config ships (pyproject.toml) holds model files, never labelled
    training data: `training/domain_train.jsonl` stays at the repository root, outside the package."""
    import tomllib

    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    assert config["packages"]["find"]["include"] == ["tonevakt*"]
    shipped = {p for pattern in config["package-data"]["tonevakt"] for p in (REPO / "tonevakt").glob(pattern)}
    assert any(p.name == "tonevakt-e5-small-norec-ft.npz" for p in shipped), "the globs must match real files"
    assert (REPO / "training" / "domain_train.jsonl").exists()
    assert not [p for p in shipped if p.suffix == ".jsonl" or "training" in p.relative_to(REPO).parts]
