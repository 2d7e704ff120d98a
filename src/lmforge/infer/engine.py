"""The engine interface every backend implements: chat, stream_chat, candidates and batch generate.

Prompts are rendered with the training template, so a fine-tuned model sees the format it learnt.
Backends (`hf_backend` for transformers, `vllm_backend`) only turn token-id prompts and
`GenerationOptions` into `Candidate`s; everything about messages lives here.
"""

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import Any

from transformers import PreTrainedTokenizerBase

from lmforge.config import LmforgeConfig
from lmforge.data.templates.encoding import encode_conversation
from lmforge.data.templates.select import run_template
from lmforge.data.templates.template import Message
from lmforge.errors import ModelError, TemplateError
from lmforge.infer.candidates import Candidate, StreamDelta
from lmforge.infer.options import GenerationOptions
from lmforge.preflight import preflight

MULTIMODAL_PENDING = ("multimodal models are not supported yet: `{model}` is served as a text-only model, "
                      "so images cannot be answered; send text only")
TOOLS_PENDING = ("tool calling is not supported yet in chat and the API (training on tool calls is): "
                 "send the request without `tools`")


class Engine(ABC):
    """Loads a model (base + merged adapters) and answers conversations."""

    backend: str = ""

    def __init__(self, cfg: LmforgeConfig, tokenizer: PreTrainedTokenizerBase) -> None:
        self.cfg = cfg
        self.model_name = cfg.model.model_name_or_path or ""
        self.tokenizer = tokenizer
        self.template = run_template(cfg, tokenizer)
        self.defaults = GenerationOptions.from_config(cfg.generation)
        self.supports_images = False  # no backend serves vision-language models yet

    # --- what backends implement -------------------------------------------------------------
    @abstractmethod
    def _complete(self, prompts: list[list[int]], options: GenerationOptions) -> list[list[Candidate]]:
        """options.n candidates for every prompt, as options.method makes them."""

    @abstractmethod
    def _stream(self, prompt: list[int], options: GenerationOptions) -> Iterator[StreamDelta]:
        """Text deltas of options.n candidates as they are generated; each ends with a finish_reason."""

    @abstractmethod
    def close(self) -> None:
        """Stop background workers; the engine cannot be used afterwards."""

    # --- the interface -----------------------------------------------------------------------
    def options(self, options: GenerationOptions | None = None, **overrides: Any) -> GenerationOptions:
        return (options or self.defaults).updated(**overrides)

    def encode(self, messages: Sequence[Message], system: str | None = None) -> list[int]:
        system = system if system is not None else self.cfg.generation.default_system
        return encode_conversation(self.template, self.tokenizer, list(messages), system=system,
                                   add_generation_prompt=True, enable_thinking=self.cfg.data.enable_thinking).flat()

    def check_inputs(self, images: Sequence[object] | None = None, tools: Sequence[object] | None = None) -> None:
        """Refuse inputs this engine cannot use, with the reason (before any generation)."""
        if images and not self.supports_images:
            raise ModelError(MULTIMODAL_PENDING.format(model=self.model_name))
        if tools:
            raise TemplateError(TOOLS_PENDING)

    def candidates(self, messages: Sequence[Message], system: str | None = None,
                   options: GenerationOptions | None = None, *, images: Sequence[object] | None = None,
                   tools: Sequence[object] | None = None) -> list[Candidate]:
        """options.n answers with their log-probabilities."""
        self.check_inputs(images, tools)
        return self._complete([self.encode(messages, system)], options or self.defaults)[0]

    def chat(self, messages: Sequence[Message], system: str | None = None,
             options: GenerationOptions | None = None, **inputs: Any) -> str:
        return self.candidates(messages, system, self.options(options, n=1), **inputs)[0].text

    def stream_candidates(self, messages: Sequence[Message], system: str | None = None,
                          options: GenerationOptions | None = None, *, images: Sequence[object] | None = None,
                          tools: Sequence[object] | None = None) -> Iterator[StreamDelta]:
        self.check_inputs(images, tools)
        return self._stream(self.encode(messages, system), options or self.defaults)

    def stream_chat(self, messages: Sequence[Message], system: str | None = None,
                    options: GenerationOptions | None = None, **inputs: Any) -> Iterator[str]:
        for delta in self.stream_candidates(messages, system, self.options(options, n=1), **inputs):
            if delta.text:
                yield delta.text

    def generate(self, conversations: Sequence[tuple[Sequence[Message], str | None]],
                 options: GenerationOptions | None = None) -> list[list[Candidate]]:
        """Candidates for many (messages, system) conversations at once, in order."""
        prompts = [self.encode(messages, system) for messages, system in conversations]
        return self._complete(prompts, options or self.defaults)


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
