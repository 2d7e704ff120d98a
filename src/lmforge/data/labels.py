"""The label value the loss ignores (prompt tokens, padding, media tokens): torch's cross-entropy default."""

IGNORE_INDEX = -100
