"""LLaMA-Factory's v0.9.3 text training examples train one step on a tiny llama: only the model, data and output
paths change, plus the one-step smoke-run size (tests/llamafactory_examples.py). The DeepSpeed ones run under the
CLI (tests/train/test_llamafactory_deepspeed_examples.py), the VLM ones in tests/multimodal."""

import math

import pytest
from rich.console import Console

from lmforge.config import build_config
from lmforge.train.runner import run_training
from tests.llamafactory_examples import SMOKE_RUN, example

TINY = "builtin:tiny-llama"
# trl's KTOTrainer refuses a batch of one row (its KL term pairs each row with another of its batch); the example
# sets 1, so here, beyond the paths, the batch is 2
BATCH_OF_TWO = {"per_device_train_batch_size": 2}
EXAMPLES = {"train_lora/llama3_lora_sft.yaml": {}, "train_lora/llama3_lora_dpo.yaml": {},
            "train_lora/llama3_lora_kto.yaml": BATCH_OF_TWO, "train_lora/llama3_lora_pretrain.yaml": {},
            "train_lora/llama3_lora_reward.yaml": {}, "extras/loraplus/llama3_lora_sft.yaml": {},
            "extras/pissa/llama3_lora_sft.yaml": {}}


def trains_one_step(raw, name):
    summary = run_training(build_config(raw, source=name), Console(quiet=True))
    assert summary["steps"] == 1 and math.isfinite(summary["final_loss"])
    return summary


@pytest.mark.slow
@pytest.mark.parametrize("name", list(EXAMPLES))
def test_text_example_trains_one_step(name, tmp_path):
    trains_one_step({**example(name, tmp_path, TINY), **EXAMPLES[name]}, name)


@pytest.mark.slow
def test_the_preprocess_example_saves_its_tokenized_rows(tmp_path):
    from datasets import load_from_disk

    name = "train_lora/llama3_preprocess.yaml"
    trains_one_step(example(name, tmp_path, TINY), name)
    rows = load_from_disk(str(tmp_path / "tokenized_path" / "train"))
    assert len(rows) == 2 * SMOKE_RUN["max_samples"]  # identity and alpaca_en_demo, max_samples each


@pytest.mark.slow
def test_the_llama_pro_example_trains_the_blocks_that_lmforge_expand_added(tmp_path, tiny_llama_path):
    """The example freezes all but `freeze_trainable_layers: 8` expanded blocks: its model is a llama of 8 layers
    expanded by 8 (LLaMA-Factory's scripts/llama_pro.py, here `lmforge expand`)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lmforge.export.llama_pro import expand_blocks

    tiny = tiny_llama_path
    model = AutoModelForCausalLM.from_pretrained(tiny)
    model.config.num_hidden_layers = 8
    AutoModelForCausalLM.from_config(model.config).save_pretrained(tmp_path / "llama8")
    AutoTokenizer.from_pretrained(tiny).save_pretrained(tmp_path / "llama8")
    expansion = expand_blocks(str(tmp_path / "llama8"), tmp_path / "llama8-pro", 8)
    assert expansion.layers_after == 16
    name = "extras/llama_pro/llama3_freeze_sft.yaml"
    trains_one_step(example(name, tmp_path, str(tmp_path / "llama8-pro")), name)
