"""What a training stage asks of the data pipeline: the rows it reads, how they become token columns,
whether they keep their media, whether they pack.

A stage (`lmforge.train.stages`) holds one `StageData` and the runner hands it to `build_datasets`;
the data layer never looks a stage up by name. A stage reuses one of the records below or builds its own
from a `RowKind` and a tokenize function, in its own module.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import PreTrainedTokenizerBase

from lmforge.config.data import DataGroup
from lmforge.data.formats import convert_labeled, converter
from lmforge.data.loading import document_converter
from lmforge.data.multimodal.rows import (
    mm_conversation_converter,
    mm_document_converter,
    mm_labeled_converter,
    mm_preference_converter,
)
from lmforge.data.preference_rows import convert_preference
from lmforge.data.processors.preference import tokenize_kto, tokenize_pairwise
from lmforge.data.processors.pt import tokenize_pt
from lmforge.data.processors.seq2seq import tokenize_seq2seq
from lmforge.data.processors.sft import tokenize_sft
from lmforge.data.registry import DatasetSpec
from lmforge.data.report import DataReport
from lmforge.data.templates.template import Template

Converter = Callable[[dict[str, Any], str], Any]


@dataclass(frozen=True)
class RowKind:
    """The rows a stage reads. `text`/`media` build a dataset's row converter (without/with its media
    columns; `media` None: no media rows of this kind); `text_of` is a media row's text part, in the form
    `text` converts to (what the report counts)."""

    name: str
    ranking: bool  # chosen/rejected rows (`ranking: true` registrations); other kinds refuse them
    text: Callable[[DatasetSpec, Path], Converter]
    media: Callable[[DatasetSpec, Path], Converter] | None = None
    text_of: Callable[[Any], Any] = lambda item: item


DOCUMENTS = RowKind("documents", False, lambda spec, _: document_converter(spec), mm_document_converter,
                    text_of=lambda document: document.text)
CONVERSATIONS = RowKind("conversations", False, converter, mm_conversation_converter)
PAIRS = RowKind("pairs", True, lambda spec, _: lambda row, where: convert_preference(row, spec, where),
                mm_preference_converter, text_of=lambda pair: pair.preference)
LABELED = RowKind("labeled", False, lambda spec, _: lambda row, where: convert_labeled(row, spec, where),
                  mm_labeled_converter)


@dataclass(frozen=True)
class TokenizeContext:
    """What a tokenize function may use besides the rows."""

    tokenizer: PreTrainedTokenizerBase
    template: Template
    data: DataGroup
    end_ids: frozenset[int]  # end-of-turn ids every supervised answer should end with
    packing: bool = False
    encoder_decoder: bool = False  # (encoder input, decoder target) pairs for seq2seq models


# rows -> token columns; adds its counts to the report
Tokenize = Callable[[list[Any], TokenizeContext, DataReport], dict[str, list[Any]]]


def documents_to_blocks(items: list[str], ctx: TokenizeContext, report: DataReport) -> dict[str, list[Any]]:
    columns, pt = tokenize_pt(items, ctx.tokenizer, cutoff_len=ctx.data.cutoff_len, packing=ctx.packing)
    report.truncated += pt.truncated
    report.count_lengths(pt.lengths)
    report.dropped_tail_tokens += pt.dropped_tail_tokens
    report.tokens += pt.tokens
    report.supervised_tokens += pt.tokens
    return columns


def conversations_to_examples(items: list[Any], ctx: TokenizeContext, report: DataReport) -> dict[str, list[Any]]:
    data = ctx.data
    if ctx.encoder_decoder:  # the encoder reads the conversation, the decoder learns the last answer
        columns, stats = tokenize_seq2seq(items, ctx.template, ctx.tokenizer, cutoff_len=data.cutoff_len)
    else:
        columns, stats = tokenize_sft(items, ctx.template, ctx.tokenizer, cutoff_len=data.cutoff_len,
                                      train_on_prompt=data.train_on_prompt, mask_history=data.mask_history,
                                      end_ids=ctx.end_ids, enable_thinking=data.enable_thinking)
    report.truncated += stats.truncated
    report.count_lengths(stats.lengths)  # none for seq2seq: its pairs have two lengths
    report.dropped_empty += stats.dropped_empty
    report.tokens += stats.tokens
    report.supervised_tokens += stats.supervised_tokens
    report.answers += stats.answers
    report.answers_without_end += stats.answers_without_end
    report.split_conversations += stats.split_conversations
    return columns


def _preference_columns(tokenize: Callable[..., Any]) -> Tokenize:
    def columns_of(items: list[Any], ctx: TokenizeContext, report: DataReport) -> dict[str, list[Any]]:
        columns, pref = tokenize(items, ctx.template, ctx.tokenizer, cutoff_len=ctx.data.cutoff_len)
        report.truncated += pref.truncated
        report.count_lengths(pref.lengths)
        report.tokens += pref.tokens
        report.supervised_tokens += pref.answer_tokens
        return columns

    return columns_of


pairs_to_ids = _preference_columns(tokenize_pairwise)
labeled_to_ids = _preference_columns(tokenize_kto)


@dataclass(frozen=True)
class StageData:
    """The data part of a training stage."""

    rows: RowKind
    tokenize: Tokenize
    media: bool = False  # rows keep their media (a multimodal model's rows, encoded per batch by its collator)
    media_in_columns: bool = False  # with `media`: `tokenize` takes the media rows itself and writes their
    # paths in a column (online RL prompts, which the trainer renders), instead of the collator's encoding
    may_pack: bool = False
    packs_by_default: bool = False
    packs_while_tokenizing: bool = False  # `tokenize` cuts a token stream into full rows (pt) instead of
    # whole examples being bin-packed afterwards

    def __post_init__(self) -> None:
        if self.media and self.rows.media is None:
            raise ValueError(f"{self.rows.name} rows have no media converter: a stage on them takes no media")

    def packing(self, data: DataGroup) -> bool:
        """Whether this run packs: the `packing` key, else the stage's default."""
        return data.packing_enabled(by_default=self.packs_by_default)

    def problems(self, data: DataGroup, stage: str) -> list[str]:
        """Data keys this stage cannot honour (checked before anything loads, and again by `build_datasets`)."""
        packing = self.packing(data)
        if packing and not self.may_pack:
            return [f"`packing` does not apply to `stage: {stage}` (its rows are not single token sequences): "
                    "remove `packing`/`neat_packing`"]
        if data.padding_free and not self.may_pack:
            return [f"`padding_free` applies to pt and sft batches, not to `stage: {stage}` (its rows are not single "
                    "token sequences): remove `padding_free`"]
        if data.streaming and packing and not self.packs_while_tokenizing:
            return [f"`streaming` with `stage: {stage}` `packing` is not supported: bin packing needs the whole "
                    "dataset"]
        return []


PT = StageData(DOCUMENTS, documents_to_blocks, media=True, may_pack=True, packs_by_default=True,
               packs_while_tokenizing=True)
SFT = StageData(CONVERSATIONS, conversations_to_examples, media=True, may_pack=True)
RM = StageData(PAIRS, pairs_to_ids, media=True)
DPO = StageData(PAIRS, pairs_to_ids, media=True)
KTO = StageData(LABELED, labeled_to_ids, media=True)
