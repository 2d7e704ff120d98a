"""export/merge.py: earlier adapters merged at once, the last attached unmerged until `merge_last`."""

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

from lmforge.export.merge import merge_last, source_model


def _base(path):
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()


def test_without_adapters_the_base_is_the_source_and_the_result(tiny_llama_path):
    base = _base(tiny_llama_path)
    assert source_model(base, []) is base
    assert merge_last(base) is base


def test_last_adapter_stays_unmerged_until_merge_last(tiny_llama_path, lora_and_dora):
    ids = torch.tensor([[1, 5, 9, 13, 17]])
    source = source_model(_base(tiny_llama_path), [str(a) for a in lora_and_dora])
    assert isinstance(source, PeftModel)
    assert list(source.peft_config) == ["default"]  # only the last adapter is attached; the first is merged
    with torch.no_grad():
        unmerged = source(ids).logits
    merged = merge_last(source)
    assert not isinstance(merged, PeftModel)
    # independently: LoRA merged, DoRA attached, with peft directly
    reference = PeftModel.from_pretrained(
        PeftModel.from_pretrained(_base(tiny_llama_path), lora_and_dora[0]).merge_and_unload(), lora_and_dora[1])
    with torch.no_grad():
        assert (reference(ids).logits - unmerged).abs().max() < 1e-5
        assert (merged(ids).logits - unmerged).abs().max() < 1e-4
