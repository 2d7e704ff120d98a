"""Constrained decoding for `response_format` json: every answer token is one the JSON schema allows.

xgrammar (optional extra `lmforge[structured]`) compiles the schema against the tokenizer into a
grammar and, per answer, a matcher that masks the logits of every token that would break it. The
grammar ends with the template's end-of-turn tokens, so an answer stops where its JSON is complete.
Each row of a batched `generate` call has its own matcher (rows without a schema are left alone).
"""

import importlib.util
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import torch
from transformers import LogitsProcessor, PreTrainedTokenizerBase

from lmforge.errors import ConfigError

INSTALL = "pip install 'lmforge[structured]'"


def structured_available() -> bool:
    return importlib.util.find_spec("xgrammar") is not None


class SchemaCompiler:
    """Compiles JSON schemas for one tokenizer (and caches them: a schema is compiled once)."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, vocab_size: int, stop_token_ids: Sequence[int]) -> None:
        if not structured_available():
            raise ConfigError(f"`response_format` json needs xgrammar for constrained decoding: {INSTALL}")
        import xgrammar

        info = xgrammar.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size,
                                                       stop_token_ids=list(stop_token_ids))
        self._compiler = xgrammar.GrammarCompiler(info)
        self.compile = lru_cache(maxsize=64)(self._compile)

    def _compile(self, schema: str) -> Any:
        try:
            # compact JSON: a model may not pad it with endless whitespace
            return self._compiler.compile_json_schema(schema, any_whitespace=False)
        except RuntimeError as err:  # xgrammar's error for a schema it cannot compile
            reason = re.sub(r"^\[[^\]]*\] \S+: ", "", str(err).strip())  # without xgrammar's source location
            raise ConfigError(f"response_format json_schema cannot be used: {reason[:300]}") from None


class GrammarRows(LogitsProcessor):
    """Masks each constrained row's logits to the tokens its grammar allows next.

    `grammars[i]` is row i's compiled grammar or None (unconstrained). A row whose answer ended
    another way (a stop string, its `max_new_tokens`) is fed padding after that: its matcher refuses
    the token and the row is no longer followed.
    """

    def __init__(self, grammars: Sequence[Any | None]) -> None:
        import xgrammar

        self._xgrammar = xgrammar
        self.matchers = [xgrammar.GrammarMatcher(g) if g is not None else None for g in grammars]
        vocab = next(g for g in grammars if g is not None).tokenizer_info.vocab_size
        self.bitmask = xgrammar.allocate_token_bitmask(len(grammars), vocab)
        self.started = False

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.started:  # from the second call on, the last column is the token just chosen
            for row, token in enumerate(input_ids[:, -1].tolist()):
                matcher = self.matchers[row]
                if matcher is not None and (not matcher.accept_token(token) or matcher.is_terminated()):
                    self.matchers[row] = None  # its answer ended (a stop token, or padding after its end)
        self.started = True
        rows = [row for row, matcher in enumerate(self.matchers) if matcher is not None]
        if not rows:
            return scores
        for row in rows:
            self.matchers[row].fill_next_token_bitmask(self.bitmask, row)  # type: ignore[union-attr]
        masked = scores.to("cpu", copy=True) if scores.device.type not in ("cpu", "cuda") else scores.clone()
        self._xgrammar.apply_token_bitmask_inplace(masked, self.bitmask.to(masked.device), indices=rows)
        return masked.to(scores.device)

