"""Export: merged, sharded, verified checkpoints."""
