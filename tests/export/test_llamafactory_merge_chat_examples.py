"""LLaMA-Factory's v0.9.3 merge_lora and inference examples on tiny llamas: the adapter and the full-SFT model they
name are made here by the training examples; only the model, adapter and export paths change."""

import math

import pytest
from rich.console import Console

from lmforge.config import build_config
from lmforge.data.templates.template import Message
from lmforge.export.pipeline import run_export
from lmforge.infer.factory import create_engine
from lmforge.train.runner import run_training
from tests.llamafactory_examples import example

TINY = "builtin:tiny-llama"
SHORT_ANSWER = {"max_new_tokens": 8}  # the smoke-run size of a chat turn


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The outputs of train_lora/llama3_lora_sft and train_full/llama3_full_sft (one step each; the latter without
    its `deepspeed` key, which needs torchrun: tests/train/test_llamafactory_deepspeed_examples.py runs it so)."""
    made = {}
    for name, kind in (("train_lora/llama3_lora_sft.yaml", "lora"), ("train_full/llama3_full_sft.yaml", "full")):
        raw = example(name, tmp_path_factory.mktemp(kind), TINY)
        raw.pop("deepspeed", None)
        summary = run_training(build_config(raw, source=name), Console(quiet=True))
        assert summary["steps"] == 1 and math.isfinite(summary["final_loss"])
        made[kind] = raw["output_dir"]
    return made


@pytest.mark.slow
@pytest.mark.parametrize("name", ["merge_lora/llama3_lora_sft.yaml", "merge_lora/llama3_full_sft.yaml"])
def test_merge_example_exports_a_model_that_reloads_to_the_same_logits(name, trained, tmp_path):
    paths = ({"model_name_or_path": TINY, "adapter_name_or_path": trained["lora"]} if "lora" in name
             else {"model_name_or_path": trained["full"]})
    result = run_export(build_config({**example(name, tmp_path, TINY), **paths}, source=name), Console(quiet=True))
    # run_export reloads what it wrote and raises ExportError where its logits drift from the source's
    assert result.reports and (result.export_dir / "config.json").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["inference/llama3.yaml", "inference/llama3_lora_sft.yaml",
                                  "inference/llama3_full_sft.yaml"])
def test_inference_example_answers_a_chat_turn(name, trained, tmp_path):
    paths = ({"adapter_name_or_path": trained["lora"]} if "lora" in name
             else {"model_name_or_path": trained["full"]} if "full" in name else {})
    engine = create_engine(build_config({**example(name, tmp_path, TINY), **SHORT_ANSWER, **paths}, source=name))
    try:
        assert engine.chat([Message("user", "Who are you?")]).strip()
    finally:
        engine.close()
