"""Serving surfaces: the OpenAI-compatible API, the web UI, and the input policy they share."""
