"""Configured datasets -> tokenized train/eval datasets plus a report of what is trained.

One straight line: decide whether rows keep their media (once, here) -> resolve the registrations ->
reuse the content-addressed cache when it has this exact input -> read and check rows -> tokenize
as the stage says (batched) -> mix -> split -> pack -> save to the cache. Streaming builds the same
examples lazily instead. What a stage needs of its data is its `StageData` (`data/stage_data.py`).
"""

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pyarrow as pa
from datasets import Dataset, IterableDataset, concatenate_datasets, interleave_datasets
from transformers import PreTrainedTokenizerBase

from lmforge.config.data import DataGroup
from lmforge.data.cache import cache_dir, cache_key, load_prepared, save_prepared, wait_for_prepared
from lmforge.data.loading import iter_items, load_items
from lmforge.data.multimodal.collator import MultimodalCollator, multimodal_collator
from lmforge.data.multimodal.plugin import mm_plugin_for
from lmforge.data.multimodal.rows import mm_columns
from lmforge.data.packing import pack_table
from lmforge.data.registry import DatasetSpec, resolve_datasets
from lmforge.data.report import DataReport
from lmforge.data.stage_data import StageData, TokenizeContext
from lmforge.data.templates.encoding import stop_token_ids
from lmforge.data.templates.template import Template
from lmforge.errors import ConfigError, DataError


@dataclass
class PreparedData:
    train: Dataset | IterableDataset
    evaluation: Dataset | None
    report: DataReport
    collator: MultimodalCollator | None = None  # a multimodal run's: encodes (and packs) its rows per batch

    def eval_parts(self) -> dict[str, Dataset]:
        """Each eval dataset's rows on their own (`eval_on_each_dataset`); {} when the eval set is one whole."""
        parts, start = {}, 0
        for name, rows in self.report.eval_rows_per_dataset.items():
            parts[name] = self.evaluation.select(range(start, start + rows))  # type: ignore[union-attr]
            start += rows
        return parts


def text_only_reason(stage_name: str, stage: StageData, processor: Any) -> str | None:
    """Why a run with a multimodal processor keeps no media (None: it keeps them, or there is no processor).
    Rows that keep their media are encoded per batch, in the multimodal collator."""
    if processor is None:
        return None
    if mm_plugin_for(processor) is None:
        return f"lmforge has no multimodal plugin for {type(processor).__name__}"
    return None if stage.media else f"`stage: {stage_name}` takes no media"


class _Builder:
    """Tokenizes one dataset's rows for the stage, adding to the shared report."""

    def __init__(self, data: DataGroup, stage_name: str, stage: StageData, context: TokenizeContext,
                 collator: MultimodalCollator | None, seed: int) -> None:
        self.data, self.stage_name, self.stage, self.context = data, stage_name, stage, context
        self.seed = seed  # draws `num_samples` rows
        self.collator = collator
        self.multimodal = collator is not None
        self.media_dir = Path(data.media_dir or data.dataset_dir)
        self.cache_key: str | None = None  # names the datasets built (their `datasets` fingerprint)

    def row_converter(self, spec: DatasetSpec) -> Any:
        rows = self.stage.rows
        if spec.formatting == "auto":  # a file given directly: its rows are read as the stage reads them
            spec = spec.model_copy(update={"ranking": rows.ranking})
        if spec.ranking != rows.ranking:
            need = ("a ranking dataset (`ranking: true`, chosen/rejected answers)" if rows.ranking
                    else "non-ranking rows")
            raise DataError(f"dataset `{spec.name}`: `stage: {self.stage_name}` needs {need}")
        if self.multimodal:
            return rows.media(spec, self.media_dir)
        return rows.text(spec, self.media_dir)

    def tokenize(self, items: list[Any], report: DataReport) -> dict[str, list[Any]]:
        if self.multimodal and self.stage.media_in_columns:
            report.multimodal = True
            return self.stage.tokenize(items, self.context, report)
        if self.multimodal:
            self._count_text(items, report)
            return mm_columns(items)
        with_media = next((item for item in items if getattr(item, "media", None)), None)
        if with_media is not None:
            raise DataError(f"{with_media.source}: has {', '.join(with_media.media)}, but the model is text-only "
                            "(no multimodal processor with an lmforge plugin) or `stage: "
                            f"{self.stage_name}` does not take media: train a vision/audio-language model "
                            "(docs/multimodal.md), or remove the media columns from the dataset registration")
        return self.stage.tokenize(items, self.context, report)

    def _count_text(self, items: list[Any], report: DataReport) -> None:
        """Multimodal rows are encoded per batch (their media decoded there); the report counts their text
        tokens, placeholders as written, and their media items."""
        report.multimodal = True
        for item in items:
            for kind, paths in item.media.items():
                report.media_items[kind] = report.media_items.get(kind, 0) + len(paths)
            if item.media and self.collator is not None:  # processed once here; the batches read the cache
                report.count_media_tokens(item.source, self.collator.encoder.media_tokens(item),
                                          self.data.cutoff_len)
        counted = DataReport()
        unpacked = replace(self.context, packing=False)
        self.stage.tokenize([self.stage.rows.text_of(item) for item in items], unpacked, counted)
        report.tokens += counted.tokens
        report.supervised_tokens += counted.supervised_tokens

    def load(self, spec: DatasetSpec, report: DataReport) -> Dataset:
        loaded = load_items(spec, self.row_converter(spec), max_samples=self.data.max_samples,
                            on_bad_row=self.data.on_bad_row, seed=self.seed)
        report.rows_per_dataset[spec.name] = len(loaded.items)
        report.skipped += loaded.skipped
        columns = self.tokenize(loaded.items, report)
        if self.multimodal:
            return Dataset.from_dict(columns)
        return _token_dataset(columns, _fingerprint(self.cache_key, spec.name))

    def stream(self, spec: DatasetSpec, report: DataReport) -> IterableDataset:
        def generate() -> Iterator[dict[str, list[int]]]:
            items = iter_items(spec, self.row_converter(spec), max_samples=self.data.max_samples,
                               on_bad_row=self.data.on_bad_row, skipped=report.skipped)
            chunk: list[Any] = []
            for item in items:
                chunk.append(item)
                if len(chunk) == self.data.preprocessing_batch_size:
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


def _mix(parts: list[Any], data: DataGroup, seed: int) -> Any:
    if len(parts) == 1:
        return parts[0]
    if data.mix_strategy == "concat":
        return concatenate_datasets(parts)
    strategy = {"interleave_under": "first_exhausted", "interleave_over": "all_exhausted",
                "interleave_once": "all_exhausted_without_replacement"}[data.mix_strategy]
    return interleave_datasets(parts, probabilities=data.interleave_probs, seed=seed, stopping_strategy=strategy)


def _pack(dataset: Dataset, data: DataGroup, fingerprint: str | None) -> tuple[Dataset, Any]:
    table = dataset.select_columns(["input_ids", "labels"]).with_format("arrow")[:]
    packed, packing = pack_table(table, data.cutoff_len, data.packing_strategy)
    return Dataset(packed, fingerprint=fingerprint), packing


def _cache_options(data: DataGroup, stage_name: str, seed: int | None) -> dict[str, Any]:
    ignored = {"preprocessing_num_workers", "overwrite_cache", "tokenized_path", "dataset_dir", "buffer_size",
               "preprocessing_batch_size", "data_shared_file_system"}  # neither changes a loaded (cached) dataset
    options = data.model_dump(mode="json", exclude=ignored)
    return {**options, "stage": stage_name, "seed": seed}


def _from_cache(hit: tuple[Dataset, Dataset | None, dict[str, Any]], where: str,
                collator: MultimodalCollator | None) -> PreparedData:
    report = DataReport.from_dict(hit[2])
    report.from_cache = where
    return PreparedData(hit[0], hit[1], report, collator)


def build_datasets(data: DataGroup, tokenizer: PreTrainedTokenizerBase, template: Template,
                   processor: Any = None, *, stage: StageData, stage_name: str, seed: int | None,
                   encoder_decoder: bool = False, model_config: Any = None, wait_s: float = 0) -> PreparedData:
    """The run's data (`data`: the config's data group), prepared for `stage` (`Stage.data` of the stage
    named `stage_name`); `seed` shuffles, mixes and splits it (the run's `seed`).

    `encoder_decoder`: (encoder input, decoder target) pairs for seq2seq models instead of causal rows.
    `processor`: a multimodal model's processor; when lmforge has a plugin for it and the stage takes media,
    rows keep their media and `PreparedData.collator` encodes (and packs) them per batch. `model_config`:
    the model's config, which some 3-D position ids need (Qwen2.5-VL videos). `wait_s`: another process of the
    run prepares this data; wait up to this long for it in the cache before preparing it here (not with
    `overwrite_cache`, where every process prepares its own)."""
    packing = stage.packing(data)
    if encoder_decoder and (data.train_on_prompt or data.mask_history or packing):
        raise DataError("`train_on_prompt`, `mask_history` and `packing` do not apply to encoder-decoder models: "
                        "the encoder reads the prompt and history, the decoder learns the last answer; remove them")
    if problems := stage.problems(data, stage_name):
        raise DataError("; ".join(problems))
    if not data.dataset:
        raise DataError("no training data: set `dataset` (names in dataset_info.json or file paths)")
    text_only = text_only_reason(stage_name, stage, processor)
    multimodal = processor is not None and text_only is None
    # built before the data is read, so a template of another family or a refused `packing` fails first
    collator = multimodal_collator(data, processor, template, model_config, packing=packing) if multimodal else None
    if data.use_audio_in_video and collator is None:
        raise ConfigError("`use_audio_in_video: true` needs a model that interleaves a video's sound with its frames "
                          "(Qwen2.5-Omni, Qwen3-Omni) and a stage that keeps media; this run's rows are text only ("
                          f"{text_only or 'the model has no processor'}): set `use_audio_in_video: false`")
    if data.preprocessing_num_workers:  # read by the tokenizers library when its thread pool starts
        os.environ.setdefault("RAYON_NUM_THREADS", str(data.preprocessing_num_workers))
    if data.tokenized_path and (hit := load_prepared(Path(data.tokenized_path))) is not None:
        return _from_cache(hit, data.tokenized_path, collator)
    train_specs = resolve_datasets(data.dataset, data.dataset_dir)
    eval_specs = resolve_datasets(data.eval_dataset or [], data.dataset_dir)
    context = TokenizeContext(tokenizer, template, data, frozenset(stop_token_ids(template, tokenizer)),
                              packing=packing, encoder_decoder=encoder_decoder)
    shuffle_seed = seed or 42
    builder = _Builder(data, stage_name, stage, context, collator, shuffle_seed)
    if data.streaming:
        return _build_streaming(builder, train_specs, eval_specs, shuffle_seed, text_only, collator)

    options = {**_cache_options(data, stage_name, seed), "encoder_decoder": encoder_decoder,
               "multimodal": multimodal}
    key = cache_key(train_specs + eval_specs, tokenizer, template, options)
    folder = cache_dir(key)
    if not data.overwrite_cache and (hit := wait_for_prepared(folder, wait_s)) is not None:
        prepared = _from_cache(hit, str(folder), collator)
        prepared.report.text_only = text_only
        return prepared

    report = DataReport(stage=stage_name, text_only=text_only)
    builder.cache_key = key
    train = _mix([builder.load(spec, report) for spec in train_specs], data, shuffle_seed)
    if len(train) == 0:
        raise DataError("no training example has a supervised token left after truncation: raise cutoff_len")
    evaluation = None
    if eval_specs and data.eval_on_each_dataset:  # in order, each packed on its own: one range per dataset
        parts = [builder.load(spec, DataReport()) for spec in eval_specs]
        if packing and not stage.packs_while_tokenizing and not multimodal:
            parts = [_pack(part, data, _fingerprint(key, "packed eval", spec.name))[0]
                     for part, spec in zip(parts, eval_specs, strict=True)]
        report.eval_rows_per_dataset = {spec.name: len(part) for spec, part in zip(eval_specs, parts, strict=True)}
        evaluation = concatenate_datasets(parts)
    elif eval_specs:
        evaluation = _mix([builder.load(spec, DataReport()) for spec in eval_specs], data, shuffle_seed)
    elif data.val_size:
        size = data.val_size if data.val_size < 1 else int(data.val_size)
        if isinstance(size, int) and size >= len(train):
            raise DataError(f"`val_size: {size}` leaves no training rows (only {len(train)} examples)")
        split = train.train_test_split(test_size=size, seed=shuffle_seed)
        train, evaluation = split["train"], split["test"]
    report.examples = len(train)
    report.eval_examples = len(evaluation) if evaluation is not None else 0
    if packing and not stage.packs_while_tokenizing and not multimodal:  # multimodal rows pack per batch
        train, packed = _pack(train, data, _fingerprint(key, "packed train"))
        report.packed_rows, report.packing_efficiency = packed.rows, round(packed.efficiency, 4)
        if evaluation is not None and not report.eval_rows_per_dataset:
            evaluation, _ = _pack(evaluation, data, _fingerprint(key, "packed eval"))
    save_prepared(folder, train, evaluation, report.to_dict())
    if data.tokenized_path:
        save_prepared(Path(data.tokenized_path), train, evaluation, report.to_dict())
    return PreparedData(train, evaluation, report, collator)


def _build_streaming(builder: _Builder, train_specs: list[DatasetSpec], eval_specs: list[DatasetSpec], seed: int,
                     text_only: str | None, collator: MultimodalCollator | None) -> PreparedData:
    data = builder.data
    report = DataReport(stage=builder.stage_name, text_only=text_only)
    if weighted := [spec.name for spec in train_specs if spec.weight]:
        raise DataError(f"dataset(s) {', '.join(weighted)}: a `weight` needs every row counted first, which "
                        "streaming does not do: give `size` (rows to read) instead, or set `streaming: false`")
    train = _mix([builder.stream(spec, report) for spec in train_specs], data, seed)
    evaluation = None
    if eval_specs:
        evaluation = _mix([builder.load(spec, DataReport()) for spec in eval_specs], data, seed)
    elif data.val_size:
        count = int(data.val_size)
        evaluation = Dataset.from_list(list(train.take(count)))
        train = train.skip(count)
    # training rows come from a buffer (`buffer_size`) in random order, as a loaded dataset's sampler shuffles
    train = train.shuffle(seed=seed, buffer_size=data.buffer_size)
    report.eval_examples = len(evaluation) if evaluation is not None else 0
    return PreparedData(train, evaluation, report, collator)
