"""Fine-tune e5-small members on NoReC_sentence (train split only); `ship.py` packs them for shipping.

The recipe and its shipped defaults are `recipe.Recipe`: the top `tune_layers` encoder layers (12: all of them)
and a linear head, never the word embeddings; AdamW, linear warm-up and decay, class weights negative 1.5 /
neutral 0.8 / positive 1.0, max 96 tokens, batches of similar length. Layers below the tuned ones run once and
are cached. A tenth of TRAIN, picked by a hash of the text, is held out ("selection" split) to follow training
and choose members; dev is only for reporting.
"""

from __future__ import annotations

import json
import logging
import random
import time
import zlib
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tonevakt.errors import ModelError
from tonevakt.nlp.e5.convert import E5Tokenizer, ensure_base
from tonevakt.nlp.e5.model import (
    LABELS,
    E5Classifier,
    attention_bias,
    load_encoder,
    mean_pool,
    run_layers,
)
from tonevakt.training.packing import tuned_state
from tonevakt.training.recipe import Member, Recipe, member_dir

logger = logging.getLogger(__name__)

_LABEL_INDEX = {label: i for i, label in enumerate(LABELS)}


def load_split(path: Path) -> tuple[list[str], list[int]]:
    """NoReC_sentence rows ({"text", "label"}) as texts and label indices; a clear error for a missing or
    malformed file."""
    try:
        rows = json.loads(Path(path).read_text(encoding="utf-8"))
        texts = [r["text"] for r in rows]
        labels = [_LABEL_INDEX[r["label"].lower()] for r in rows]
    except (OSError, ValueError) as e:
        raise ModelError(f"cannot read training data {path}: {e}") from e
    except (KeyError, TypeError, AttributeError) as e:
        raise ModelError(
            f"cannot read training data {path}: rows need 'text' and a label among "
            f"{', '.join(_LABEL_INDEX)} ({e!r})"
        ) from e
    if not texts:
        raise ModelError(f"cannot read training data {path}: no rows")
    return texts, labels


def holdout_split(texts: list[str], labels: list[int], fraction: float) -> tuple[list[int], list[int]]:
    """Deterministic split of TRAIN by a hash of the text: (train indices, selection indices)."""
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
    """Macro-F1 of label indices (the one definition: `evaluate.compute_metrics`)."""
    from tonevakt.nlp.evaluate import compute_metrics

    return compute_metrics([LABELS[g] for g in gold], [LABELS[p] for p in pred], LABELS).macro_f1


@torch.no_grad()
def _cache_bottom(
    model: E5Classifier,
    tok: E5Tokenizer,
    texts: list[str],
    n_bottom: int,
    max_length: int,
    progress: Callable[[str], None] | None,
) -> list[torch.Tensor]:
    """Hidden states after the frozen bottom layers, one (length, hidden) tensor per text."""
    model.eval()
    out: list[torch.Tensor] = [torch.empty(0)] * len(texts)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for b, s in enumerate(range(0, len(order), 64)):
        idx = order[s : s + 64]
        ids, mask = tok.batch([texts[i] for i in idx], max_length)
        h = model.encoder.embeddings(input_ids=ids)
        h = run_layers(model.encoder, range(n_bottom), h, attention_bias(mask, h.dtype))
        for j, i in enumerate(idx):
            out[i] = h[j, : int(mask[j].sum())].clone()
        if progress and (b + 1) % 20 == 0:
            progress(f"caching frozen layers: {s + len(idx)}/{len(texts)}")
    return out


def _top_logits(
    model: E5Classifier, cached: list[torch.Tensor], idx: list[int], n_bottom: int
) -> torch.Tensor:
    width = max(cached[i].shape[0] for i in idx)
    hid = cached[idx[0]].shape[1]
    h = torch.zeros(len(idx), width, hid)
    mask = torch.zeros(len(idx), width, dtype=torch.long)
    for j, i in enumerate(idx):
        n = cached[i].shape[0]
        h[j, :n] = cached[i]
        mask[j, :n] = 1
    top = range(n_bottom, model.encoder.config.num_hidden_layers)
    h = run_layers(model.encoder, top, h, attention_bias(mask, h.dtype))
    return model.head(model.dropout(mean_pool(h, mask)))


def train(
    train_path: Path,
    out_dir: Path,
    recipe: Recipe = Recipe(),
    base_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
    seeds: list[int] | None = None,
) -> list[Path]:
    """Train one classifier per seed (the frozen layers' cache is shared); save the tuned state after each
    epoch as `seed{S}/epoch{N}.pt` in `out_dir`, then, when the recipe names a domain file, after each epoch of
    the domain phase as `seed{S}/domain{N}.pt` (see `adapt`); return the final checkpoints."""
    texts, labels = load_split(train_path)
    domain = load_domain(recipe.domain_file) if recipe.domain_file and recipe.domain_epochs else None
    base = ensure_base(base_dir)
    tok = E5Tokenizer(base)
    tr, sel = holdout_split(texts, labels, recipe.holdout)
    if not tr or not sel:
        raise ModelError(
            f"cannot hold out {recipe.holdout:.0%} of {train_path} ({len(texts)} sentences) and still train: "
            "both parts must be non-empty"
        )
    t0 = time.time()
    cache: list[torch.Tensor] | None = None
    finals = []
    for seed in seeds if seeds is not None else [recipe.seed]:
        torch.manual_seed(seed)
        rng = random.Random(seed)
        model = E5Classifier(load_encoder(base))
        n_bottom = _set_trainable(model, recipe)
        if cache is None:
            cache = _cache_bottom(model, tok, texts, n_bottom, recipe.max_length, progress)
            if progress:
                progress(
                    f"cached {len(texts)} texts through {n_bottom} frozen layers in {time.time() - t0:.0f}s"
                )
        run_dir = out_dir / f"seed{seed}"
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "recipe.json").write_text(json.dumps({**asdict(recipe), "seed": seed}, default=str))
        ckpt = _fit(
            model,
            recipe,
            cache,
            labels,
            tr,
            sel,
            n_bottom,
            recipe.epochs,
            recipe.lr,
            rng,
            run_dir,
            "epoch",
            f"seed {seed}",
            t0,
            progress,
        )
        if domain is not None:
            ckpt = _domain_phase(
                model, tok, recipe, cache, labels, tr, sel, n_bottom, domain, seed, run_dir, t0, progress
            )
        finals.append(ckpt)
    return finals


def _set_trainable(model: E5Classifier, recipe: Recipe) -> int:
    """Freeze all but the top `tune_layers` encoder layers (and the head); return the number frozen below."""
    n_bottom = max(model.encoder.config.num_hidden_layers - recipe.tune_layers, 0)
    for name, p in model.encoder.named_parameters():
        p.requires_grad = name.startswith("encoder.layer.") and int(name.split(".")[2]) >= n_bottom
    return n_bottom


def _fit(
    model: E5Classifier,
    recipe: Recipe,
    cache: list[torch.Tensor],
    labels: list[int],
    pool: list[int],
    sel: list[int],
    n_bottom: int,
    epochs: int,
    lr: float,
    rng: random.Random,
    run_dir: Path,
    stem: str,
    what: str,
    t0: float,
    progress: Callable[[str], None] | None,
) -> Path:
    """AdamW with linear warm-up and decay over `pool` (indices into `cache`/`labels`) for `epochs`; after each
    epoch save the tuned state as `{stem}{N}.pt` and the probabilities on `sel` (the held-out tenth of TRAIN);
    return the last checkpoint."""
    from dataclasses import replace

    opt = torch.optim.AdamW(_param_groups(model, replace(recipe, lr=lr)), fused=True)
    steps_per_epoch = (len(pool) + recipe.batch_size - 1) // recipe.batch_size
    total = steps_per_epoch * epochs
    warm = max(1, int(total * recipe.warmup))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s, w=warm, t=total: min((s + 1) / w, max(0.0, (t - s) / max(1, t - w)))
    )
    loss_fn = nn.CrossEntropyLoss(
        weight=torch.tensor(recipe.class_weights), label_smoothing=recipe.label_smoothing
    )
    y = torch.tensor(labels)
    lengths = [cache[i].shape[0] for i in pool]
    ckpt = run_dir / f"{stem}0.pt"
    for epoch in range(1, epochs + 1):
        model.train()
        running = 0.0
        for b, bidx in enumerate(_batches(lengths, recipe.batch_size, rng)):
            idx = [pool[k] for k in bidx]
            if recipe.rdrop:
                # R-Drop: the batch twice through dropout, cross-entropy on both, plus their symmetric KL
                z1, z2 = _top_logits(model, cache, idx + idx, n_bottom).split(len(idx))
                l1, l2 = z1.log_softmax(-1), z2.log_softmax(-1)
                kl = (l1.exp() * (l1 - l2)).sum(-1).mean() + (l2.exp() * (l2 - l1)).sum(-1).mean()
                loss = (loss_fn(z1, y[idx]) + loss_fn(z2, y[idx])) / 2 + recipe.rdrop * kl / 2
            else:
                loss = loss_fn(_top_logits(model, cache, idx, n_bottom), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            running += loss.item()
            if progress and (b + 1) % 25 == 0:
                progress(
                    f"{what} {stem} {epoch} step {b + 1}/{steps_per_epoch} "
                    f"loss {running / (b + 1):.4f} {time.time() - t0:.0f}s"
                )
        model.eval()
        ckpt = run_dir / f"{stem}{epoch}.pt"
        torch.save(tuned_state(model), ckpt)
        with torch.no_grad():
            probs = torch.cat(
                [
                    torch.softmax(_top_logits(model, cache, sel[s : s + 64], n_bottom), -1)
                    for s in range(0, len(sel), 64)
                ]
            ).numpy()
        f1 = macro_f1([labels[i] for i in sel], probs.argmax(1).tolist())
        np.save(run_dir / f"selection_probs_{stem}{epoch}.npy", probs)
        msg = f"{what} {stem} {epoch} done: selection macro-F1 {f1:.4f} after {time.time() - t0:.0f}s"
        logger.info(msg)
        if progress:
            progress(msg)
    return ckpt


def load_domain(path: Path | str) -> tuple[list[str], list[int]]:
    """The project's own labelled sentences (JSONL: {"text", "label", ...} per line) for the domain phase."""
    texts, labels = [], []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            if row.get("label") not in _LABEL_INDEX or not str(row.get("text", "")).strip():
                raise ModelError(
                    f"{path}:{n}: needs a non-empty 'text' and a label among {', '.join(_LABEL_INDEX)}"
                )
            texts.append(row["text"])
            labels.append(_LABEL_INDEX[row["label"]])
    except (OSError, ValueError) as e:
        raise ModelError(f"cannot read domain data {path}: {e}") from e
    if not texts:
        raise ModelError(f"cannot read domain data {path}: no rows")
    return texts, labels


def _domain_phase(
    model: E5Classifier,
    tok: E5Tokenizer,
    recipe: Recipe,
    cache: list[torch.Tensor],
    labels: list[int],
    tr: list[int],
    sel: list[int],
    n_bottom: int,
    domain: tuple[list[str], list[int]],
    seed: int,
    run_dir: Path,
    t0: float,
    progress: Callable[[str], None] | None,
) -> Path:
    """Continue training on the project's own sentences mixed with as many NoReC train sentences (drawn by the
    seed, never from the held-out tenth), `domain_epochs` epochs at `domain_lr`, so that news, union and
    app-review wording is learnt without forgetting NoReC. Seeded on its own, so continuing from a saved
    stage-1 checkpoint (`adapt`) gives the same result as continuing in the same process."""
    dtexts, dlabels = domain
    dcache = _cache_bottom(model, tok, dtexts, n_bottom, recipe.max_length, None)
    torch.manual_seed(seed + 1000)
    rng = random.Random(seed + 1000)
    sample = rng.sample(tr, min(len(tr), round(len(dtexts) * recipe.domain_mix)))
    offset = len(cache)
    pool = sample + [offset + i for i in range(len(dtexts))]
    return _fit(
        model,
        recipe,
        cache + dcache,
        labels + dlabels,
        pool,
        sel,
        n_bottom,
        recipe.domain_epochs,
        recipe.domain_lr,
        rng,
        run_dir,
        "domain",
        f"seed {seed}",
        t0,
        progress,
    )


def adapt(
    checkpoint: Path,
    train_path: Path,
    recipe: Recipe,
    base_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Run only the domain phase on a member already trained on NoReC (`epoch{N}.pt` from `train`), writing
    `domain{N}.pt` beside it: what `train` does after its NoReC epochs, for members trained before."""
    if not recipe.domain_file or not recipe.domain_epochs:
        raise ModelError("the recipe names no domain file (domain_file, domain_epochs)")
    texts, labels = load_split(train_path)
    domain = load_domain(recipe.domain_file)
    base = ensure_base(base_dir)
    tok = E5Tokenizer(base)
    tr, sel = holdout_split(texts, labels, recipe.holdout)
    model = E5Classifier(load_encoder(base))
    model.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True), strict=False)
    n_bottom = _set_trainable(model, recipe)
    cache = _cache_bottom(model, tok, texts, n_bottom, recipe.max_length, progress)
    recipe_file = checkpoint.parent / "recipe.json"
    recorded = json.loads(recipe_file.read_text())
    seed = recorded["seed"]
    keys = ("domain_file", "domain_epochs", "domain_lr", "domain_mix")
    recipe_file.write_text(json.dumps({**recorded, **{k: getattr(recipe, k) for k in keys}}, default=str))
    return _domain_phase(
        model,
        tok,
        recipe,
        cache,
        labels,
        tr,
        sel,
        n_bottom,
        domain,
        seed,
        checkpoint.parent,
        time.time(),
        progress,
    )


def train_members(
    train_path: Path,
    runs: Path,
    members: list[Member],
    recipe: Recipe = Recipe(),
    progress: Callable[[str], None] | None = None,
    jobs: int = 1,
    threads: int = 2,
) -> list[Path]:
    """Train every member into `runs/k{layers}[-lr{lr}]/seed{seed}/`; return the final checkpoints in the given
    order. With `jobs` 1, members of the same depth and rate train in one pass (sharing the frozen layers'
    cache) on `threads` threads; with more, each member trains in its own process on `threads // jobs` threads
    (two single-threaded members side by side use 2 cores better than one member on two threads)."""
    from dataclasses import replace

    specs = [
        (member_dir(runs, k, lr, recipe), replace(recipe, tune_layers=k, lr=lr or recipe.lr), s)
        for k, s, lr in members
    ]
    if jobs > 1 and len(members) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        each = max(1, threads // jobs)
        # each worker a fresh interpreter: torch's thread pools are not fork-safe
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(jobs, len(members)), mp_context=ctx) as pool:
            futures = [pool.submit(_train_one, train_path, d, r, s, each) for d, r, s in specs]
            return [f.result() for f in futures]
    torch.set_num_threads(threads)
    done: dict[tuple[Path, int], Path] = {}
    for d, r in dict.fromkeys((d, r) for d, r, _ in specs):
        seeds = [s for d2, _, s in specs if d2 == d]
        finals = train(train_path, d, r, progress=progress, seeds=seeds)
        done.update({(d, s): p for s, p in zip(seeds, finals, strict=True)})
    return [done[(d, s)] for d, _, s in specs]


def _train_one(train_path: Path, out_dir: Path, recipe: Recipe, seed: int, threads: int) -> Path:
    """One member in a worker process (`train_members` with jobs > 1); progress goes to stderr, tagged."""
    import sys

    torch.set_num_threads(threads)
    tag = f"[{out_dir.name}/seed{seed}]"
    return train(
        train_path,
        out_dir,
        recipe,
        progress=lambda m: print(tag, m, file=sys.stderr, flush=True),
        seeds=[seed],
    )[0]


def main() -> None:  # pragma: no cover - developer entry point for background runs
    """`python -m tonevakt.training.finetune`: one member per seed; options left out take the Recipe's value."""
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--train", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--tune-layers", type=int)
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--lr", type=float)
    ap.add_argument("--layer-decay", type=float)
    ap.add_argument("--label-smoothing", type=float)
    ap.add_argument("--rdrop", type=float)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    fields = ("tune_layers", "epochs", "lr", "layer_decay", "label_smoothing", "rdrop")
    r = Recipe(**{k: getattr(a, k) for k in fields if getattr(a, k) is not None})
    seeds = [int(x) for x in a.seeds.split(",")]
    train(a.train, a.out, r, progress=lambda m: print(m, flush=True), seeds=seeds)


if __name__ == "__main__":  # pragma: no cover
    main()
