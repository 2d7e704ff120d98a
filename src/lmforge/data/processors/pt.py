"""Continued pretraining: documents -> token blocks.

With packing (the default for `stage: pt`), documents are tokenized (with the tokenizer's own BOS
convention), each followed by EOS, concatenated and cut into blocks of exactly `cutoff_len` tokens;
the last partial block is dropped and counted. Without packing, each document is its own example,
truncated to `cutoff_len`. Every token is supervised.
"""

from dataclasses import dataclass, field

from transformers import PreTrainedTokenizerBase

from lmforge.data.templates.encoding import batch_token_ids


@dataclass
class PtStats:
    documents: int = 0
    rows: int = 0
    tokens: int = 0
    truncated: int = 0  # documents cut at cutoff_len (no packing)
    dropped_tail_tokens: int = 0  # the incomplete last block (packing)
    lengths: list[int] = field(default_factory=list)  # tokens per document with its EOS


def tokenize_pt(
    documents: list[str], tokenizer: PreTrainedTokenizerBase, *, cutoff_len: int, packing: bool
) -> tuple[dict[str, list[list[int]]], PtStats]:
    ids = batch_token_ids(tokenizer, documents, add_special_tokens=True)
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    stats = PtStats(documents=len(documents), lengths=[len(doc) + len(eos) for doc in ids])
    blocks: list[list[int]] = []
    if packing:
        stream = [token for doc in ids for token in (*doc, *eos)]
        usable = len(stream) // cutoff_len * cutoff_len
        stats.dropped_tail_tokens = len(stream) - usable
        blocks = [stream[start:start + cutoff_len] for start in range(0, usable, cutoff_len)]
    else:
        for doc in ids:
            row = (doc + eos)[:cutoff_len]
            stats.truncated += len(doc) + len(eos) > cutoff_len
            blocks.append(row)
    stats.rows = len(blocks)
    stats.tokens = sum(map(len, blocks))
    return {"input_ids": blocks, "labels": [list(block) for block in blocks]}, stats
