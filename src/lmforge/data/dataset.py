"""Configured datasets -> tokenized train/eval datasets plus a report of what is trained.

One straight line: resolve the registrations -> reuse the content-addressed cache when it has
this exact input -> read and check rows -> tokenize per stage (batched) -> mix -> split ->
pack -> save to the cache. Streaming builds the same examples lazily instead.
"""

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
from datasets import Dataset, IterableDataset, concatenate_datasets, interleave_datasets
from transformers import PreTrainedTokenizerBase

from lmforge.config import LmforgeConfig
from lmforge.data.cache import cache_dir, cache_key, load_prepared, save_prepared
from lmforge.data.formats import convert_labeled, convert_preference, converter
from lmforge.data.loading import document_converter, iter_items, load_items
from lmforge.data.multimodal.plugin import mm_plugin_for
from lmforge.data.multimodal.rows import (
    mm_columns,
    mm_conversation_converter,
    mm_document_converter,
    mm_preference_converter,
)
from lmforge.data.packing import pack_examples
from lmforge.data.processors.preference import tokenize_kto, tokenize_pairwise
from lmforge.data.processors.pt import tokenize_pt
from lmforge.data.processors.seq2seq import tokenize_seq2seq
from lmforge.data.processors.sft import tokenize_sft
from lmforge.data.registry import DatasetSpec, resolve_dataset
from lmforge.data.report import DataReport
from lmforge.data.templates.encoding import stop_token_ids
from lmforge.data.templates.template import Template
from lmforge.errors import DataError

PAIRWISE_STAGES = ("rm", "dpo")
STREAM_CHUNK = 256  # conversations tokenized per batched call while streaming


@dataclass
class PreparedData:
    train: Dataset | IterableDataset
    evaluation: Dataset | None
    report: DataReport


def check_datasets(cfg: LmforgeConfig) -> None:
    """Resolve every configured dataset (registry entry and file) without reading rows."""
    for name in (cfg.data.dataset or []) + (cfg.data.eval_dataset or []):
        resolve_dataset(name, cfg.data.dataset_dir)


MULTIMODAL_STAGES = ("sft", "pt", "dpo")


def multimodal_rows(cfg: LmforgeConfig, processor: Any) -> bool:
    """Whether rows keep their media for `multimodal_collator`: a processor lmforge has a plugin for, in a
    stage that trains on media. Its tokenization then happens per batch, in the collator."""
    return processor is not None and mm_plugin_for(processor) is not None and (
        cfg.finetuning.stage in MULTIMODAL_STAGES)


class _Builder:
    """Tokenizes one dataset's rows for the configured stage, adding to the shared report."""

    def __init__(self, cfg: LmforgeConfig, tokenizer: PreTrainedTokenizerBase, template: Template,
                 encoder_decoder: bool = False, processor: Any = None) -> None:
        self.cfg, self.tokenizer, self.template = cfg, tokenizer, template
        self.encoder_decoder = encoder_decoder
        self.multimodal = multimodal_rows(cfg, processor)
        self.stage = cfg.finetuning.stage
        self.packing = cfg.data.packing_enabled(self.stage)
        self.end_ids = frozenset(stop_token_ids(template, tokenizer))
        self.media_dir = Path(cfg.data.media_dir or cfg.data.dataset_dir)
        self.cache_key: str | None = None  # names the datasets built (their `datasets` fingerprint)

    def row_converter(self, spec: DatasetSpec) -> Any:
        pairwise = self.stage in PAIRWISE_STAGES
        if spec.ranking != pairwise:
            need = "a ranking dataset (`ranking: true`, chosen/rejected answers)" if pairwise else "non-ranking rows"
            raise DataError(f"dataset `{spec.name}`: `stage: {self.stage}` needs {need}")
        if pairwise and self.multimodal:
            return mm_preference_converter(spec, self.media_dir)
        if pairwise:
            return lambda row, where: convert_preference(row, spec, where)
        if self.stage == "kto":
            return lambda row, where: convert_labeled(row, spec, where)
        if self.stage == "pt":
            return mm_document_converter(spec, self.media_dir) if self.multimodal else document_converter(spec)
        return mm_conversation_converter(spec, self.media_dir) if self.multimodal else converter(spec, self.media_dir)

    def tokenize(self, items: list[Any], report: DataReport) -> dict[str, list[list[int]]]:
        data = self.cfg.data
        if self.multimodal:
            self._count_text(items, report)
            return mm_columns(items)
        if self.stage in PAIRWISE_STAGES or self.stage == "kto":
            tokenize = tokenize_pairwise if self.stage in PAIRWISE_STAGES else tokenize_kto
            columns, pref = tokenize(items, self.template, self.tokenizer, cutoff_len=data.cutoff_len)
            report.truncated += pref.truncated
            report.tokens += pref.tokens
            report.supervised_tokens += pref.answer_tokens
            return columns
        if self.stage == "pt":
            columns, pt = tokenize_pt(items, self.tokenizer, cutoff_len=data.cutoff_len, packing=self.packing)
            report.truncated += pt.truncated
            report.dropped_tail_tokens += pt.dropped_tail_tokens
            report.tokens += pt.tokens
            report.supervised_tokens += pt.tokens
            return columns
        if self.encoder_decoder:  # the encoder reads the conversation, the decoder learns the last answer
            columns, sft = tokenize_seq2seq(items, self.template, self.tokenizer, cutoff_len=data.cutoff_len)
            report.truncated += sft.truncated
            report.dropped_empty += sft.dropped_empty
            report.tokens += sft.tokens
            report.supervised_tokens += sft.supervised_tokens
            return columns
        with_media = next((c for c in items if c.media), None)
        if with_media is not None:
            raise DataError(f"{with_media.source}: has {', '.join(with_media.media)}, but the model is text-only "
                            "(no multimodal processor with an lmforge plugin) or `stage: "
                            f"{self.stage}` does not take media (sft, pt and dpo do): train a vision/audio-language "
                            "model (docs/multimodal.md), or remove the media columns from the dataset registration")
        columns, sft = tokenize_sft(items, self.template, self.tokenizer, cutoff_len=data.cutoff_len,
                                    train_on_prompt=data.train_on_prompt, mask_history=data.mask_history,
                                    end_ids=self.end_ids, enable_thinking=data.enable_thinking)
        report.truncated += sft.truncated
        report.dropped_empty += sft.dropped_empty
        report.tokens += sft.tokens
        report.supervised_tokens += sft.supervised_tokens
        report.answers += sft.answers
        report.answers_without_end += sft.answers_without_end
        return columns

    def _count_text(self, items: list[Any], report: DataReport) -> None:
        """Multimodal rows are encoded per batch (their media decoded there); the report counts their text
        tokens, placeholders as written, and their media items."""
        report.multimodal = True
        for item in items:
            for kind, paths in item.media.items():
                report.media_items[kind] = report.media_items.get(kind, 0) + len(paths)
        data = self.cfg.data
        if self.stage == "pt":
            _, pt = tokenize_pt([item.text for item in items], self.tokenizer, cutoff_len=data.cutoff_len,
                                packing=False)
            report.tokens += pt.tokens
            report.supervised_tokens += pt.tokens
        elif self.stage in PAIRWISE_STAGES:
            _, pref = tokenize_pairwise([item.preference for item in items], self.template, self.tokenizer,
                                        cutoff_len=data.cutoff_len)
            report.tokens += pref.tokens
            report.supervised_tokens += pref.answer_tokens
        else:
            _, sft = tokenize_sft(items, self.template, self.tokenizer, cutoff_len=data.cutoff_len,
                                  train_on_prompt=data.train_on_prompt, mask_history=data.mask_history,
                                  end_ids=self.end_ids, enable_thinking=data.enable_thinking)
            report.tokens += sft.tokens
            report.supervised_tokens += sft.supervised_tokens

    def load(self, spec: DatasetSpec, report: DataReport) -> Dataset:
        loaded = load_items(spec, self.row_converter(spec), max_samples=self.cfg.data.max_samples,
                            on_bad_row=self.cfg.data.on_bad_row)
        report.rows_per_dataset[spec.name] = len(loaded.items)
        report.skipped += loaded.skipped
        columns = self.tokenize(loaded.items, report)
        if self.multimodal:
            return Dataset.from_dict(columns)
        return _token_dataset(columns, _fingerprint(self.cache_key, spec.name))

    def stream(self, spec: DatasetSpec, report: DataReport) -> IterableDataset:
        def generate() -> Iterator[dict[str, list[int]]]:
            items = iter_items(spec, self.row_converter(spec), max_samples=self.cfg.data.max_samples,
                               on_bad_row=self.cfg.data.on_bad_row, skipped=report.skipped)
            chunk: list[Any] = []
            for item in items:
                chunk.append(item)
                if len(chunk) == STREAM_CHUNK:
                    yield from _rows(self.tokenize(chunk, DataReport()))
                    chunk = []
            if chunk:
                yield from _rows(self.tokenize(chunk, DataReport()))

        return IterableDataset.from_generator(generate)


def _token_dataset(columns: dict[str, list[Any]], fingerprint: str | None) -> Dataset:
    """Token-id columns (`*_ids`, `labels`) as Arrow lists of int32 built in one typed pass: datasets'
    own conversion first infers the type (a third slower), and int32 halves the cache on disk.
    `fingerprint`: derived from the content-addressed cache key, which spares `datasets` hashing the
    table again (None: it does)."""
    token_lists = pa.list_(pa.int32())
    table = pa.table({name: pa.array(values, type=token_lists if name.endswith("_ids") or name == "labels" else None)
                      for name, values in columns.items()})
    return Dataset(table, fingerprint=fingerprint)


def _fingerprint(cache_key: str | None, *parts: str) -> str | None:
    """A `datasets` fingerprint for what `cache_key` and `parts` (dataset name, packing, ...) determine."""
    if cache_key is None:
        return None
    return hashlib.sha256("\0".join((cache_key, *parts)).encode()).hexdigest()[:32]


def _rows(columns: dict[str, list[list[int]]]) -> Iterator[dict[str, list[int]]]:
    keys = list(columns)
    for values in zip(*(columns[key] for key in keys), strict=True):
        yield dict(zip(keys, values, strict=True))


def _mix(parts: list[Any], cfg: LmforgeConfig) -> Any:
    if len(parts) == 1:
        return parts[0]
    if cfg.data.mix_strategy == "concat":
        return concatenate_datasets(parts)
    strategy = "first_exhausted" if cfg.data.mix_strategy == "interleave_under" else "all_exhausted"
    return interleave_datasets(parts, probabilities=cfg.data.interleave_probs, seed=cfg.training.seed or 42,
                               stopping_strategy=strategy)


def _pack(dataset: Dataset, cfg: LmforgeConfig, fingerprint: str | None) -> tuple[Dataset, Any]:
    columns = {"input_ids": dataset["input_ids"], "labels": dataset["labels"]}
    packed, packing = pack_examples(columns, cfg.data.cutoff_len, cfg.data.packing_strategy)
    return _token_dataset(packed, fingerprint), packing


def _cache_options(cfg: LmforgeConfig) -> dict[str, Any]:
    ignored = {"preprocessing_num_workers", "overwrite_cache", "tokenized_path", "dataset_dir"}
    options = cfg.data.model_dump(mode="json", exclude=ignored)
    return {**options, "stage": cfg.finetuning.stage, "seed": cfg.training.seed}


def build_datasets(cfg: LmforgeConfig, tokenizer: PreTrainedTokenizerBase, template: Template,
                   processor: Any = None, *, encoder_decoder: bool = False) -> PreparedData:
    """`encoder_decoder`: (encoder input, decoder target) pairs for seq2seq models instead of causal rows.
    `processor`: a multimodal model's processor; its rows are then encoded (and packed) by
    `lmforge.data.multimodal.collator.multimodal_collator`."""
    data = cfg.data
    if encoder_decoder and (data.train_on_prompt or data.mask_history or data.packing_enabled(cfg.finetuning.stage)):
        raise DataError("`train_on_prompt`, `mask_history` and `packing` do not apply to encoder-decoder models: "
                        "the encoder reads the prompt and history, the decoder learns the last answer; remove them")
    if not data.dataset:
        raise DataError("no training data: set `dataset` (names in dataset_info.json or file paths)")
    if data.preprocessing_num_workers:  # read by the tokenizers library when its thread pool starts
        os.environ.setdefault("RAYON_NUM_THREADS", str(data.preprocessing_num_workers))
    if data.tokenized_path and (hit := load_prepared(Path(data.tokenized_path))) is not None:
        report = DataReport.from_dict(hit[2])
        report.from_cache = data.tokenized_path
        return PreparedData(hit[0], hit[1], report)
    train_specs = [resolve_dataset(name, data.dataset_dir) for name in data.dataset]
    eval_specs = [resolve_dataset(name, data.dataset_dir) for name in data.eval_dataset or []]
    builder = _Builder(cfg, tokenizer, template, encoder_decoder, processor)
    if data.streaming:
        return _build_streaming(cfg, builder, train_specs, eval_specs)

    options = {**_cache_options(cfg), "encoder_decoder": encoder_decoder, "multimodal": builder.multimodal}
    key = cache_key(train_specs + eval_specs, tokenizer, template, options)
    folder = cache_dir(key)
    if not data.overwrite_cache and (hit := load_prepared(folder)) is not None:
        report = DataReport.from_dict(hit[2])
        report.from_cache = str(folder)
        return PreparedData(hit[0], hit[1], report)

    report = DataReport(stage=cfg.finetuning.stage)
    builder.cache_key = key
    train = _mix([builder.load(spec, report) for spec in train_specs], cfg)
    if len(train) == 0:
        raise DataError("no training example has a supervised token left after truncation: raise cutoff_len")
    if builder.packing and cfg.finetuning.stage not in ("pt", "sft"):
        raise DataError(f"`packing` applies to pt and sft, not `stage: {cfg.finetuning.stage}`")
    evaluation = None
    if eval_specs:
        evaluation = _mix([builder.load(spec, DataReport()) for spec in eval_specs], cfg)
    elif data.val_size:
        size = data.val_size if data.val_size < 1 else int(data.val_size)
        if isinstance(size, int) and size >= len(train):
            raise DataError(f"`val_size: {size}` leaves no training rows (only {len(train)} examples)")
        split = train.train_test_split(test_size=size, seed=cfg.training.seed or 42)
        train, evaluation = split["train"], split["test"]
    report.examples = len(train)
    report.eval_examples = len(evaluation) if evaluation is not None else 0
    if builder.packing and cfg.finetuning.stage != "pt" and not builder.multimodal:  # pt packs while tokenizing
        train, packing = _pack(train, cfg, _fingerprint(key, "packed train"))
        report.packed_rows, report.packing_efficiency = packing.rows, round(packing.efficiency, 4)
        if evaluation is not None:
            evaluation, _ = _pack(evaluation, cfg, _fingerprint(key, "packed eval"))
    save_prepared(folder, train, evaluation, report.to_dict())
    if data.tokenized_path:
        save_prepared(Path(data.tokenized_path), train, evaluation, report.to_dict())
    return PreparedData(train, evaluation, report)


def _build_streaming(cfg: LmforgeConfig, builder: _Builder, train_specs: list[DatasetSpec],
                     eval_specs: list[DatasetSpec]) -> PreparedData:
    report = DataReport(stage=cfg.finetuning.stage)
    train = _mix([builder.stream(spec, report) for spec in train_specs], cfg)
    evaluation = None
    if eval_specs:
        evaluation = _mix([builder.load(spec, DataReport()) for spec in eval_specs], cfg)
    elif cfg.data.val_size:
        count = int(cfg.data.val_size)
        evaluation = Dataset.from_list(list(train.take(count)))
        train = train.skip(count)
    report.eval_examples = len(evaluation) if evaluation is not None else 0
    return PreparedData(train, evaluation, report)


