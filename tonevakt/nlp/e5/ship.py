"""Pack trained runs into the shipped weights file and measure it on NoReC_sentence dev.

The shipped file is what the scorer loads: `tonevakt/nlp/weights/<model id>.npz` (int8 deltas against the
rebuilt base, see model.py) and `<model id>.json` (recipe, members, dev figures, file hash). The figures are
measured on the shipped, packed weights, not on the training-time float32 ones.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tonevakt.nlp.e5.convert import ensure_base, expected_sha256
from tonevakt.nlp.e5.model import pack
from tonevakt.nlp.e5.scorer import MODEL_ID, FineTunedScorer, weights_path
from tonevakt.nlp.evaluate import Metrics, evaluate_examples, read_labelled
from tonevakt.nlp.sentiment.base import Progress

logger = logging.getLogger(__name__)


@dataclass
class ShipResult:
    weights: Path
    size_bytes: int
    dev: Metrics | None
    dev_binary: Metrics | None
    seconds: float


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def pack_runs(
    checkpoints: list[Path], out: Path, base_dir: Path | None = None, extra: dict | None = None
) -> Path:
    """Pack the tuned states saved by `finetune.train` (one per ensemble member) into `out` (.npz + .json)."""
    from safetensors.torch import load_file

    base = ensure_base(base_dir)
    base_state = load_file(str(base / "model.safetensors"))
    states = [torch.load(p, map_location="cpu", weights_only=True) for p in checkpoints]
    arrays = pack(states, base_state)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays)
    meta = {
        "model_id": out.stem,
        "members": len(states),
        "base_sha256": expected_sha256(),
        "weights_sha256": file_sha256(out),
        "checkpoints": [str(p) for p in checkpoints],
        **(extra or {}),
    }
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    return out


def measure(
    weights: Path, data_dir: Path, progress: Progress | None = None, write: bool = True
) -> tuple[Metrics, Metrics]:
    """Dev figures (3-class and binary) of the packed weights; stored in the .json beside them when `write`."""
    scorer = FineTunedScorer(weights, model_id=weights.stem)
    scorer.configure(96, 64, 1, 8)
    t0 = time.time()
    dev = evaluate_examples(scorer, read_labelled(data_dir / "3class" / "dev.json"), progress=progress)
    seconds = time.time() - t0
    dev_bin = evaluate_examples(scorer, read_labelled(data_dir / "binary" / "dev.json"), progress=progress)
    if write:
        meta_file = weights.with_suffix(".json")
        meta = json.loads(meta_file.read_text())
        meta["dev"] = dev.to_dict()
        meta["dev_binary"] = dev_bin.to_dict()
        meta["dev_seconds_2_threads"] = round(seconds, 1)
        meta_file.write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    return dev, dev_bin


def ship(checkpoints: list[Path], data_dir: Path, out: Path | None = None, extra: dict | None = None,
         progress: Progress | None = None) -> ShipResult:  # fmt: skip
    t0 = time.time()
    out = out or weights_path(MODEL_ID)
    pack_runs(checkpoints, out, extra=extra)
    dev, dev_bin = measure(out, data_dir, progress)
    return ShipResult(out, out.stat().st_size, dev, dev_bin, time.time() - t0)
