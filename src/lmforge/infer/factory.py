"""`create_engine`: the backend that serves a config. Kept apart from `engine.py`, the interface the
backends import, so neither imports the other."""

from lmforge.config import LmforgeConfig
from lmforge.infer.engine import Engine
from lmforge.preflight import preflight


def create_engine(cfg: LmforgeConfig) -> Engine:
    """The configured backend (`infer_backend`); auto is vLLM when importable with a CUDA GPU."""
    preflight(cfg, "chat")
    from lmforge.infer.vllm_backend import vllm_usable

    backend = cfg.generation.infer_backend
    if backend == "auto":
        backend = "vllm" if vllm_usable() and cfg.generation.candidate_method != "diverse_beam" else "huggingface"
    if backend == "vllm":
        from lmforge.infer.vllm_backend import VllmEngine

        return VllmEngine(cfg)
    from lmforge.infer.hf_backend import TransformersEngine

    return TransformersEngine(cfg)
