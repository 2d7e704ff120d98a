"""Real tokenizers of template families, built from ../shared/refdata/tokenizers for token-id checks.

Llama 3 and Qwen come from their tiktoken rank files (transformers' TikTokenConverter), Llama 2 and
Mistral from their SentencePiece models (needs `sentencepiece`), SmolLM2 from the builtin model.
"""

import shutil
from functools import cache
from pathlib import Path

import pytest

from tests.refdata import refdata

LLAMA3_SPECIAL = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
                  "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>", "<|step_id|>", "<|start_header_id|>",
                  "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>", "<|python_tag|>", "<|image|>"]
QWEN_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
                "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>",
                "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>", "<|fim_prefix|>",
                "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>", "<tool_response>",
                "</tool_response>", "<think>", "</think>"]
QWEN_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
                r"|\s+(?!\S)|\s+")


def _tiktoken(path: Path, special: list[str], bos: str | None, eos: str, pattern: str | None = None):
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    kwargs = {"pattern": pattern} if pattern else {}
    converted = TikTokenConverter(vocab_file=str(path), extra_special_tokens=special, **kwargs).converted()
    return PreTrainedTokenizerFast(tokenizer_object=converted, bos_token=bos, eos_token=eos)


def _sentencepiece(path: Path, folder: Path, bos: str = "<s>", eos: str = "</s>"):
    pytest.importorskip("sentencepiece", reason="SentencePiece tokenizers need the `sentencepiece` package")
    from transformers import AutoTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, folder / "tokenizer.model")
    (folder / "tokenizer_config.json").write_text(
        f'{{"tokenizer_class": "LlamaTokenizer", "bos_token": "{bos}", "eos_token": "{eos}", "unk_token": "<unk>", '
        '"add_bos_token": false, "legacy": false}')
    return AutoTokenizer.from_pretrained(folder)


@cache
def real_tokenizer(name: str, cache_dir: Path):
    tokenizers = refdata("tokenizers")
    if name == "llama3":
        return _tiktoken(tokenizers / "llama3-tiktoken" / "tokenizer.model", LLAMA3_SPECIAL,
                         "<|begin_of_text|>", "<|eot_id|>")
    if name == "qwen":
        return _tiktoken(tokenizers / "qwen-tiktoken" / "qwen.tiktoken", QWEN_SPECIAL, None, "<|im_end|>",
                         QWEN_PATTERN)
    if name == "llama2":
        return _sentencepiece(tokenizers / "llama2-sentencepiece" / "tokenizer.model", cache_dir / name)
    if name.startswith("mistral"):
        file = {"mistral_v1": "tokenizer.model.v1", "mistral_v3": "mistral_instruct_tokenizer_240323.model.v3"}[name]
        return _sentencepiece(tokenizers / "mistral-sentencepiece" / file, cache_dir / name)
    raise KeyError(name)
