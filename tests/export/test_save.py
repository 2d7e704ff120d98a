"""Saved weights are readable like every other file of the export (safetensors creates its files 0600)."""

import os

import pytest
import torch
from transformers import AutoModelForCausalLM

from lmforge.export.save import save_weights


@pytest.mark.parametrize("max_shard_gb", [5.0, 0.0001])  # one file, and shards with an index
def test_weight_files_get_the_mode_of_config_json(tiny_llama_path, tmp_path, max_shard_gb):
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_path, dtype=torch.float32)
    old_umask = os.umask(0o022)
    try:
        save_weights(model, tmp_path, max_shard_gb=max_shard_gb)
    finally:
        os.umask(old_umask)
    weights = sorted(tmp_path.glob("*.safetensors"))
    assert weights and (len(weights) > 1) == (max_shard_gb < 1)
    assert {oct(p.stat().st_mode & 0o777) for p in weights} == {"0o644"}
    assert (tmp_path / "config.json").stat().st_mode & 0o777 == 0o644


def test_converted_weights_get_the_mode_of_config_json(tiny_llama_path, tmp_path):
    from lmforge.export.convert.common import save_and_verify

    model = AutoModelForCausalLM.from_pretrained(tiny_llama_path, dtype=torch.float32)
    old_umask = os.umask(0o022)
    try:
        save_and_verify(model, tmp_path / "out", what="tiny")
    finally:
        os.umask(old_umask)
    assert (tmp_path / "out" / "model.safetensors").stat().st_mode & 0o777 == 0o644
