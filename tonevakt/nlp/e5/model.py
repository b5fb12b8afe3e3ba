"""The fine-tuned e5-small classifier at inference: loading the shipped members and running them.

The encoder is the rebuilt e5-small (`convert.py`); a classifier is the encoder with its top layers (or all of
them) tuned, mean pooling (as e5 was trained) and a linear head. Only what tuning changed is shipped: each tuned
matrix as an int8 delta against the rebuilt base (one fp16 scale per row) or a 4-bit one (one fp16 scale per 64
values), vectors as fp16 deltas, the head in fp32 (`unpack` reads that format; `tonevakt.training.packing.pack`,
outside the runtime path, writes it). Several classifiers can be packed into one file and are averaged as an
ensemble; the layers they did not tune are shared and run once.

Only public transformers APIs: the encoder is called with `attention_mask=`, and where its layers are run one
by one (`BertLayer` modules, 5.x: a layer returns its hidden states) the additive mask comes from
`attention_bias`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tonevakt.errors import ModelError
from tonevakt.models import TONE_LABELS

logger = logging.getLogger(__name__)

LABELS = TONE_LABELS  # the column order of every classifier head


class E5Classifier(nn.Module):
    """e5-small encoder + mean pooling + dropout + linear head over (negative, neutral, positive)."""

    def __init__(self, encoder: nn.Module, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.config.hidden_size, len(LABELS))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.head(self.dropout(mean_pool(hidden, attention_mask)))


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The mean of the hidden states over the real (unpadded) tokens, as e5 was trained."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)


def attention_bias(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The additive attention mask a `BertLayer` takes, (batch, 1, 1, length): 0 where a token is real, the
    dtype's lowest value where it is padding. The same probabilities as the mask `BertModel.forward` builds
    itself (tests/test_training_apart.py compares them on the shipped model), for eager and SDPA attention."""
    return (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


def run_layers(encoder: nn.Module, layers: range, hidden: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Run `hidden` through the encoder's (a `BertModel`'s) layers numbered in `layers`, one by one, with the
    additive mask `bias` (`attention_bias`): the layer-by-layer forward of the shared-layer ensemble and of
    training over cached bottom layers."""
    for i in layers:
        hidden = encoder.encoder.layer[i](hidden, bias)
    return hidden


def load_encoder(base_dir: Path) -> nn.Module:
    from transformers import BertModel
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()  # a "Loading weights" bar per load is noise in logs and journald
    try:
        return BertModel.from_pretrained(str(base_dir), add_pooling_layer=False)
    finally:
        hf_logging.set_verbosity(verbosity)


def _unpack_q4(nibbles: np.ndarray, scale: np.ndarray) -> torch.Tensor:
    rows, half = nibbles.shape
    q = np.empty((rows, half * 2), dtype=np.int8)
    q[:, 0::2] = (nibbles & 0x0F).astype(np.int8) - 8
    q[:, 1::2] = (nibbles >> 4).astype(np.int8) - 8
    g = torch.from_numpy(q.astype(np.float32)).reshape(rows, scale.shape[1], -1)
    return (g * torch.from_numpy(scale.astype(np.float32)).unsqueeze(2)).reshape(rows, half * 2)


def unpack(packed: dict[str, np.ndarray], base: dict[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
    """Rebuild the tuned tensors of each member from `pack`'s arrays and the base tensors (tensors that were
    not stored are the base's own)."""
    n = int(packed["n_members"])
    states: list[dict[str, torch.Tensor]] = [{} for _ in range(n)]
    for key, arr in packed.items():
        if key == "n_members" or key.endswith(("#scale", "#gscale")):
            continue
        member, name = key.split("/", 1)
        i = int(member[1:])
        if name.endswith("#q4"):
            name = name.removesuffix("#q4")
            delta = _unpack_q4(arr, packed[f"{member}/{name}#gscale"])
            states[i][name] = base[name.removeprefix("encoder.")].float() + delta
        elif name.endswith("#q8"):
            name = name.removesuffix("#q8")
            scale = torch.from_numpy(packed[f"{member}/{name}#scale"].astype(np.float32)).unsqueeze(1)
            delta = torch.from_numpy(arr.astype(np.float32)) * scale
            states[i][name] = base[name.removeprefix("encoder.")].float() + delta
        elif name.endswith("#d16"):
            name = name.removesuffix("#d16")
            states[i][name] = base[name.removeprefix("encoder.")].float() + torch.from_numpy(
                arr.astype(np.float32)
            )
        else:
            states[i][name] = torch.from_numpy(arr.astype(np.float32))
    return states


def load_members(
    weights: Path, base_dir: Path, only: list[int] | None = None
) -> tuple[list[E5Classifier], np.ndarray]:
    """Load the ensemble members stored in a packed weights file (all, or the members numbered in `only`),
    ready for inference, and the per-class log-probability bias (zeros when none was calibrated)."""
    if not weights.exists():
        raise ModelError(f"fine-tuned weights not found: {weights}")
    with np.load(weights) as z:
        packed = {k: z[k] for k in z.files}
    if only is not None:
        n = int(packed["n_members"])
        if not only or any(not 0 <= i < n for i in only):
            raise ModelError(f"{weights} holds members 0–{n - 1}, not {only}")
        renumber = {f"m{i}/": f"m{j}/" for j, i in enumerate(only)}
        packed = {
            renumber[k[: k.index("/") + 1]] + k[k.index("/") + 1 :]: v
            for k, v in packed.items()
            if "/" in k and k[: k.index("/") + 1] in renumber
        } | {k: v for k, v in packed.items() if "/" not in k}
        packed["n_members"] = np.array(len(only), dtype=np.int32)
    bias = packed.pop("logit_bias", np.zeros(len(LABELS), dtype=np.float32)).astype(np.float32)
    states = unpack(packed, _base_state(base_dir))
    firsts = [_first_tuned(st) for st in states]
    # The member that leaves most bottom layers untouched is loaded first and lends those base layers (and
    # the never-tuned embeddings) to every other member, so the ensemble runs them once per batch.
    donor = max(range(len(states)), key=lambda i: firsts[i])
    members: dict[int, E5Classifier] = {}
    for i in [donor] + [j for j in range(len(states)) if j != donor]:
        clf = E5Classifier(load_encoder(base_dir))
        missing, unexpected = clf.load_state_dict(states[i], strict=False)
        missing = [m for m in missing if not m.startswith("encoder.")]  # the encoder's own stay as rebuilt
        if missing or unexpected:
            raise ModelError(f"{weights} does not fit the e5-small classifier: {missing or unexpected}")
        n_layers = clf.encoder.config.num_hidden_layers
        clf.first_tuned = min(firsts[i], n_layers)
        if i != donor and clf.first_tuned >= 0 and members[donor].first_tuned >= 0:
            lender = members[donor].encoder
            clf.encoder.embeddings = lender.embeddings
            for k in range(clf.first_tuned):
                clf.encoder.encoder.layer[k] = lender.encoder.layer[k]
        members[i] = clf.eval()
    return [members[i] for i in range(len(states))], bias


def _first_tuned(state: dict[str, torch.Tensor]) -> int:
    """The lowest encoder layer a member's stored tensors change; -1 when the embeddings are tuned."""
    layers = [int(k.split(".")[3]) for k in state if k.startswith("encoder.encoder.layer.")]
    if any(k.startswith("encoder.embeddings.") for k in state):
        return -1
    return min(layers) if layers else 10**6


def _base_state(base_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(Path(base_dir) / "model.safetensors"))


@torch.no_grad()
def predict_proba(
    members: list[E5Classifier],
    tokenizer,  # noqa: ANN001
    texts: list[str],
    max_length: int = 96,
    batch_size: int = 64,
    bias: np.ndarray | None = None,
) -> np.ndarray:
    """Average the members' softmax probabilities, then shift by the calibrated per-class log bias and
    renormalise; texts are batched by length."""
    out = np.zeros((len(texts), len(LABELS)), dtype=np.float32)
    if not texts:
        return out
    lengths = [len(t) for t in texts]
    order = sorted(range(len(texts)), key=lambda i: lengths[i])
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        ids, mask = tokenizer.batch([texts[i] for i in idx], max_length)
        out[idx] = _ensemble_probs(members, ids, mask).numpy()
    return apply_bias(out, bias)


def _ensemble_probs(members: list[E5Classifier], ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of the members' probabilities. The embeddings and the base layers below each member's first tuned
    layer are shared (see `load_members`), so they run once: each member starts from the shared hidden state at
    its own first tuned layer."""
    firsts = [getattr(m, "first_tuned", -1) for m in members]
    if len(members) == 1 or min(firsts) < 0:
        return sum(torch.softmax(m(ids, mask), dim=-1) for m in members) / len(members)
    donor = members[max(range(len(members)), key=lambda i: firsts[i])].encoder
    n_layers = donor.config.num_hidden_layers
    h = donor.embeddings(input_ids=ids)
    ext = attention_bias(mask, h.dtype)
    at: dict[int, torch.Tensor] = {}
    depth = 0
    for start in sorted(set(firsts)):
        h = run_layers(donor, range(depth, start), h, ext)
        at[start], depth = h, start
    total = torch.zeros(ids.shape[0], len(LABELS))
    for member, start in zip(members, firsts, strict=True):
        x = run_layers(member.encoder, range(start, n_layers), at[start], ext)
        total += torch.softmax(member.head(member.dropout(mean_pool(x, mask))), dim=-1)
    return total / len(members)


def layer_passes(members: list[E5Classifier]) -> int:
    """Encoder layers `_ensemble_probs` runs per token: the shared base layers once, then each member's own."""
    n = members[0].encoder.config.num_hidden_layers
    firsts = [getattr(m, "first_tuned", -1) for m in members]
    if len(members) == 1 or min(firsts) < 0:
        return n * len(members)
    return max(firsts) + sum(n - f for f in firsts)


def apply_bias(probs: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """probs * exp(bias), renormalised per row (bias in log space, one value per class)."""
    if bias is None or not np.any(bias):
        return probs
    p = probs * np.exp(np.asarray(bias, dtype=np.float64))[None, :]
    return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


@torch.no_grad()
def pooled_layers(
    member: E5Classifier,
    tokenizer,  # noqa: ANN001
    texts: list[str],
    layers: tuple[int, ...],
    max_length: int = 128,
    batch_size: int = 64,
) -> tuple[np.ndarray, np.ndarray]:
    """One encoder pass per batch (texts batched by length): the mean-pooled outputs of `layers` (0 is the
    embeddings, 12 the last layer), (n, len(layers), hidden), and the member's own head's probabilities, (n, 3)."""
    hidden = member.encoder.config.hidden_size
    pooled = np.zeros((len(texts), len(layers), hidden), dtype=np.float32)
    probs = np.zeros((len(texts), len(LABELS)), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        ids, mask = tokenizer.batch([texts[i] for i in idx], max_length)
        states = member.encoder(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
        pooled[idx] = torch.stack([mean_pool(states[k], mask) for k in layers], dim=1).numpy()
        probs[idx] = torch.softmax(member.head(mean_pool(states[-1], mask)), dim=-1).numpy()
    return pooled, probs
