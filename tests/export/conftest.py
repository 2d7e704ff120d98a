from pathlib import Path

import pytest
import torch


def make_adapter(base: Path, out: Path, *, dora: bool, seed: int) -> Path:
    """A LoRA (or DoRA) adapter with random non-zero weights, made with peft directly."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    torch.manual_seed(seed)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"], use_dora=dora,
                        init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def lora_and_dora(tiny_llama_path, tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("adapters")
    return (make_adapter(tiny_llama_path, root / "lora", dora=False, seed=1),
            make_adapter(tiny_llama_path, root / "dora", dora=True, seed=2))
