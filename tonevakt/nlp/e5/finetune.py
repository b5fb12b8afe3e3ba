"""Fine-tune e5-small on NoReC_sentence (train split only) and pack the result for shipping.

Recipe (fixed in advance, not tuned on dev): every parameter but the word embeddings, AdamW, linear warm-up
and decay, class weights negative 1.5 / neutral 0.8 / positive 1.0, max 96 tokens, batches of similar length.
A stratified tenth of TRAIN is held out ("selection" split) to follow training; dev is only for reporting.
"""

from __future__ import annotations

import json
import logging
import random
import time
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tonevakt.nlp.e5.convert import E5Tokenizer, ensure_base
from tonevakt.nlp.e5.model import LABELS, E5Classifier, load_encoder, predict_proba, tuned_state

logger = logging.getLogger(__name__)

_LABEL_INDEX = {"negative": 0, "neutral": 1, "positive": 2}


@dataclass(frozen=True)
class Recipe:
    epochs: int = 3
    lr: float = 6e-5
    layer_decay: float = 1.0  # learning rate multiplier per layer going down (1.0 = none)
    batch_size: int = 32
    max_length: int = 96
    warmup: float = 0.1
    weight_decay: float = 0.01
    class_weights: tuple[float, float, float] = (1.5, 0.8, 1.0)
    label_smoothing: float = 0.0
    holdout: float = 0.1
    seed: int = 0


def load_split(path: Path) -> tuple[list[str], list[int]]:
    rows = json.loads(Path(path).read_text(encoding="utf-8"))
    texts = [r["text"] for r in rows]
    labels = [_LABEL_INDEX[r["label"].lower()] for r in rows]
    return texts, labels


def holdout_split(texts: list[str], labels: list[int], fraction: float) -> tuple[list[int], list[int]]:
    """Deterministic stratified split of TRAIN by a hash of the text: (train indices, selection indices)."""
    train, sel = [], []
    for i, t in enumerate(texts):
        bucket = zlib.crc32(t.encode("utf-8")) % 1000
        (sel if bucket < fraction * 1000 else train).append(i)
    return train, sel


def _batches(lengths: list[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    idx = list(range(len(lengths)))
    rng.shuffle(idx)
    chunk = batch_size * 50
    batches = []
    for s in range(0, len(idx), chunk):
        part = sorted(idx[s : s + chunk], key=lambda i: lengths[i])
        batches += [part[j : j + batch_size] for j in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def _param_groups(model: E5Classifier, recipe: Recipe) -> list[dict]:
    n_layers = model.encoder.config.num_hidden_layers
    groups: dict[tuple[float, float], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if name.startswith("encoder.encoder.layer."):
            depth = int(name.split(".")[3]) + 1
        elif name.startswith("encoder.embeddings."):
            depth = 0
        else:
            depth = n_layers + 1
        lr = recipe.lr * recipe.layer_decay ** (n_layers + 1 - depth)
        wd = 0.0 if p.ndim == 1 else recipe.weight_decay
        groups.setdefault((lr, wd), []).append(p)
    return [{"params": ps, "lr": lr, "weight_decay": wd} for (lr, wd), ps in groups.items()]


def macro_f1(gold: list[int], pred: list[int]) -> float:
    f1s = []
    for c in range(len(LABELS)):
        tp = sum(1 for g, p in zip(gold, pred, strict=True) if g == c and p == c)
        fp = sum(1 for g, p in zip(gold, pred, strict=True) if g != c and p == c)
        fn = sum(1 for g, p in zip(gold, pred, strict=True) if g == c and p != c)
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(f1s) / len(f1s)


def train(
    train_path: Path,
    out_dir: Path,
    recipe: Recipe = Recipe(),
    base_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Train one classifier; save the tuned state after each epoch as `epoch{N}.pt` in `out_dir`."""
    torch.manual_seed(recipe.seed)
    rng = random.Random(recipe.seed)
    base = ensure_base(base_dir)
    tok = E5Tokenizer(base)
    texts, labels = load_split(train_path)
    tr, sel = holdout_split(texts, labels, recipe.holdout)
    tr_texts, tr_labels = [texts[i] for i in tr], [labels[i] for i in tr]
    sel_texts, sel_labels = [texts[i] for i in sel], [labels[i] for i in sel]
    lengths = [len(tok.ids(t)) for t in tr_texts]
    model = E5Classifier(load_encoder(base))
    for name, p in model.encoder.named_parameters():
        p.requires_grad = name not in ("embeddings.word_embeddings.weight",)
    opt = torch.optim.AdamW(_param_groups(model, recipe), fused=True)
    steps_per_epoch = (len(tr_texts) + recipe.batch_size - 1) // recipe.batch_size
    total = steps_per_epoch * recipe.epochs
    warm = max(1, int(total * recipe.warmup))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm)))
    )
    loss_fn = nn.CrossEntropyLoss(
        weight=torch.tensor(recipe.class_weights), label_smoothing=recipe.label_smoothing
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "recipe.json").write_text(json.dumps(asdict(recipe)))
    y_all = torch.tensor(tr_labels)
    step = 0
    t0 = time.time()
    for epoch in range(1, recipe.epochs + 1):
        model.train()
        running = 0.0
        for b, idx in enumerate(_batches(lengths, recipe.batch_size, rng)):
            ids, mask = tok.batch([tr_texts[i] for i in idx], recipe.max_length)
            loss = loss_fn(model(ids, mask), y_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            running += loss.item()
            if progress and (b + 1) % 25 == 0:
                progress(
                    f"epoch {epoch} step {b + 1}/{steps_per_epoch} loss {running / (b + 1):.4f} "
                    f"{time.time() - t0:.0f}s"
                )
        model.eval()
        torch.save(tuned_state(model), out_dir / f"epoch{epoch}.pt")
        probs = predict_proba([model], tok, sel_texts, recipe.max_length)
        f1 = macro_f1(sel_labels, probs.argmax(1).tolist())
        np.save(out_dir / f"selection_probs_epoch{epoch}.npy", probs)
        msg = f"epoch {epoch} done: selection macro-F1 {f1:.4f} after {time.time() - t0:.0f}s"
        logger.info(msg)
        if progress:
            progress(msg)
    return out_dir


def main() -> None:  # pragma: no cover - developer entry point for background runs
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--train", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--lr", type=float, default=6e-5)
    ap.add_argument("--layer-decay", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    r = Recipe(seed=a.seed, epochs=a.epochs, lr=a.lr, layer_decay=a.layer_decay)
    train(a.train, a.out, r, progress=lambda m: print(m, flush=True))


if __name__ == "__main__":  # pragma: no cover
    main()
