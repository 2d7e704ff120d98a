"""Model and tokenizer loading, and the adapters (full, LoRA) applied for training."""
