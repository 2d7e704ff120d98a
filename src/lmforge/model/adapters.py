"""What is trained: all weights (`full`) or LoRA adapters (`lora`) through peft."""

import logging
from typing import Any

import torch
from peft import LoraConfig, PeftModel, TaskType, get_peft_model

from lmforge.config import LmforgeConfig
from lmforge.errors import ModelError

logger = logging.getLogger(__name__)


def linear_module_names(model: torch.nn.Module) -> list[str]:
    """Short names of every linear layer except the output head, in model order."""
    output = model.get_output_embeddings()
    names: list[str] = []
    for full_name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and module is not output:
            short = full_name.rsplit(".", 1)[-1]
            if short not in names:
                names.append(short)
    return names


def lora_targets(model: torch.nn.Module, requested: list[str]) -> list[str]:
    candidates = linear_module_names(model)
    if requested == ["all"]:
        if not candidates:
            raise ModelError(f"{type(model).__name__} has no linear layers for LoRA")
        return candidates
    module_names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    unknown = [name for name in requested if name not in module_names]
    if unknown:
        raise ModelError(f"`lora_target` {', '.join(unknown)} matches no module of {type(model).__name__}; "
                         f"its linear layers are: {', '.join(candidates)} (or use `lora_target: all`)")
    return requested


def merge_adapters(model: Any, adapters: list[str]) -> Any:
    """Load each adapter onto `model` and merge it in, in order."""
    for adapter in adapters:
        model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
        logger.info("merged adapter %s", adapter)
    return model


def apply_finetuning(model: Any, cfg: LmforgeConfig) -> Any:
    """Make `model` trainable as `finetuning_type` asks; returns the model to train."""
    ft = cfg.finetuning
    if ft.finetuning_type == "full":
        model.requires_grad_(True)
        return model
    adapters = cfg.model.adapter_name_or_path or []
    if adapters:  # earlier adapters are merged; training continues the last one
        model = merge_adapters(model, adapters[:-1])
        model = PeftModel.from_pretrained(model, adapters[-1], is_trainable=True)
        logger.info("resumed training adapter %s", adapters[-1])
        return model
    is_reward_model = type(model).__name__.endswith("ForSequenceClassification")
    lora = LoraConfig(
        task_type=TaskType.SEQ_CLS if is_reward_model else TaskType.CAUSAL_LM,  # SEQ_CLS also trains the head
        r=ft.lora_rank,
        lora_alpha=ft.lora_alpha or 2 * ft.lora_rank,
        lora_dropout=ft.lora_dropout,
        target_modules=lora_targets(model, ft.lora_target),
    )
    return get_peft_model(model, lora)


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total
