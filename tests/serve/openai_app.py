"""The API on the tiny random model, reached through the official `openai` client (shared by the field tests)."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from lmforge.config import build_config
from lmforge.infer.factory import create_engine
from lmforge.serve.api import ApiSettings, create_app
from tests.serve.test_api import Server


@contextmanager
def tiny_engine(max_new_tokens: int) -> Iterator[Any]:
    """Greedy builtin:tiny-llama with the chatml template, so every answer is deterministic."""
    engine = create_engine(build_config({"model_name_or_path": "builtin:tiny-llama", "template": "chatml",
                                         "do_sample": False, "max_new_tokens": max_new_tokens}))
    try:
        yield engine
    finally:
        engine.close()


@contextmanager
def openai_client(engine: Any, model_id: str) -> Iterator[Any]:
    import openai

    with Server(create_app(engine, ApiSettings(model_id=model_id, max_tokens_limit=64))) as running:
        yield openai.OpenAI(base_url=f"http://127.0.0.1:{running.port}/v1", api_key="none", max_retries=0,
                            timeout=120)
