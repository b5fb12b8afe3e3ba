"""Training and packing of the shipped models, kept out of the runtime path.

Scoring (`tonevakt.nlp`) never imports this package (tests/test_training_apart.py checks it in a fresh
process); the `tonevakt model train*` commands import it when they run.

- `recipe.py`: `Recipe`, the one place for the shipped training defaults (the CLI's options default to it);
  parsing of the ensemble's member specs;
- `finetune.py`: fine-tuning e5-small members on NoReC_sentence (train split only), the optional domain phase;
- `packing.py`: tuned members as 4- or 8-bit deltas against the rebuilt base (read back by `nlp/e5/model.py`);
- `ship.py`: pack trained runs into the shipped weights file and measure it on NoReC_sentence dev;
- `frozen_head.py`: the logistic head of the frozen-encoder model (`tonevakt model train-head`).

The labelled data stays outside the package: `training/` at the repository root and `../shared/data/`.
"""
