"""The chat engine: base model plus merged adapters, prompts rendered with the training template."""

from collections.abc import Iterator
from threading import Thread
from typing import Any

import torch
from transformers import TextIteratorStreamer

from lmforge.config import LmforgeConfig
from lmforge.data.templates.auto import resolve_template
from lmforge.data.templates.encoding import encode_conversation, stop_token_ids
from lmforge.data.templates.select import select_template
from lmforge.data.templates.template import Message
from lmforge.model.adapters import merge_adapters
from lmforge.model.loading import inference_dtype, load_causal_lm, load_tokenizer
from lmforge.preflight import preflight


class ChatEngine:
    def __init__(self, cfg: LmforgeConfig) -> None:
        preflight(cfg, "chat")
        self.cfg = cfg
        self.tokenizer = load_tokenizer(cfg)
        self.template = resolve_template(
            select_template(cfg.model.template, cfg.model.model_name_or_path, cfg.model.tool_format), self.tokenizer)
        model = load_causal_lm(cfg, dtype=inference_dtype(cfg))
        self.model = merge_adapters(model, cfg.model.adapter_name_or_path or []).eval()
        if torch.cuda.is_available():
            self.model.to("cuda")

    def _inputs(self, messages: list[Message], system: str | None) -> dict[str, torch.Tensor]:
        encoded = encode_conversation(self.template, self.tokenizer, messages,
                                      system=system if system is not None else self.cfg.generation.default_system,
                                      add_generation_prompt=True, enable_thinking=self.cfg.data.enable_thinking)
        ids = torch.tensor([encoded.flat()], device=self.model.device)
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}

    def _generation_kwargs(self) -> dict[str, Any]:
        gen = self.cfg.generation
        kwargs: dict[str, Any] = dict(
            max_new_tokens=gen.max_new_tokens, do_sample=gen.do_sample, num_beams=gen.num_beams,
            repetition_penalty=gen.repetition_penalty,
            eos_token_id=stop_token_ids(self.template, self.tokenizer),
            pad_token_id=self.tokenizer.pad_token_id)
        if gen.do_sample:
            kwargs.update(temperature=gen.temperature, top_p=gen.top_p, top_k=gen.top_k)
        else:  # greedy: clear sampling defaults a checkpoint's generation_config may carry
            kwargs.update(temperature=None, top_p=None, top_k=None)
        return kwargs

    @torch.inference_mode()
    def chat(self, messages: list[Message], system: str | None = None) -> str:
        inputs = self._inputs(messages, system)
        output = self.model.generate(**inputs, **self._generation_kwargs())
        return self.tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)

    def stream_chat(self, messages: list[Message], system: str | None = None) -> Iterator[str]:
        inputs = self._inputs(messages, system)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        worker = Thread(target=self._generate_into, args=(inputs, streamer), daemon=True)
        worker.start()
        yield from streamer
        worker.join()

    @torch.inference_mode()
    def _generate_into(self, inputs: dict[str, torch.Tensor], streamer: TextIteratorStreamer) -> None:
        self.model.generate(**inputs, **self._generation_kwargs(), streamer=streamer)
