"""Generation keys in the config and per-request options: types, rules, clear errors."""

import pytest

from lmforge.config import build_config
from lmforge.errors import ConfigError
from lmforge.infer.options import GenerationOptions


def test_generation_keys_become_options():
    cfg = build_config({"stop_strings": "a, b", "num_candidates": 3, "candidate_method": "diverse_beam",
                        "num_beams": 6, "num_beam_groups": 3, "diversity_penalty": 0.5, "generation_seed": 7})
    options = GenerationOptions.from_config(cfg.generation)
    assert options.stop == ("a, b",)  # one stop string; commas are not separators
    assert (options.n, options.method, options.num_beams, options.num_beam_groups) == (3, "diverse_beam", 6, 3)
    assert options.diversity_penalty == 0.5 and options.seed == 7


@pytest.mark.parametrize(("raw", "message"), [
    ({"num_candidates": 3, "do_sample": False}, "n > 1 with greedy decoding"),
    ({"num_candidates": 5, "candidate_method": "beam", "num_beams": 4}, "must be at least the candidate count"),
    ({"candidate_method": "diverse_beam", "num_beams": 4, "num_beam_groups": 3}, "dividing `num_beams`"),
    ({"candidate_method": "diverse_sample", "do_sample": False}, "diverse_sample` samples"),
    ({"candidate_method": "diverse_beam", "num_beams": 4, "num_beam_groups": 2, "infer_backend": "vllm"},
     "transformers backend only"),
])
def test_candidate_rules(raw, message):
    with pytest.raises(ConfigError, match=message):
        build_config(raw)


def test_a_temperature_of_zero_is_greedy_decoding_as_in_the_api():
    options = GenerationOptions.from_config(build_config({"temperature": 0, "do_sample": True}).generation)
    assert options.do_sample is False  # transformers would divide the logits by zero
    with pytest.raises(ConfigError, match=r"key `temperature` = -0.5: Input should be greater than or equal to 0"):
        build_config({"temperature": -0.5})


def test_vllm_keys_are_no_longer_pending():
    cfg = build_config({"infer_backend": "vllm", "vllm_maxlen": 2048, "vllm_gpu_util": 0.5})
    assert cfg.generation.vllm_maxlen == 2048


def test_request_overrides_are_checked():
    options = GenerationOptions()
    assert options.updated(n=2, stop="END", temperature=None).stop == ("END",)
    assert options.updated(temperature=None).temperature == options.temperature
    with pytest.raises(ConfigError, match="unknown generation option"):
        options.updated(temprature=0.5)
    with pytest.raises(ConfigError, match="num_beams"):
        options.updated(n=3, method="beam", num_beams=2)
