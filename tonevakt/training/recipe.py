"""The training recipe of the shipped NoReC ensemble, one place for its defaults (no torch here).

`tonevakt model train` with no options reproduces `tonevakt-e5-small-norec-ft` (whose member 0 is the tone
model's encoder): every option of that command defaults to the field of `Recipe` of the same name. The figures
and the choices behind the values are in docs/model.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tonevakt.errors import ModelError

# The project's own labelled sentences about Helseplattformen (news, union, app-review style; Bokmål and
# Nynorsk), written for training and kept apart from the in-domain check set in tests/fixtures/indomain/.
# The domain phase they feed was tried and is not part of the shipped model (docs/model.md says why).
# In the repository, not in the wheel (training/README.md).
DOMAIN_FILE = Path(__file__).resolve().parents[2] / "training" / "domain_train.jsonl"


@dataclass(frozen=True)
class Recipe:
    """Fixed in advance, not tuned on dev. A member tunes its top `tune_layers` encoder layers and the head,
    never the word embeddings; AdamW with linear warm-up and decay; batches of similar length. `members` and
    `bits` describe the ensemble (see `parse_members`); a member spec's own rate overrides `lr`."""

    epochs: int = 3
    lr: float = 1e-4  # for members that name no rate
    layer_decay: float = 1.0  # learning rate multiplier per layer going down (1.0 = none)
    batch_size: int = 32
    max_length: int = 96
    warmup: float = 0.1
    weight_decay: float = 0.01
    class_weights: tuple[float, float, float] = (1.5, 0.8, 1.0)
    label_smoothing: float = 0.0
    rdrop: float = 0.0  # weight of R-Drop's symmetric KL between two dropout passes of each batch (0 = off)
    holdout: float = 0.1
    seed: int = 0
    tune_layers: int = 4  # the top layers tuned; the frozen layers below run once and are cached
    domain_file: str | None = None  # the project's own labelled sentences for a second, domain phase
    domain_epochs: int = 0  # the domain phase was tried and not adopted (docs/model.md)
    domain_lr: float = 3e-5
    domain_mix: float = 1.0  # NoReC train sentences drawn per domain sentence in the domain phase
    members: str = "12:1:6e-5,12:3:6e-5,8:20"  # the shipped ensemble, TUNED_LAYERS:SEED[:LR] each
    bits: str = "4"  # packing of each member's deltas: 4 or 8, once for all or once per member


Member = tuple[int, int, float | None]  # (tuned top layers, seed, learning rate or None for the recipe's)


def parse_members(spec: str) -> list[Member]:
    """ "12:0:6e-5,4:0,8:20" -> [(12, 0, 6e-05), (4, 0, None), (8, 20, None)]: one ensemble member each, as
    TUNED_LAYERS:SEED[:LEARNING_RATE]."""
    out: list[Member] = []
    for part in (p.strip() for p in spec.split(",")):
        fields = part.split(":")
        try:
            if len(fields) > 3:
                raise ValueError(part)
            layers, seed = int(fields[0]), int(fields[1] or 0) if len(fields) > 1 else 0
            lr = float(fields[2]) if len(fields) > 2 else None
        except ValueError:
            raise ModelError(f"bad ensemble member {part!r}: expected TUNED_LAYERS:SEED[:LR]") from None
        if not 1 <= layers <= 12 or (lr is not None and not 0 < lr < 1):
            raise ModelError(f"bad ensemble member {part!r}: 1-12 tuned layers, 0 < LR < 1")
        out.append((layers, seed, lr))
    return out


def member_dir(runs: Path, layers: int, lr: float | None, recipe: Recipe) -> Path:
    """Where a member's checkpoints live: runs/k{layers}[-lr{lr}]/ (the recipe's own rate keeps the short name)."""
    return runs / (f"k{layers}" if lr is None or lr == recipe.lr else f"k{layers}-lr{lr:g}")
