"""Builtin multimodal plugins, one module per model family; each registers itself with `register_mm_plugin`,
and the plugin registry imports every module here on its first lookup."""
