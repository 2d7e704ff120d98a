"""The vLLM backend's translation of our options, tested without vLLM (it needs a CUDA GPU)."""

import importlib.util

import pytest

from lmforge.config import build_config
from lmforge.errors import ConfigError, ModelError
from lmforge.infer.options import GenerationOptions
from lmforge.infer.vllm_backend import (
    beam_params_kwargs,
    candidate_from_output,
    engine_kwargs,
    sampling_params_kwargs,
    vllm_usable,
)


def test_sampling_options_translate():
    options = GenerationOptions(temperature=0.7, top_p=0.9, top_k=0, repetition_penalty=1.1, max_new_tokens=33,
                                stop=("END",), seed=5, presence_penalty=0.5, frequency_penalty=-0.25,
                                logit_bias=((3, 1.5), (9, -100.0)))
    kwargs = sampling_params_kwargs(options, [2, 7], index=2)
    assert kwargs == dict(n=1, max_tokens=33, repetition_penalty=1.1, stop=["END"], stop_token_ids=[2, 7],
                          skip_special_tokens=True, logprobs=0, temperature=0.7, top_p=0.9, top_k=-1, seed=7,
                          presence_penalty=0.5, frequency_penalty=-0.25, logit_bias={3: 1.5, 9: -100.0})


def test_greedy_is_temperature_zero_and_unseeded_rows_stay_unseeded():
    kwargs = sampling_params_kwargs(GenerationOptions(do_sample=False), [2])
    assert kwargs["temperature"] == 0.0 and "top_p" not in kwargs and "seed" not in kwargs


def test_beam_options_translate():
    assert beam_params_kwargs(GenerationOptions(num_beams=4, max_new_tokens=9, length_penalty=0.5)) == dict(
        beam_width=4, max_tokens=9, length_penalty=0.5, temperature=0.0)


def test_engine_kwargs_and_adapters():
    cfg = build_config({"model_name_or_path": "builtin:tiny-llama", "vllm_maxlen": 1024, "vllm_gpu_util": 0.5,
                        "adapter_name_or_path": "a"})
    kwargs = engine_kwargs(cfg.model, cfg.generation, "/models/x")
    assert kwargs["max_model_len"] == 1024 and kwargs["gpu_memory_utilization"] == 0.5 and kwargs["enable_lora"]
    two = build_config({"model_name_or_path": "builtin:tiny-llama", "adapter_name_or_path": "a,b"})
    with pytest.raises(ModelError, match="serves one adapter"):
        engine_kwargs(two.model, two.generation, "/models/x")


def test_stop_strings_are_cut_whatever_vllm_returns():
    candidate = candidate_from_output("Hello END more", [1, 2, 3], "length", [-0.1, -0.2, -0.3], ("END",))
    assert candidate.text == "Hello " and candidate.finish_reason == "stop" and candidate.logprob == pytest.approx(-0.6)


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_without_vllm_auto_is_transformers_and_vllm_fails_clearly():
    assert not vllm_usable()
    from lmforge.infer.vllm_backend import VllmEngine

    cfg = build_config({"model_name_or_path": "builtin:tiny-llama", "template": "chatml", "infer_backend": "vllm"})
    with pytest.raises(ModelError, match="needs vLLM"):
        VllmEngine(cfg)


def test_vllm_config_and_max_lora_rank_reach_the_engine_arguments():
    cfg = build_config({"model_name_or_path": "builtin:tiny-llama", "adapter_name_or_path": "a",
                        "vllm_max_lora_rank": 64, "vllm_config": '{"max_num_seqs": 8, "enforce_eager": true}'})
    kwargs = engine_kwargs(cfg.model, cfg.generation, "/models/x")
    assert kwargs["max_lora_rank"] == 64 and kwargs["max_num_seqs"] == 8 and kwargs["enforce_eager"] is True
    plain = build_config({"model_name_or_path": "builtin:tiny-llama", "vllm_config": {"seed": 3}})
    assert "max_lora_rank" not in engine_kwargs(plain.model, plain.generation, "/x")
    assert engine_kwargs(plain.model, plain.generation, "/x")["seed"] == 3
    with pytest.raises(ConfigError, match="key `vllm_config`"):
        build_config({"vllm_config": "{not json"})
