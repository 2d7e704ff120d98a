"""`tokenizer.ggml.pre`: the llama.cpp pre-tokenizer name written for each real tokenizer in refdata."""

import json
import re

import pytest
from tokenizers import Regex, pre_tokenizers

from lmforge.errors import ExportError
from lmforge.export.gguf import _tokenizer_kind, pre_tokenizer_name
from tests.refdata import refdata

# The split as a tiktoken vocabulary's converted tokenizer.json carries it (transformers' TikTokenConverter).
TIKTOKEN_SPLIT = re.compile(r"^Pre-tokenizer regex \((?:pat_str|legacy)\): (.+?)(?:  \(.*)?$", re.M)


def tokenizer_json_file(*parts: str) -> dict:
    return json.loads(refdata("tokenizers", *parts).read_text())


def tiktoken_pre_tokenizer(pattern: str) -> dict:
    chain = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(pattern), behavior="isolated"),
                                     pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    return {"pre_tokenizer": json.loads(chain.__getstate__())}


def documented_pattern(folder: str) -> str:
    source = refdata("tokenizers", folder, "SOURCE.txt").read_text()
    return TIKTOKEN_SPLIT.search(source).group(1)


@pytest.mark.parametrize("parts, name", [
    (("gpt2", "tokenizer.json"), "gpt-2"),
    (("olmo-test-fixture", "tokenizer.json"), "gpt-2"),
    (("olmo-tokenizers", "allenai_gpt-neox-olmo-dolma-v1_5.json"), "gpt-2"),
    (("olmo-tokenizers", "allenai_eleuther-ai-gpt-neox-20b-pii-special.json"), "gpt-2"),
    (("olmo-tokenizers", "allenai_dolma2.json"), "llama-bpe"),  # cl100k's split, which is Llama 3's
])
def test_tokenizer_json_files_get_llamacpps_name(parts, name):
    tokenizer_json = tokenizer_json_file(*parts)
    assert _tokenizer_kind(tokenizer_json) == "gpt2"
    assert pre_tokenizer_name(tokenizer_json) == name


@pytest.mark.parametrize("folder, name", [("llama3-tiktoken", "llama-bpe"), ("qwen-tiktoken", "qwen2")])
def test_tiktoken_vocabularies_get_llamacpps_name(folder, name):
    assert pre_tokenizer_name(tiktoken_pre_tokenizer(documented_pattern(folder))) == name


def test_gpt2_split_written_out_is_gpt2():
    from lmforge.export.gguf import GPT2_SPLIT

    assert pre_tokenizer_name(tiktoken_pre_tokenizer(GPT2_SPLIT)) == "gpt-2"


def test_smollm2_splits_digits_apart_and_is_smollm_not_gpt2():
    # SmolLM2's tokenizer.json (refdata SOURCE.txt): Digits(individual_digits) then GPT-2's ByteLevel split.
    chain = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                     pre_tokenizers.ByteLevel(add_prefix_space=False)])
    assert pre_tokenizer_name({"pre_tokenizer": json.loads(chain.__getstate__())}) == "smollm"
    plain = pre_tokenizers.ByteLevel(add_prefix_space=False)
    assert pre_tokenizer_name({"pre_tokenizer": json.loads(plain.__getstate__())}) == "gpt-2"


@pytest.mark.parametrize("parts", [("llama2-sentencepiece", "tokenizer.model"),
                                   ("mistral-sentencepiece", "tokenizer.model.v1")])
def test_sentencepiece_vocabularies_go_in_as_llamas_model_without_a_pre_name(parts):
    from transformers import LlamaTokenizer

    tokenizer = LlamaTokenizer(vocab_file=str(refdata("tokenizers", *parts)))
    assert _tokenizer_kind(json.loads(tokenizer.backend_tokenizer.to_str())) == "llama"


BYTES_ONLY = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)


@pytest.mark.parametrize("pre_tokenizer, match", [
    (pre_tokenizers.ByteLevel(add_prefix_space=True), "adds a space before the text"),
    (pre_tokenizers.Sequence([pre_tokenizers.Whitespace(), BYTES_ONLY]), "no llama.cpp equivalent"),
    (pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(r"\p{L}+|\p{N}{1,5}"), behavior="isolated"), BYTES_ONLY]),
     "matches no llama.cpp pre-tokenizer"),
])
def test_splits_llamacpp_cannot_reproduce_are_refused(pre_tokenizer, match):
    with pytest.raises(ExportError, match=match):
        pre_tokenizer_name({"pre_tokenizer": json.loads(pre_tokenizer.__getstate__())})
