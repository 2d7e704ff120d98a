"""Configured datasets -> tokenized train/eval `datasets.Dataset`s plus a report of what is trained."""

from dataclasses import dataclass, field

from datasets import Dataset
from transformers import PreTrainedTokenizerBase

from lmforge.config import LmforgeConfig
from lmforge.data.loading import LoadedDataset, load_conversations
from lmforge.data.processors.seq2seq import tokenize_seq2seq
from lmforge.data.processors.sft import SftStats, tokenize_sft
from lmforge.data.registry import resolve_dataset
from lmforge.data.templates.template import Template
from lmforge.errors import DataError


@dataclass
class DataReport:
    rows_per_dataset: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    stats: SftStats = field(default_factory=SftStats)
    eval_rows: int = 0

    @property
    def supervised_share(self) -> float:
        return self.stats.supervised_tokens / max(self.stats.tokens, 1)

    def lines(self) -> list[str]:
        rows = ", ".join(f"{name}: {count}" for name, count in self.rows_per_dataset.items())
        out = [
            f"rows per dataset: {rows}",
            f"training examples: {self.stats.rows} (eval: {self.eval_rows}), "
            f"truncated to cutoff_len: {self.stats.truncated}",
            f"tokens: {self.stats.tokens:,}, supervised: {self.stats.supervised_tokens:,} "
            f"({self.supervised_share:.1%})",
        ]
        if self.skipped:
            out.append(f"skipped {len(self.skipped)} bad rows (on_bad_row: skip), first: "
                       + " | ".join(self.skipped[:3]))
        if self.stats.dropped_empty:
            out.append(f"dropped {len(self.stats.dropped_empty)} examples left with no supervised token "
                       "after truncation (raise cutoff_len), first: " + ", ".join(self.stats.dropped_empty[:3]))
        return out


def _load_all(names: list[str], cfg: LmforgeConfig) -> list[LoadedDataset]:
    return [
        load_conversations(resolve_dataset(name, cfg.data.dataset_dir),
                           max_samples=cfg.data.max_samples, on_bad_row=cfg.data.on_bad_row)
        for name in names
    ]


def check_datasets(cfg: LmforgeConfig) -> None:
    """Resolve every configured dataset (registry entry and file) without reading rows."""
    for name in (cfg.data.dataset or []) + (cfg.data.eval_dataset or []):
        resolve_dataset(name, cfg.data.dataset_dir)


def build_sft_datasets(
    cfg: LmforgeConfig, tokenizer: PreTrainedTokenizerBase, template: Template, *, encoder_decoder: bool = False
) -> tuple[Dataset, Dataset | None, DataReport]:
    """Tokenized SFT data; `encoder_decoder` gives (encoder input, decoder target) pairs instead."""
    if not cfg.data.dataset:
        raise DataError("no training data: set `dataset` (names in dataset_info.json or file paths)")
    if encoder_decoder and (cfg.data.train_on_prompt or cfg.data.mask_history):
        raise DataError("`train_on_prompt` and `mask_history` do not apply to encoder-decoder models: the encoder "
                        "reads the prompt and history, the decoder learns the last answer only; remove the keys")
    report = DataReport()

    def tokenize(loaded: list[LoadedDataset]) -> tuple[Dataset, SftStats]:
        conversations = [c for item in loaded for c in item.conversations]
        if encoder_decoder:
            columns, stats = tokenize_seq2seq(conversations, template, tokenizer, cutoff_len=cfg.data.cutoff_len)
            return Dataset.from_dict(columns), stats
        columns, stats = tokenize_sft(
            conversations, template, tokenizer, cutoff_len=cfg.data.cutoff_len,
            train_on_prompt=cfg.data.train_on_prompt, mask_history=cfg.data.mask_history)
        return Dataset.from_dict(columns), stats

    train_loaded = _load_all(cfg.data.dataset, cfg)
    for item in train_loaded:
        report.rows_per_dataset[item.name] = len(item.conversations)
        report.skipped += item.skipped
    train, report.stats = tokenize(train_loaded)
    if len(train) == 0:
        raise DataError("no training example has a supervised token left after truncation: raise cutoff_len")
    evaluation = None
    if cfg.data.eval_dataset:
        evaluation, _ = tokenize(_load_all(cfg.data.eval_dataset, cfg))
    elif cfg.data.val_size:
        size = cfg.data.val_size if cfg.data.val_size < 1 else int(cfg.data.val_size)
        if isinstance(size, int) and size >= len(train):
            raise DataError(f"`val_size: {size}` leaves no training rows (only {len(train)} examples)")
        split = train.train_test_split(test_size=size, seed=cfg.training.seed or 42)
        train, evaluation = split["train"], split["test"]
    report.eval_rows = len(evaluation) if evaluation is not None else 0
    return train, evaluation, report
