"""A tiny vision-language model written as remote code (`trust_remote_code`), the way Kimi-VL and dots.ocr ship
theirs: configuration, modeling and processing modules that transformers does not have, named in the auto_map of
the saved folder. Written for lmforge's tests; no part of any real checkpoint's code."""
