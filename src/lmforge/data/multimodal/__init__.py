"""Multimodal data: media decoding, the plugin registry (one module per model family in `plugins/`),
and the example builders and collator that turn conversations with media into model inputs."""
