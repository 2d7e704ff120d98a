"""The transformers backend: batched `generate` on one worker thread, every candidate method.

Plain sampling and greedy rows of concurrent requests are decoded together (left-padded); a
`RowMonitor` stopping criterion follows each row, streams its text, and ends it at its own stop
strings and `max_new_tokens`, so rows with different limits still share one call.

Multimodal checkpoints load with their processor and multimodal plugin. Text-only requests to them
batch as above; a request with images, videos or audios is decoded on its own (its n candidates
together), with the plugin's processor tensors (pixel values, grids, audio features, token types)
beside its ids.
"""

import queue
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from transformers import (
    GenerationConfig,
    LogitsProcessorList,
    RepetitionPenaltyLogitsProcessor,
    SequenceBiasLogitsProcessor,
    StoppingCriteria,
)
from transformers.generation.stopping_criteria import StoppingCriteriaList, StopStringCriteria

from lmforge.config import LmforgeConfig
from lmforge.config.data import DataGroup
from lmforge.data.multimodal.examples import MMEncoder
from lmforge.data.multimodal.media import MediaOptions
from lmforge.data.multimodal.plugin import ProcessedMedia, mm_plugin_for
from lmforge.data.templates.encoding import stop_token_ids
from lmforge.data.templates.select import run_template
from lmforge.errors import ConfigError, LmforgeError
from lmforge.infer.batching import BatchWorker, Row
from lmforge.infer.candidates import Candidate, StreamDelta, interleave_groups, pick_diverse, with_logprobs
from lmforge.infer.diverse_beam import diverse_beam_search
from lmforge.infer.engine import Engine
from lmforge.infer.logits import AnswerPenalties, add_processor, penalty_kwargs
from lmforge.infer.options import GenerationOptions
from lmforge.infer.scoring import answer_logprobs
from lmforge.infer.stops import IncrementalDecoder, answer_text, first_stop
from lmforge.infer.structured import GrammarRows, SchemaCompiler
from lmforge.model.loading import (
    inference_dtype,
    load_base_model,
    load_processor,
    load_tokenizer,
    model_kind,
    with_adapters_merged,
)

STREAM_IDLE_TIMEOUT_S = 600.0  # a stream waits at most this long for its next piece of text


def sampling_kwargs(options: GenerationOptions) -> dict[str, Any]:
    """`generate` keyword arguments for plain sampling or greedy decoding."""
    kwargs: dict[str, Any] = dict(do_sample=options.do_sample, repetition_penalty=options.repetition_penalty)
    if options.do_sample:
        kwargs.update(temperature=options.temperature, top_p=options.top_p, top_k=options.top_k)
    else:  # greedy: clear sampling defaults a checkpoint's generation_config may carry
        kwargs.update(temperature=None, top_p=None, top_k=None)
    return kwargs


def batch_key(options: GenerationOptions) -> tuple:
    """Rows whose options give equal keys can share one decoding call."""
    return (options.do_sample, options.temperature, options.top_p, options.top_k, options.repetition_penalty,
            options.presence_penalty, options.frequency_penalty, options.logit_bias)


class _RowState:
    def __init__(self, row: Row, decoder: IncrementalDecoder) -> None:
        self.row = row
        self.decoder = decoder
        self.generated = 0
        self.finish_reason: str | None = None


class RowMonitor(StoppingCriteria):
    """Per-row stopping for a batch: end-of-turn ids, stop strings and each row's max_new_tokens.

    Called by `generate` after every new token; it also hands each row's new text to its stream.
    """

    def __init__(self, rows: list[Row], tokenizer: Any, eos_token_ids: list[int], keep: frozenset[int]) -> None:
        self.states = [_RowState(row, IncrementalDecoder(tokenizer, row.options.stop, keep)) for row in rows]
        self.eos = set(eos_token_ids)

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        for state, token in zip(self.states, input_ids[:, -1].tolist(), strict=True):
            if state.finish_reason is None:
                self._advance(state, token)
        return torch.tensor([s.finish_reason is not None for s in self.states], device=input_ids.device)

    def _advance(self, state: _RowState, token: int) -> None:
        state.generated += 1
        if token in self.eos:
            state.finish_reason = "stop"
            delta = state.decoder.finish()
        else:
            delta = state.decoder.push(token)
            if state.decoder.stopped:
                state.finish_reason = "stop"
            elif state.generated >= state.row.options.max_new_tokens:
                state.finish_reason = "length"
                delta += state.decoder.finish()
        if delta and state.row.on_text is not None:
            state.row.on_text(delta)

    def results(self) -> list[Candidate]:
        out = []
        for state in self.states:
            if state.finish_reason is None:  # the call's own limit ended it
                state.finish_reason = "length"
                if (delta := state.decoder.finish()) and state.row.on_text is not None:
                    state.row.on_text(delta)
            out.append(Candidate(state.decoder.text, tuple(state.decoder.token_ids), state.finish_reason))
        return out


class TransformersEngine(Engine):
    backend = "huggingface"

    def __init__(self, cfg: LmforgeConfig, model: Any = None, tokenizer: Any = None) -> None:
        """Loads the base model and merges the adapters as `cfg` says, or answers with `model` and its
        `tokenizer` as they are in memory (a model just trained)."""
        processor = load_processor(cfg.model, model_kind(cfg.model)) if model is None else None  # None: text-only
        if tokenizer is None:
            tokenizer = processor.tokenizer if processor is not None else load_tokenizer(cfg.model)
        template = run_template(cfg.model, tokenizer, preserve_thinking=cfg.data.preserve_thinking)
        super().__init__(tokenizer, template, cfg.generation,
                         model_name=cfg.model.model_name_or_path or "", enable_thinking=cfg.data.enable_thinking)
        if model is None:
            model = load_base_model(cfg.model, dtype=inference_dtype(cfg.model), cutoff_len=cfg.data.cutoff_len)
            model = with_adapters_merged(model, cfg.model.adapter_paths())
        self.model = model.eval()
        self.use_cache = cfg.generation.use_kv_cache
        self.model.generation_config.use_cache = self.use_cache  # this instance's decoding only
        if torch.cuda.is_available():
            self.model.to("cuda")
        if processor is not None:
            self._use_processor(processor, cfg.data)
        self.eos_token_ids = stop_token_ids(self.template, self.tokenizer)
        self.pad_token_id = self.tokenizer.pad_token_id
        self.worker = BatchWorker(self._run_rows, max_rows=cfg.generation.infer_batch_size)
        self._schemas: SchemaCompiler | None = None  # made at the first `response_format` json request

    def use_generation_config(self, source: str) -> None:
        """The file's settings become this model's generation defaults; each call's own keyword arguments
        (sampling, limits, stops) still override them."""
        try:
            self.model.generation_config = GenerationConfig.from_pretrained(source)
        except OSError as err:
            raise ConfigError(f"`generation_config: {source}` cannot be read as a generation config: {err}") from None
        self.model.generation_config.use_cache = self.use_cache

    def _schema_compiler(self) -> SchemaCompiler:
        if self._schemas is None:
            self._schemas = SchemaCompiler(self.tokenizer, self.model.config.get_text_config().vocab_size,
                                           self.eos_token_ids)
        return self._schemas

    def _grammar(self, rows: list[Row]) -> GrammarRows | None:
        """Each row's constrained decoding (None when no row has a `json_schema`)."""
        schemas = [row.options.json_schema for row in rows]
        if all(schema is None for schema in schemas):
            return None
        return GrammarRows([self._schema_compiler().compile(s) if s is not None else None for s in schemas])

    def check_options(self, options: GenerationOptions | None) -> GenerationOptions:
        """Also compiles a `json_schema` now (cached for the decoding), so a bad one is refused up front."""
        options = super().check_options(options)
        if options.json_schema is not None:
            self._schema_compiler().compile(options.json_schema)
        return options

    def _use_processor(self, processor: Any, data: DataGroup) -> None:
        """A multimodal model: its media go through its plugin with the data group's decoding options, as in
        training."""
        plugin = mm_plugin_for(processor)
        if plugin is None:
            self.no_media_reason = f"lmforge has no multimodal plugin for its processor `{type(processor).__name__}`"
        else:
            self.media_encoder = MMEncoder(processor, plugin, self.template, MediaOptions.from_config(data),
                                           data.cutoff_len, model_config=self.model.config)

    def close(self) -> None:
        self.worker.close()

    def _media_inputs(self, media: Sequence[ProcessedMedia | None], input_ids: torch.Tensor) -> dict[str, Any]:
        """The plugin's processor tensors for rows with media (none when no row has any), on the model's device."""
        if all(item is None for item in media) or self.media_encoder is None:
            return {}
        inputs = self.media_encoder.plugin.get_mm_inputs([item or ProcessedMedia() for item in media],
                                                         {"input_ids": input_ids}, self.tokenizer)
        return {key: value if not isinstance(value, torch.Tensor)  # a flag (`use_audio_in_video`)
                else value.to(self.model.device, dtype=self.model.dtype) if value.is_floating_point()
                else value.to(self.model.device) for key, value in inputs.items()}

    # --- decoding on the worker thread -----------------------------------------------------
    @torch.inference_mode()
    def _run_rows(self, rows: list[Row]) -> list[Candidate]:
        options = rows[0].options
        width = max(len(row.prompt_ids) for row in rows)
        input_ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        attention = torch.zeros_like(input_ids)
        for i, row in enumerate(rows):  # left padding: every row's answer starts at column `width`
            input_ids[i, width - len(row.prompt_ids):] = torch.tensor(row.prompt_ids)
            attention[i, width - len(row.prompt_ids):] = 1
        monitor = RowMonitor(rows, self.tokenizer, self.eos_token_ids, self.kept_special_ids)
        self.model.generate(
            input_ids=input_ids.to(self.model.device), attention_mask=attention.to(self.model.device),
            max_new_tokens=max(row.options.max_new_tokens for row in rows), eos_token_id=self.eos_token_ids,
            pad_token_id=self.pad_token_id, stopping_criteria=StoppingCriteriaList([monitor]),
            **self._media_inputs([row.media for row in rows], input_ids), **sampling_kwargs(options),
            **add_processor(penalty_kwargs(options, width), self._grammar(rows)))
        return monitor.results()

    def _run_seeded(self, rows: list[Row], seed: int) -> list[Candidate]:
        torch.manual_seed(seed)
        return self._run_rows(rows)

    @torch.inference_mode()
    def _beam_search(self, prompt: list[int], options: GenerationOptions,
                     media: ProcessedMedia | None = None) -> list[Candidate]:
        extra: dict[str, Any] = self._media_inputs([media], torch.tensor([prompt]))
        if options.stop:
            extra.update(stop_strings=list(options.stop), tokenizer=self.tokenizer)
        output = self.model.generate(
            input_ids=torch.tensor([prompt], device=self.model.device),
            attention_mask=torch.ones((1, len(prompt)), dtype=torch.long, device=self.model.device),
            num_beams=options.num_beams, num_return_sequences=max(options.n, 1), do_sample=False,
            temperature=None, top_p=None, top_k=None, repetition_penalty=options.repetition_penalty,
            length_penalty=options.length_penalty, max_new_tokens=options.max_new_tokens,
            eos_token_id=self.eos_token_ids, pad_token_id=self.pad_token_id,
            output_scores=True, return_dict_in_generate=True, **extra, **penalty_kwargs(options, len(prompt)))
        return [self._beam_candidate(output.sequences[i, len(prompt):].tolist(), options, float(score))
                for i, score in enumerate(output.sequences_scores.tolist())]

    def _diverse_beams(self, prompt: list[int], options: GenerationOptions) -> list[Candidate]:
        processors = LogitsProcessorList()
        if options.repetition_penalty != 1.0:
            processors.append(RepetitionPenaltyLogitsProcessor(options.repetition_penalty))
        if options.logit_bias:
            processors.append(SequenceBiasLogitsProcessor([[[token], bias] for token, bias in options.logit_bias]))
        if options.presence_penalty or options.frequency_penalty:
            processors.append(AnswerPenalties(options.presence_penalty, options.frequency_penalty, len(prompt)))
        criteria = StoppingCriteriaList()
        if options.stop:
            criteria.append(StopStringCriteria(self.tokenizer, list(options.stop)))
        groups = diverse_beam_search(
            self.model, prompt, num_beams=options.num_beams, num_beam_groups=options.num_beam_groups,
            diversity_penalty=options.diversity_penalty, max_new_tokens=options.max_new_tokens,
            eos_token_ids=self.eos_token_ids, pad_token_id=self.pad_token_id,
            length_penalty=options.length_penalty, logits_processor=processors, stopping_criteria=criteria)
        return interleave_groups(
            [[self._beam_candidate(beam.token_ids, options, beam.score) for beam in group] for group in groups],
            options.n)

    def _beam_candidate(self, token_ids: list[int], options: GenerationOptions, score: float) -> Candidate:
        """A finished beam as a candidate: cut at its end-of-turn token or first stop string."""
        kept: list[int] = []
        reason = "length"
        for token in token_ids:
            if token in self.eos_token_ids:
                reason = "stop"
                break
            kept.append(token)
        text = answer_text(self.tokenizer, kept, self.kept_special_ids)
        cut = first_stop(text, options.stop)
        if cut is not None:
            decoder = IncrementalDecoder(self.tokenizer, options.stop, self.kept_special_ids)
            for token in kept:
                decoder.push(token)
            text, kept, reason = decoder.text, decoder.token_ids, "stop"
        return Candidate(text, tuple(kept), reason, beam_score=score)  # type: ignore[arg-type]

    def _scored(self, prompt: list[int], candidates: list[Candidate], media: ProcessedMedia | None = None,
                top: int | None = None) -> list[Candidate]:
        def media_inputs(input_ids: torch.Tensor) -> dict[str, Any]:
            return self._media_inputs([media] * len(input_ids), input_ids.cpu())

        logprobs, alternatives = answer_logprobs(
            self.model, prompt, [list(c.token_ids) for c in candidates], self.pad_token_id,
            extra_inputs=media_inputs if media is not None else None, top=top or 0)
        return with_logprobs(candidates, logprobs, alternatives if top else None)

    # --- the interface ---------------------------------------------------------------------
    def _sample(self, prompts: list[list[int]], options: GenerationOptions, count: int,
                media: Sequence[ProcessedMedia | None]) -> list[list[Candidate]]:
        """`count` sampled (or greedy) answers per prompt through the batching worker; a prompt with images
        (or a seeded request) is decoded on its own."""
        if options.seed is not None:
            rows = [Row(prompt, options, media=item) for prompt, item in zip(prompts, media, strict=True)
                    for _ in range(count)]
            flat = self.worker.submit_call(lambda: self._run_seeded(rows, options.seed)).result()
            return [flat[i * count:(i + 1) * count] for i in range(len(prompts))]
        futures = [self._submit([Row(prompt, options, media=item) for _ in range(count)])
                   for prompt, item in zip(prompts, media, strict=True)]
        return [future.result() for future in futures]

    def _submit(self, rows: list[Row]) -> Any:
        if rows[0].media is not None:
            return self.worker.submit_call(lambda: self._run_rows(rows))
        return self.worker.submit_rows(rows, batch_key(rows[0].options))

    def _complete(self, prompts: list[list[int]], options: GenerationOptions,
                  media: Sequence[ProcessedMedia | None] | None = None) -> list[list[Candidate]]:
        options = options.checked()
        media = list(media) if media is not None else [None] * len(prompts)
        pairs = list(zip(prompts, media, strict=True))
        if options.method == "beam" or (options.method == "sample" and options.num_beams > 1):
            answers = [self.worker.submit_call(lambda p=p, m=m: self._beam_search(p, options, m)).result()
                       for p, m in pairs]
        elif options.method == "diverse_beam":
            if any(item is not None for item in media):
                raise ConfigError("`candidate_method: diverse_beam` takes text prompts only; with media use "
                                  "sample, beam or diverse_sample")
            answers = [self.worker.submit_call(lambda p=p: self._diverse_beams(p, options)).result()
                       for p in prompts]
        elif options.method == "diverse_sample":
            drawn = self._sample(prompts, options, options.n * options.oversample, media)
            return [pick_diverse(self._score(p, c, m, options.logprobs), options)
                    for (p, m), c in zip(pairs, drawn, strict=True)]
        else:
            answers = self._sample(prompts, options, options.n, media)
        if options.n == 1 and options.method == "sample" and options.logprobs is None:
            return answers  # a single answer needs no ranking; skip the scoring pass
        return [self._score(p, c, m, options.logprobs) for (p, m), c in zip(pairs, answers, strict=True)]

    def _score(self, prompt: list[int], candidates: list[Candidate], media: ProcessedMedia | None = None,
               top: int | None = None) -> list[Candidate]:
        return self.worker.submit_call(lambda: self._scored(prompt, candidates, media, top)).result()

    def _stream(self, prompt: list[int], options: GenerationOptions,
                media: ProcessedMedia | None = None) -> Iterator[StreamDelta]:
        options = options.checked()
        if options.method != "sample" or options.num_beams > 1:
            # whole-search methods: each candidate arrives in one piece when the search ends
            for index, candidate in enumerate(self._complete([prompt], options, [media])[0]):
                yield StreamDelta(index, candidate.text, candidate.finish_reason, candidate=candidate)
            return
        pieces: queue.Queue = queue.Queue()
        rows = [Row(prompt, options, on_text=lambda text, i=i: pieces.put(StreamDelta(i, text)), media=media)
                for i in range(options.n)]
        if options.seed is not None:
            future = self.worker.submit_call(lambda: self._run_seeded(rows, options.seed))
        else:
            future = self._submit(rows)
        future.add_done_callback(lambda _: pieces.put(None))
        while True:
            try:
                item = pieces.get(timeout=STREAM_IDLE_TIMEOUT_S)
            except queue.Empty:
                raise LmforgeError(f"generation produced nothing for {STREAM_IDLE_TIMEOUT_S:.0f} s") from None
            if item is None:
                break
            yield item
        candidates = future.result()
        if options.logprobs is not None:
            candidates = self._score(prompt, candidates, media, options.logprobs)
        for index, candidate in enumerate(candidates):
            yield StreamDelta(index, "", candidate.finish_reason, candidate=candidate)
