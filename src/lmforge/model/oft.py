"""`finetuning_type: oft`: peft's Orthogonal Finetuning. Each adapted weight is multiplied by a learned block-diagonal
orthogonal matrix, which rotates its input space and keeps the weight's singular values (its "energy").

Targets resolve as LoRA's do (`oft_target: all`: every linear layer of the language model but the output head);
`additional_target` and new-token embeddings are trained in full beside the adapters, as with LoRA, and so does a
quantized base (`quantization_bit`).
"""

from typing import Any

import torch
from peft import OFTConfig, get_peft_model

from lmforge.config.groups import FinetuningGroup
from lmforge.errors import ModelError
from lmforge.model.kind import ModelKind
from lmforge.model.lora import check_task_type, modules_to_save_for
from lmforge.model.targets import lora_targets


def build_oft_config(model: torch.nn.Module, ft: FinetuningGroup, kind: ModelKind, *,
                     new_tokens: bool = False) -> OFTConfig:
    targets = lora_targets(model, ft.oft_target, ft)
    block = 0 if ft.oft_rank and "oft_block_size" not in ft.model_fields_set else ft.oft_block_size
    if block:
        widths = sorted({module.in_features for name, module in model.named_modules()
                         if isinstance(module, torch.nn.Linear) and name.rsplit(".", 1)[-1] in targets.target_modules})
        if odd := [width for width in widths if width % block]:
            raise ModelError(f"`oft_block_size: {block}` must divide the input size of every adapted layer; "
                             f"{type(model).__name__} has layers of input size {', '.join(map(str, odd))}: choose a "
                             f"common divisor of {', '.join(map(str, widths))}, or narrow `oft_target`")
    return OFTConfig(task_type=check_task_type(kind, ft), r=ft.oft_rank, oft_block_size=block,
                     target_modules=targets.target_modules, exclude_modules=targets.exclude_modules,
                     module_dropout=ft.module_dropout, modules_to_save=modules_to_save_for(model, ft, new_tokens))


def apply_oft(model: Any, ft: FinetuningGroup, kind: ModelKind, *, new_tokens: bool = False) -> Any:
    """Wrap `model` for OFT training. On a quantized base (`quantization_bit`, LLaMA-Factory's QOFT) peft's OFT layer
    rotates the input and calls the quantized layer itself, so it trains there as LoRA does."""
    if getattr(model, "is_quantized", False):
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    return get_peft_model(model, build_oft_config(model, ft, kind, new_tokens=new_tokens))
