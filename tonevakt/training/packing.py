"""Packing tuned e5-small members for shipping: the inverse of `tonevakt.nlp.e5.model.unpack`.

Only what tuning changed is stored: each tuned matrix as an int8 delta against the rebuilt base (one fp16 scale
per row) or a 4-bit one (one fp16 scale per 64 values), vectors as fp16 deltas, the head in fp32. The format is
read at scoring time by `nlp/e5/model.py` (`unpack`, `load_members`); the tests round-trip the two.
"""

from __future__ import annotations

import numpy as np
import torch

from tonevakt.errors import ModelError
from tonevakt.nlp.e5.model import E5Classifier

FROZEN = ("embeddings.word_embeddings.weight",)  # never tuned, so never shipped


def tuned_state(model: E5Classifier) -> dict[str, torch.Tensor]:
    """Every parameter that fine-tuning changes (all but the frozen word embeddings)."""
    return {
        k: v.detach().clone()
        for k, v in model.state_dict().items()
        if not any(k == f"encoder.{f}" for f in FROZEN) and "position_ids" not in k
    }


Q4_GROUP = 64  # values per fp16 scale in 4-bit packing


def _pack_q4(delta: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """A 2-D delta as 4-bit integers in -7..7 (two per byte, row-major) with one fp16 scale per group of
    `Q4_GROUP` consecutive values of a row."""
    rows, cols = delta.shape
    if cols % Q4_GROUP:
        raise ModelError(f"4-bit packing needs a width divisible by {Q4_GROUP}, got {cols}")
    g = delta.reshape(rows, cols // Q4_GROUP, Q4_GROUP)
    scale = g.abs().amax(dim=2, keepdim=True).clamp(min=1e-12) / 7.0
    scale = scale.to(torch.float16).float()  # quantise against the scale that is stored
    q = (torch.round(g / scale).clamp(-7, 7).to(torch.int16) + 8).reshape(rows, cols).to(torch.uint8)
    nibbles = (q[:, 0::2] | (q[:, 1::2] << 4)).numpy()
    return nibbles, scale.squeeze(2).to(torch.float16).numpy()


def pack(
    states: list[dict[str, torch.Tensor]], base: dict[str, torch.Tensor], bits: list[int] | None = None
) -> dict[str, np.ndarray]:
    """Pack tuned states (one per ensemble member) as deltas against `base`: matrices as int8 with one fp16
    scale per row (or, where `bits` says 4 for that member, 4-bit with one fp16 scale per 64 values), vectors
    as fp16; tensors that tuning left unchanged are not stored; the head in fp32."""
    out: dict[str, np.ndarray] = {"n_members": np.array(len(states), dtype=np.int32)}
    bits = bits or [8] * len(states)
    if len(bits) != len(states) or any(b not in (4, 8) for b in bits):
        raise ModelError(f"bits must give 4 or 8 for each of the {len(states)} members, got {bits}")
    for i, st in enumerate(states):
        for name, t in st.items():
            key = f"m{i}/{name}"
            t = t.float()
            base_name = name.removeprefix("encoder.")
            if not name.startswith("encoder.") or base_name not in base:
                out[key] = t.numpy().astype(np.float32)
                continue
            delta = t - base[base_name].float()
            if not torch.any(delta):
                continue
            if t.ndim == 2 and bits[i] == 4:
                out[key + "#q4"], out[key + "#gscale"] = _pack_q4(delta)
            elif t.ndim == 2:
                scale = delta.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / 127.0
                q = torch.round(delta / scale).clamp(-127, 127).to(torch.int8)
                out[key + "#q8"] = q.numpy()
                out[key + "#scale"] = scale.squeeze(1).to(torch.float16).numpy()
            else:
                out[key + "#d16"] = delta.to(torch.float16).numpy()
    return out
