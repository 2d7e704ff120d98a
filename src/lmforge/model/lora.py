"""LoRA and its variants through peft: task type from the model, targets checked, DoRA, rsLoRA, PiSSA,
LoRA+, extra fully-trained modules, and chains of existing adapters."""

import logging
import shutil
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, PeftModel, TaskType, get_peft_model

from lmforge.config.groups import FinetuningGroup
from lmforge.errors import ModelError
from lmforge.model.components import model_components
from lmforge.model.freeze import expanded_block_indices, layer_stacks
from lmforge.model.fused_lora import fold_lora_layers
from lmforge.model.kind import ModelKind
from lmforge.model.targets import check_module_names, frozen_parts, lora_targets

logger = logging.getLogger(__name__)

# Inside output_dir while training, removed once the adapter is converted. peft loads it back as an
# adapter named after the folder, so the name must be a valid module name (no dots).
PISSA_INIT_DIR = "pissa_init"


def check_task_type(kind: ModelKind, ft: FinetuningGroup) -> TaskType:
    """The peft task type that fits the model; a contradicting `lora_task_type` fails with the right one."""
    inferred = kind.peft_task_type
    asked = ft.lora_task_type
    if asked and asked != inferred:
        consequence = ("peft would pass `decoder_input_ids`, which its forward() does not accept"
                       if asked == "SEQ_2_SEQ_LM" else "peft would not feed its decoder")
        raise ModelError(f"`lora_task_type: {asked}` does not fit {kind.architecture}: it is {kind.describe()} "
                         f"({kind.reason}), so {consequence}. Use `lora_task_type: {inferred}`, or remove the key "
                         "and lmforge infers it")
    return TaskType(inferred)


def modules_to_save_for(model: torch.nn.Module, ft: FinetuningGroup, new_tokens: bool) -> list[str] | None:
    """Modules trained in full beside the adapters: `additional_target`, an unfrozen projector, new-token embeddings."""
    names = list(ft.additional_target or [])
    if names:
        check_module_names(model, names, "additional_target")
    if not ft.freeze_multi_modal_projector:
        modules = dict(model.named_modules())  # loose projector parameters (`image_newline`) are no peft module
        names += [path.rsplit(".", 1)[-1] for path in model_components(model).projectors if path in modules]
    if new_tokens:  # new tokens have untrained embedding rows: train the embeddings in full
        embeddings = [model.get_input_embeddings(), model.get_output_embeddings()]
        if embeddings[1] is not None and embeddings[1].weight is embeddings[0].weight:
            embeddings.pop()  # tied: one matrix, trained once
        for module in embeddings:
            name = next((n for n, m in model.named_modules() if m is module), None)
            short = name.rsplit(".", 1)[-1] if name else None
            if short and short not in names:
                names.append(short)
                logger.info("training %s in full for the new tokens", short)
    return names or None


def build_lora_config(model: torch.nn.Module, ft: FinetuningGroup, kind: ModelKind, *,
                      new_tokens: bool = False) -> LoraConfig:
    targets = lora_targets(model, ft.lora_target, ft)
    init: bool | str = True
    if ft.pissa_init:
        init = "pissa" if ft.pissa_iter == -1 else f"pissa_niter_{ft.pissa_iter}"
    return LoraConfig(
        task_type=check_task_type(kind, ft),
        r=ft.lora_rank,
        lora_alpha=ft.lora_alpha or 2 * ft.lora_rank,
        lora_dropout=ft.lora_dropout,
        target_modules=targets.target_modules,
        exclude_modules=targets.exclude_modules,
        modules_to_save=modules_to_save_for(model, ft, new_tokens),
        use_dora=ft.use_dora,
        use_rslora=ft.use_rslora,
        init_lora_weights=init,
        layers_to_transform=_expanded_blocks(model, ft),
    )


def _expanded_blocks(model: torch.nn.Module, ft: FinetuningGroup) -> list[int] | None:
    """LLaMA-Pro with LoRA: adapters on the expanded blocks only (None: every layer)."""
    if not ft.use_llama_pro:
        return None
    stacks = layer_stacks(model, frozen_parts(model_components(model), ft))
    if len(stacks) != 1:
        raise ModelError(f"`use_llama_pro` needs one layer stack; {type(model).__name__} has {len(stacks)}")
    size = len(model.get_submodule(stacks[0]))
    return expanded_block_indices(size, ft.freeze_trainable_layers, type(model).__name__)


def merge_adapters(model: Any, adapters: list[str]) -> Any:
    """Load each adapter onto `model` and merge it in, in order. On quantized weights (`quantization_bit`) one
    adapter is loaded beside them instead: merging would round it into the 4/8-bit values."""
    if getattr(model, "is_quantized", False) and adapters:
        if len(adapters) > 1:
            raise ModelError(f"{len(adapters)} adapters on quantized weights (`quantization_bit`): a quantized model "
                             "takes one, unmerged; merge them with `lmforge export` first, or remove "
                             "`quantization_bit`")
        logger.info("loaded adapter %s beside the quantized weights", adapters[0])
        return PeftModel.from_pretrained(model, adapters[0])
    for adapter in adapters:
        model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
        logger.info("merged adapter %s", adapter)
    return model


def apply_lora(model: Any, ft: FinetuningGroup, kind: ModelKind, *, adapters: list[str], new_tokens: bool = False,
               sharded: bool = False, output_dir: str | None = None) -> Any:
    """Wrap `model` for LoRA training: resume the last of `adapters` (`adapter_name_or_path`), or start one.

    `sharded`: DeepSpeed or FSDP trains the model; `output_dir`: where the run saves (PiSSA keeps its
    initial adapter there)."""
    from peft import prepare_model_for_kbit_training

    check_task_type(kind, ft)
    if getattr(model, "is_quantized", False):  # one adapter at most, unmerged (config/rules.py)
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    to_merge = adapters if ft.create_new_adapter else adapters[:-1]
    model = merge_adapters(model, to_merge)
    if adapters and not ft.create_new_adapter:
        model = PeftModel.from_pretrained(model, adapters[-1], is_trainable=True)
        logger.info("resumed training adapter %s", adapters[-1])
        return _fold(model, ft, sharded)
    model = get_peft_model(model, build_lora_config(model, ft, kind, new_tokens=new_tokens))
    if ft.pissa_init and output_dir:
        # The adapter as initialised, to convert the trained one into a plain LoRA at save time. Saved as
        # a plain-init config so loading it back does not decompose the (already residual) weights again.
        config = model.peft_config["default"]
        init, config.init_lora_weights = config.init_lora_weights, True
        model.save_pretrained(Path(output_dir) / PISSA_INIT_DIR)
        config.init_lora_weights = init
    return _fold(model, ft, sharded)


def _fold(model: Any, ft: FinetuningGroup, sharded: bool) -> Any:
    """`fused_lora`: one matmul per LoRA layer of this model. Not under DeepSpeed or FSDP, whose hooks gather
    a sharded weight around the base layer's own forward, which the folded matmul does not call."""
    if ft.fused_lora and not sharded:
        fold_lora_layers(model)
    return model


def convert_pissa_adapter(model: Any, ft: FinetuningGroup, output_dir: str | Path) -> None:
    """Re-save a PiSSA adapter as a plain LoRA that applies to the original base model; nothing for any
    other adapter (the Trainer has saved it already)."""
    init_dir = Path(output_dir) / PISSA_INIT_DIR
    if not (ft.pissa_init and isinstance(model, PeftModel) and init_dir.is_dir()):
        return
    model.save_pretrained(str(output_dir), path_initial_model_for_weight_conversion=str(init_dir))
    shutil.rmtree(init_dir)
    logger.info("converted the PiSSA adapter into a plain LoRA adapter for the original base model")


def loraplus_optimizer(model: Any, ft: FinetuningGroup, args: Any) -> torch.optim.Optimizer | None:
    """LoRA+: the optimizer `args.optim` names, with the B matrices at `loraplus_lr_ratio` x the learning rate."""
    ratio = ft.loraplus_lr_ratio
    if not ratio or not isinstance(model, PeftModel):
        return None
    from peft.optimizers import create_loraplus_optimizer
    from transformers import Trainer

    optimizer_cls, optimizer_kwargs = Trainer.get_optimizer_cls_and_kwargs(args, model)
    optimizer_kwargs.pop("lr", None)
    return create_loraplus_optimizer(model, optimizer_cls, lr=args.learning_rate, loraplus_lr_ratio=ratio,
                                     loraplus_weight_decay=args.weight_decay,
                                     loraplus_lr_embedding=ft.loraplus_lr_embedding, **optimizer_kwargs)
