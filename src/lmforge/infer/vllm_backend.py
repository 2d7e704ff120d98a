"""The vLLM backend (optional extra `lmforge[vllm]`, CUDA GPU): same interface, vLLM's own batching.

vLLM is imported only inside `VllmEngine`; the translation of our options into vLLM's parameters
is plain functions, tested without vLLM installed. vLLM's offline `LLM` does not stream, so
`stream_chat` yields each answer whole when it is done.
"""

import importlib.util
from collections.abc import Iterator, Sequence
from typing import Any

from lmforge.config import LmforgeConfig
from lmforge.config.groups import GenerationGroup, ModelGroup
from lmforge.data.multimodal.plugin import ProcessedMedia
from lmforge.data.templates.encoding import stop_token_ids
from lmforge.data.templates.select import run_template
from lmforge.errors import ConfigError, ModelError
from lmforge.infer.batching import BatchWorker, Row
from lmforge.infer.candidates import Candidate, StreamDelta, pick_diverse
from lmforge.infer.engine import Engine
from lmforge.infer.options import GenerationOptions
from lmforge.infer.stops import answer_text, first_stop
from lmforge.model.loading import load_tokenizer, model_path


def vllm_usable() -> bool:
    """vLLM is importable and a CUDA GPU is present (checked without importing vLLM)."""
    if importlib.util.find_spec("vllm") is None:
        return False
    import torch

    return torch.cuda.is_available()


def engine_kwargs(model: ModelGroup, gen: GenerationGroup, path: str) -> dict[str, Any]:
    """Keyword arguments for `vllm.LLM` serving the checkpoint at `path`."""
    adapters = model.adapter_paths()
    if len(adapters) > 1:
        raise ModelError(f"the vLLM backend serves one adapter, got {len(adapters)}: merge them first with "
                         "`lmforge export`, or set `infer_backend: huggingface`")
    kwargs: dict[str, Any] = dict(
        model=path, tokenizer=path, trust_remote_code=model.trust_remote_code,
        dtype=model.infer_dtype, max_model_len=gen.vllm_maxlen, gpu_memory_utilization=gen.vllm_gpu_util,
        enforce_eager=gen.vllm_enforce_eager, revision=model.model_revision)
    if adapters:
        kwargs.update(enable_lora=True, max_lora_rank=gen.vllm_max_lora_rank)
    return {**kwargs, **(gen.vllm_config or {})}


def sampling_params_kwargs(options: GenerationOptions, eos_token_ids: list[int], index: int = 0) -> dict[str, Any]:
    """Keyword arguments for `vllm.SamplingParams` for one answer (row `index` of its request)."""
    kwargs: dict[str, Any] = dict(
        n=1, max_tokens=options.max_new_tokens, repetition_penalty=options.repetition_penalty,
        stop=list(options.stop), stop_token_ids=list(eos_token_ids), skip_special_tokens=True, logprobs=0,
        presence_penalty=options.presence_penalty, frequency_penalty=options.frequency_penalty)
    if options.logit_bias:
        kwargs["logit_bias"] = dict(options.logit_bias)
    if options.do_sample:
        kwargs.update(temperature=options.temperature, top_p=options.top_p, top_k=options.top_k or -1)
    else:
        kwargs.update(temperature=0.0)
    if options.seed is not None:
        kwargs["seed"] = options.seed + index  # one seed per candidate, or all n would be the same answer
    return kwargs


def beam_params_kwargs(options: GenerationOptions) -> dict[str, Any]:
    """Keyword arguments for `vllm.sampling_params.BeamSearchParams`."""
    return dict(beam_width=options.num_beams, max_tokens=options.max_new_tokens,
                length_penalty=options.length_penalty, temperature=0.0)


def candidate_from_output(text: str, token_ids: list[int], finish_reason: str | None,
                          token_logprobs: list[float] | None, stops: tuple[str, ...]) -> Candidate:
    """One vLLM completion as a candidate; stop strings are cut here too, whatever vLLM did."""
    cut = first_stop(text, stops)
    reason = "stop" if finish_reason == "stop" or cut is not None else "length"
    if cut is not None:
        text = text[:cut]
    logprobs = tuple(token_logprobs) if token_logprobs is not None else None
    return Candidate(text, tuple(token_ids), reason, token_logprobs=logprobs)  # type: ignore[arg-type]


def kept_marker_text(tokenizer: Any, text: str, token_ids: Sequence[int], keep: frozenset[int]) -> str:
    """vLLM's text of an answer, or, when the answer holds a tool-call marker that is a special token (which
    vLLM's decoding drops), the answer decoded with those markers kept, so its calls parse."""
    if not any(token in keep for token in token_ids):
        return text
    return answer_text(tokenizer, token_ids, keep)


class VllmEngine(Engine):
    backend = "vllm"

    def __init__(self, cfg: LmforgeConfig) -> None:
        tokenizer = load_tokenizer(cfg.model)
        template = run_template(cfg.model, tokenizer, preserve_thinking=cfg.data.preserve_thinking)
        super().__init__(tokenizer, template, cfg.generation,
                         model_name=cfg.model.model_name_or_path or "", enable_thinking=cfg.data.enable_thinking)
        self.no_media_reason = ("the vLLM backend serves text only here; set `infer_backend: huggingface` for "
                                "images, videos and audios")
        if importlib.util.find_spec("vllm") is None:
            raise ModelError("`infer_backend: vllm` needs vLLM: `pip install 'lmforge[vllm]'` on a CUDA machine, "
                             "or set `infer_backend: huggingface`")
        from vllm import LLM

        self.llm = LLM(**engine_kwargs(cfg.model, cfg.generation, model_path(cfg.model)))
        adapters = cfg.model.adapter_paths()
        self.lora = None
        if adapters:
            from vllm.lora.request import LoRARequest

            self.lora = LoRARequest("adapter", 1, adapters[0])
        self.eos_token_ids = stop_token_ids(self.template, self.tokenizer)
        self.worker = BatchWorker(self._run_rows, max_rows=cfg.generation.infer_batch_size)

    def close(self) -> None:
        self.worker.close()

    def check_options(self, options: GenerationOptions | None) -> GenerationOptions:
        options = super().check_options(options)
        if options.json_schema is not None or options.logprobs:
            raise ConfigError("`response_format` json and `top_logprobs` are served by the transformers backend "
                              "only: set `infer_backend: huggingface`")
        return options

    def _run_rows(self, rows: list[Row]) -> list[Candidate]:
        from vllm import SamplingParams

        outputs = self.llm.generate(
            [{"prompt_token_ids": row.prompt_ids} for row in rows],
            [SamplingParams(**sampling_params_kwargs(row.options, self.eos_token_ids, row.index)) for row in rows],
            lora_request=self.lora, use_tqdm=False)
        out = []
        for row, output in zip(rows, outputs, strict=True):
            completion = output.outputs[0]
            logprobs = ([step[token].logprob for step, token in zip(completion.logprobs, completion.token_ids,
                                                                   strict=True)]
                        if completion.logprobs else None)
            text = kept_marker_text(self.tokenizer, completion.text, completion.token_ids, self.kept_special_ids)
            out.append(candidate_from_output(text, list(completion.token_ids), completion.finish_reason,
                                             logprobs, row.options.stop))
        return out

    def _beam_search(self, prompt: list[int], options: GenerationOptions) -> list[Candidate]:
        from vllm.sampling_params import BeamSearchParams

        output = self.llm.beam_search([{"prompt_token_ids": prompt}], BeamSearchParams(**beam_params_kwargs(options)),
                                      lora_request=self.lora)[0]
        candidates = []
        for sequence in output.sequences[:options.n]:
            answer = [t for t in sequence.tokens[len(prompt):] if t not in self.eos_token_ids]
            text = answer_text(self.tokenizer, answer, self.kept_special_ids)
            candidates.append(candidate_from_output(text, answer, sequence.finish_reason, None, options.stop))
        return candidates

    def _complete(self, prompts: list[list[int]], options: GenerationOptions,
                  media: Sequence[ProcessedMedia | None] | None = None) -> list[list[Candidate]]:
        options = self.check_options(options)
        if media is not None and any(item is not None for item in media):  # check_inputs refuses them first
            raise ModelError(f"`{self.model_name}` cannot take media: {self.no_media_reason}")
        if options.method == "diverse_beam":
            raise ConfigError("`candidate_method: diverse_beam` runs on the transformers backend only: "
                              "set `infer_backend: huggingface`, or use `diverse_sample`")
        if options.method == "beam" or options.num_beams > 1:
            return [self.worker.submit_call(lambda p=p: self._beam_search(p, options)).result() for p in prompts]
        count = options.n * (options.oversample if options.method == "diverse_sample" else 1)
        futures = [self.worker.submit_rows([Row(p, options, index=i) for i in range(count)], key="vllm")
                   for p in prompts]
        answers = [future.result() for future in futures]
        if options.method == "diverse_sample":
            return [pick_diverse(found, options) for found in answers]
        return answers

    def _stream(self, prompt: list[int], options: GenerationOptions,
                media: ProcessedMedia | None = None) -> Iterator[StreamDelta]:
        for index, candidate in enumerate(self._complete([prompt], options, [media])[0]):
            yield StreamDelta(index, candidate.text, candidate.finish_reason, candidate=candidate)
