"""The engine interface every backend implements: chat, stream_chat, candidates and batch generate.

Prompts are rendered with the training template, so a fine-tuned model sees the format it learnt:
tool definitions in the template's tool format, images, videos and audios through the model's multimodal
plugin (decoded with the data group's media options, as in training). Backends (`hf_backend` for
transformers, `vllm_backend`) only turn token-id prompts (and processed media) and `GenerationOptions`
into `Candidate`s; everything about messages, and parsing tool calls back out of answers (`tools`),
lives here.
"""

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from transformers import PreTrainedTokenizerBase

from lmforge.config.groups import GenerationGroup
from lmforge.data.multimodal.examples import MMEncoder
from lmforge.data.multimodal.plugin import ProcessedMedia
from lmforge.data.templates.encoding import encode_conversation
from lmforge.data.templates.template import Message, Template
from lmforge.errors import ConfigError, ModelError
from lmforge.infer.candidates import Candidate, StreamDelta
from lmforge.infer.logits import bias_problems
from lmforge.infer.options import GenerationOptions
from lmforge.infer.stops import special_ids, special_markers
from lmforge.infer.tools import ToolStream, check_tools, with_tool_calls

TEXT_ONLY = ("it is served as a text-only model; media need a multimodal checkpoint (Qwen2-VL, LLaVA, Gemma 3, "
             "Qwen2-Audio, ...) with its multimodal template")
MEDIA_KINDS = ("images", "videos", "audios")  # the media a chat message may carry, in placeholder order


@dataclass
class Prompt:
    """A rendered prompt: its token ids, its processed media (multimodal models) and its tools."""

    ids: list[int]
    media: ProcessedMedia | None = None
    tools: list[dict[str, Any]] | None = None


class Engine(ABC):
    """Loads a model (base + merged adapters) and answers conversations.

    Conversations are template `Message`s: an assistant turn may carry `tool_calls`, a `tool` turn is one
    tool result (as training data represents them), and `<image>` / `<video>` / `<audio>` placeholders mark
    where media go.
    """

    backend: str = ""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, template: Template, generation: GenerationGroup, *,
                 model_name: str = "", enable_thinking: str | None = None,
                 media_encoder: MMEncoder | None = None) -> None:
        """`template`: the run's template (`run_template`); `generation`: the defaults of every answer;
        `enable_thinking`: the data group's, so prompts render as in training."""
        self.model_name = model_name
        self.tokenizer = tokenizer
        self.template = template
        # a tool format's call markers that are special tokens must be seen in the decoded answer
        self.kept_special_ids = special_markers(tokenizer, self.template.tools.markers)
        if not generation.skip_special_tokens:  # every special token is written into the answer
            self.kept_special_ids |= special_ids(tokenizer)
        self.defaults = GenerationOptions.from_config(generation)
        self.default_system = generation.default_system
        self.enable_thinking = enable_thinking
        self.media_encoder = media_encoder  # set for multimodal models: their processor and plugin
        self.no_media_reason = TEXT_ONLY  # why media are refused when the model has no media encoder

    def supports(self, kind: str) -> bool:
        """Whether the model takes this medium (`images`, `videos` or `audios`)."""
        return self.media_encoder is not None and kind in self.media_encoder.plugin.markers

    @property
    def supports_images(self) -> bool:
        return self.supports("images")

    def refusal(self, kind: str) -> str:
        """Why this model cannot take `kind` (for a medium it does not take)."""
        if self.media_encoder is None:
            return self.no_media_reason
        plugin = self.media_encoder.plugin
        return f"its processor (`{plugin.name}` plugin) takes {', '.join(plugin.markers)} only"

    # --- what backends implement -------------------------------------------------------------
    @abstractmethod
    def _complete(self, prompts: list[list[int]], options: GenerationOptions,
                  media: Sequence[ProcessedMedia | None] | None = None) -> list[list[Candidate]]:
        """options.n candidates for every prompt, as options.method makes them; `media`: each prompt's images."""

    @abstractmethod
    def _stream(self, prompt: list[int], options: GenerationOptions,
                media: ProcessedMedia | None = None) -> Iterator[StreamDelta]:
        """Text deltas of options.n candidates as they are generated; each ends with a finish_reason."""

    @abstractmethod
    def close(self) -> None:
        """Stop background workers; the engine cannot be used afterwards."""

    # --- the interface -----------------------------------------------------------------------
    def use_generation_config(self, source: str) -> None:
        """Decode with the settings of a generation_config.json file or folder (the options override it)."""
        raise ConfigError(f"`generation_config: {source}` sets up transformers' `generate`, which the {self.backend} "
                          "backend does not run: set `infer_backend: huggingface`, or set the generation keys instead")

    def options(self, options: GenerationOptions | None = None, **overrides: Any) -> GenerationOptions:
        return (options or self.defaults).updated(**overrides)

    def prompt(self, messages: Sequence[Message], system: str | None = None, *,
               images: Sequence[Any] | None = None, tools: Sequence[Any] | None = None,
               videos: Sequence[Any] | None = None, audios: Sequence[Any] | None = None,
               use_audio_in_video: bool | None = None) -> Prompt:
        """The prompt as the model sees it: the training template's rendering, with the tool definitions in
        the template's tool format and each image, video and audio through the model's multimodal plugin
        (decoded and expanded as in training). Media (bytes, paths; images also PIL images) go where the
        messages have `<image>` / `<video>` / `<audio>` placeholders, or, when there are none, in front of
        the last user message (images, then videos, then audios). `use_audio_in_video`: this prompt's choice
        (Qwen-Omni: each video's sound interleaved with its frames); None keeps the served config's."""
        self.check_inputs(images, videos=videos, audios=audios)
        encoder = self._media_encoder(use_audio_in_video)
        checked_tools = check_tools(tools)
        system = system if system is not None else self.default_system
        thinking = self.enable_thinking
        media = {kind: list(items) for kind, items in zip(MEDIA_KINDS, (images, videos, audios), strict=True)
                 if items}
        if media:
            example = encoder.prompt(  # type: ignore[union-attr]
                list(messages), media, system=system, tools=checked_tools, enable_thinking=thinking)
            return Prompt(example.input_ids, example.processed, checked_tools)
        ids = encode_conversation(self.template, self.tokenizer, list(messages), system=system, tools=checked_tools,
                                  add_generation_prompt=True, enable_thinking=thinking).flat()
        return Prompt(ids, None, checked_tools)

    def _media_encoder(self, use_audio_in_video: bool | None) -> MMEncoder | None:
        """The media encoder with one prompt's `use_audio_in_video` (None: the served config's)."""
        encoder = self.media_encoder
        if use_audio_in_video is None or use_audio_in_video == (encoder is not None
                                                                and encoder.options.use_audio_in_video):
            return encoder
        if encoder is None or not encoder.plugin.video_sound:
            raise ModelError(f"`{self.model_name}` cannot take `use_audio_in_video: true`: only models that "
                             "interleave a video's sound with its frames (Qwen2.5-Omni, Qwen3-Omni) do; send false "
                             "or leave it out")
        return replace(encoder, options=replace(encoder.options, use_audio_in_video=use_audio_in_video))

    def text_prompt(self, text: str | Sequence[int]) -> Prompt:
        """A plain-text prompt, continued as it is (no template): the tokenizer's encoding of the text, with
        the BOS token the tokenizer adds, or the token ids as given."""
        ids = self.tokenizer.encode(text) if isinstance(text, str) else list(text)
        if not ids:
            raise ConfigError("the prompt is empty: a text completion needs at least one token to continue")
        vocab = len(self.tokenizer)
        if any(not 0 <= token < vocab for token in ids):
            raise ConfigError(f"the prompt has token ids outside the vocabulary (0..{vocab - 1})")
        return Prompt(ids)

    def encode(self, messages: Sequence[Message], system: str | None = None, **inputs: Any) -> list[int]:
        return self.prompt(messages, system, **inputs).ids

    def check_inputs(self, images: Sequence[object] | None = None, tools: Sequence[object] | None = None, *,
                     videos: Sequence[object] | None = None, audios: Sequence[object] | None = None) -> None:
        """Refuse inputs this engine cannot use, with the reason (before any generation)."""
        for kind, items in zip(MEDIA_KINDS, (images, videos, audios), strict=True):
            if items and not self.supports(kind):
                raise ModelError(f"`{self.model_name}` cannot take {kind}: {self.refusal(kind)}")
        check_tools(tools)  # type: ignore[arg-type]

    def check_options(self, options: GenerationOptions | None) -> GenerationOptions:
        """The options (the defaults for None), checked against this model: `logit_bias` token ids exist."""
        options = (options or self.defaults).checked()
        problems = bias_problems(options.logit_bias, len(self.tokenizer))
        if problems:
            raise ConfigError("logit_bias: " + "; ".join(problems))
        return options

    def candidates(self, messages: Sequence[Message], system: str | None = None,
                   options: GenerationOptions | None = None, **inputs: Any) -> list[Candidate]:
        """options.n answers with their log-probabilities; with tools, each with its parsed tool calls.
        `inputs`: `prompt`'s media (`images`, `videos`, `audios`) and `tools`."""
        return self.complete(self.prompt(messages, system, **inputs), options)

    def complete(self, prompt: Prompt, options: GenerationOptions | None = None) -> list[Candidate]:
        """`candidates` of a prompt built by `prompt` (the API builds it once: its length is the usage)."""
        found = self._complete([prompt.ids], self.check_options(options).for_prompt(len(prompt.ids)), [prompt.media])[0]
        if prompt.tools:
            return [with_tool_calls(self.template.tools, candidate) for candidate in found]
        return found

    def chat(self, messages: Sequence[Message], system: str | None = None,
             options: GenerationOptions | None = None, **inputs: Any) -> str:
        """The answer's text (with tools: the raw text, calls included; `candidates` parses them)."""
        return self.candidates(messages, system, self.options(options, n=1), **inputs)[0].text

    def stream_candidates(self, messages: Sequence[Message], system: str | None = None,
                          options: GenerationOptions | None = None, **inputs: Any) -> Iterator[StreamDelta]:
        """Deltas of every candidate (`inputs` as in `candidates`). With tools, text that may be a tool call is
        held back until it is clear it is not one, or until the candidate ends; its calls then come on its
        last delta."""
        return self.stream(self.prompt(messages, system, **inputs), options)

    def stream(self, prompt: Prompt, options: GenerationOptions | None = None) -> Iterator[StreamDelta]:
        """`stream_candidates` of a prompt built by `prompt`."""
        deltas = self._stream(prompt.ids, self.check_options(options).for_prompt(len(prompt.ids)), prompt.media)
        return ToolStream(self.template.tools).feed(deltas) if prompt.tools else deltas

    def stream_chat(self, messages: Sequence[Message], system: str | None = None,
                    options: GenerationOptions | None = None, **inputs: Any) -> Iterator[str]:
        for delta in self.stream_candidates(messages, system, self.options(options, n=1), **inputs):
            if delta.text:
                yield delta.text

    def generate(self, conversations: Sequence[tuple[Sequence[Message], str | None]],
                 options: GenerationOptions | None = None) -> list[list[Candidate]]:
        """Candidates for many (messages, system) conversations at once, in order."""
        prompts = [self.encode(messages, system) for messages, system in conversations]
        options = options or self.defaults
        # prompts whose `max_length` leaves them the same answer limit are decoded together
        groups: dict[GenerationOptions, list[int]] = {}
        for index, ids in enumerate(prompts):
            groups.setdefault(options.for_prompt(len(ids)), []).append(index)
        results: list[list[Candidate]] = [[] for _ in prompts]
        for fitted, indices in groups.items():
            for index, found in zip(indices, self._complete([prompts[i] for i in indices], fitted), strict=True):
                results[index] = found
        return results

