"""Training: one runner per stage on the transformers Trainer, with logs, plots and a summary."""
