"""LLaMA-Factory's described new special tokens, end to end: `new_special_tokens_config` + `init_special_tokens:
desc_init` through `lmforge train`, on one process and under DeepSpeed ZeRO-3 (which partitions the embeddings)."""

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer

from tests.conftest import ROOT, run_cli
from tests.e2e.test_cli import TRAIN
from tests.train.test_distributed import free_port

DESCRIBED = {"<|plan|>": "a plan written before the answer", "<|plan_end|>": "the end of the plan"}


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["one process", "zero3"])
def test_described_tokens_start_at_their_descriptions_mean_and_are_saved(tmp_path, engine):
    tokens = tmp_path / "special_tokens.yaml"
    tokens.write_text("".join(f'"{token}": {text}\n' for token, text in DESCRIBED.items()))
    config = tmp_path / "run.yaml"
    config.write_text(f"stage: sft\nfinetuning_type: full\nnew_special_tokens_config: {tokens}\n"
                      "init_special_tokens: desc_init\n")
    out = tmp_path / "out"
    # one step that barely moves a weight: the saved rows are still where the initialisation put them
    args = [*TRAIN, "max_steps=1", "learning_rate=1e-12", "bf16=false", f"output_dir={out}"]
    if engine == "zero3":
        args += [f"deepspeed={ROOT / 'examples' / 'deepspeed' / 'ds_z3_config.json'}", "per_device_train_batch_size=2",
                 f"master_port={free_port()}", "--nproc", "2"]
    result = run_cli("train", str(config), *args)
    assert result.returncode == 0, result.stderr[-3000:]
    tokenizer = AutoTokenizer.from_pretrained(out)
    weights = load_file(out / "model.safetensors")
    for name in ("model.embed_tokens.weight", "lm_head.weight"):  # tiny-llama's head is its own matrix
        weight = weights[name]
        for token, text in DESCRIBED.items():
            source = tokenizer(text, add_special_tokens=False)["input_ids"]
            torch.testing.assert_close(weight[tokenizer.convert_tokens_to_ids(token)], weight[source].mean(0),
                                       atol=1e-6, rtol=1e-4)
