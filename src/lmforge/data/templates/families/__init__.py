"""One module per model family; each registers its templates on import."""
