"""The optimizer methods of the `optimizer` group, and LoRA+.

GaLore and APOLLO are transformers' own `optim` choices: `low_rank_arguments` turns the galore_*/apollo_*
keys into TrainingArguments (`optim`, `optim_target_modules`, `optim_args`). BAdam, Adam-mini and Muon
are optimizer instances handed to the Trainer (`custom_optimizer`).
"""

import functools
import sys
from collections.abc import Callable
from typing import Any

import torch

from lmforge.config import LmforgeConfig
from lmforge.config.optimizer import OptimizerGroup
from lmforge.errors import ModelError
from lmforge.model.lora import loraplus_optimizer
from lmforge.model.targets import check_module_names, linear_module_names


def check_optimizer_runs(opt: OptimizerGroup) -> None:
    """What the installed torch cannot run of the optimizer methods, said before any weight loads."""
    if opt.use_muon and not hasattr(torch.optim, "Muon"):
        raise ModelError(f"`use_muon: true` needs torch.optim.Muon, which torch has from 2.9 on (installed: "
                         f"{torch.__version__}): upgrade torch, or choose another optimizer")
    if opt.use_badam and opt.badam_mode == "ratio" and not _norms_sparse_gradients():
        # the Trainer takes the gradients' norm every step, for clipping or for the log (max_grad_norm: 0 too)
        raise ModelError(f"`badam_mode: ratio` leaves sparse gradients, whose norm torch {torch.__version__} "
                         "cannot take (no sparse kernel before torch 2.14): upgrade torch, or use "
                         "`badam_mode: layer`")


@functools.cache
def _norms_sparse_gradients() -> bool:
    try:
        torch.nn.utils.get_total_norm([torch.ones(1, 1).to_sparse()])
    except (NotImplementedError, RuntimeError):
        return False
    return True


def low_rank_arguments(opt: OptimizerGroup, base_optim: str | None, model: torch.nn.Module) -> dict[str, Any]:
    """TrainingArguments for GaLore/APOLLO (empty when neither is on): transformers' low-rank `optim` on top of
    `base_optim`, its targets (`all`: every linear layer but the output head) and settings."""
    optim = opt.low_rank_optim(base_optim)
    if optim is None:
        return {}
    method = str(opt.method())
    key = f"{method.removeprefix('use_')}_target"
    requested: list[str] = getattr(opt, key)
    if requested == ["all"]:
        targets = linear_module_names(model)
    else:
        check_module_names(model, requested, key)
        targets = list(requested)
    return {"optim": optim, "optim_target_modules": targets, "optim_args": opt.low_rank_optim_args()}


def _decay_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Trainable parameters split as transformers splits them: matrices decay, biases and norms do not."""
    params = [p for p in model.parameters() if p.requires_grad]
    return [{"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]


def _badam(model: Any, opt: OptimizerGroup, args: Any) -> torch.optim.Optimizer:
    from badam import BlockOptimizer, BlockOptimizerRatio
    from transformers import Trainer

    optimizer_cls, optimizer_kwargs = Trainer.get_optimizer_cls_and_kwargs(args, model)
    groups = _decay_groups(model, args.weight_decay)
    named = list(model.named_parameters())
    if opt.badam_mode == "ratio":
        return BlockOptimizerRatio(param_groups=groups, named_parameters_list=named,
                                   update_ratio=opt.badam_update_ratio, mask_mode=opt.badam_mask_mode,
                                   verbose=opt.badam_verbose, include_embedding=False, lr=args.learning_rate,
                                   betas=(args.adam_beta1, args.adam_beta2), eps=args.adam_epsilon)
    # BAdam switches when the step count is a multiple of the interval; -1 means never
    interval = sys.maxsize if opt.badam_switch_interval == -1 else opt.badam_switch_interval
    return BlockOptimizer(base_optimizer=optimizer_cls(groups, **optimizer_kwargs), named_parameters_list=named,
                          switch_block_every=interval, start_block=opt.badam_start_block,
                          switch_mode=opt.badam_switch_mode, verbose=opt.badam_verbose)


def _adam_mini(model: Any, opt: OptimizerGroup, args: Any) -> torch.optim.Optimizer:
    from adam_mini import Adam_mini

    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    return Adam_mini(named_parameters=model.named_parameters(), lr=args.learning_rate,
                     betas=(args.adam_beta1, args.adam_beta2), eps=args.adam_epsilon, weight_decay=args.weight_decay,
                     model_sharding=bool(args.fsdp or args.deepspeed), dim=config.hidden_size,
                     n_heads=config.num_attention_heads,
                     n_kv_heads=getattr(config, "num_key_value_heads", None) or config.num_attention_heads,
                     verbose=False)


class MuonWithAdamW(torch.optim.Optimizer):
    """torch's Muon for the hidden weight matrices and AdamW for everything else, as one optimizer (the Trainer
    and its learning-rate schedule see both halves' parameter groups)."""

    def __init__(self, halves: dict[str, torch.optim.Optimizer]) -> None:
        self.halves = halves
        groups = [group for half in halves.values() for group in half.param_groups]
        super().__init__(groups, {})
        self.param_groups = groups  # the halves' own group dicts: the schedule's lr changes reach both

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = closure() if closure is not None else None
        for half in self.halves.values():
            half.step()
        return loss

    def state_dict(self) -> dict[str, Any]:
        return {name: half.state_dict() for name, half in self.halves.items()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        for name, half in self.halves.items():
            half.load_state_dict(state_dict[name])


def _muon(model: Any, opt: OptimizerGroup, args: Any) -> torch.optim.Optimizer:
    """Muon orthogonalises the updates of 2-D hidden weights; embeddings and the output head are lookups and
    a classifier, not maps between hidden states, so AdamW trains them, and 1-D weights (as in LLaMA-Factory).
    Muon's step is scaled to AdamW's update size (`match_rms_adamw`), so one learning rate serves both."""
    embeddings = {id(p) for module in (model.get_input_embeddings(), model.get_output_embeddings())
                  if module is not None for p in module.parameters()}
    trainable = [p for p in model.parameters() if p.requires_grad]
    hidden = [p for p in trainable if p.ndim == 2 and id(p) not in embeddings]
    rest = [p for p in trainable if p.ndim != 2 or id(p) in embeddings]
    halves: dict[str, torch.optim.Optimizer] = {}
    if hidden:
        halves["muon"] = torch.optim.Muon(hidden, lr=args.learning_rate, weight_decay=args.weight_decay,
                                          adjust_lr_fn="match_rms_adamw")
    if rest:
        halves["adamw"] = torch.optim.AdamW(rest, lr=args.learning_rate, betas=(args.adam_beta1, args.adam_beta2),
                                            eps=args.adam_epsilon, weight_decay=args.weight_decay)
    return MuonWithAdamW(halves)


def _apollo_scale_front(trainer: Any) -> torch.optim.Optimizer:
    """transformers' own APOLLO (its param groups and settings from `optim_args`) with `scale_front`, an argument
    of apollo_torch's optimizer that transformers' `optim_args` does not pass on."""
    optimizer_cls, kwargs = trainer.get_optimizer_cls_and_kwargs(trainer.args, trainer.model)
    return optimizer_cls(kwargs.pop("params"), **kwargs, scale_front=True)


_BUILDERS: dict[str, Callable[[Any, OptimizerGroup, Any], torch.optim.Optimizer]] = {
    "use_badam": _badam, "use_adam_mini": _adam_mini, "use_muon": _muon}


def set_optimizer(trainer: Any, cfg: LmforgeConfig) -> None:
    """Give `trainer` the optimizer the config asks for (BAdam, Adam-mini, Muon, APOLLO with `scale_front`, LoRA+)
    unless the stage built one; otherwise the Trainer builds `args.optim` itself (GaLore and APOLLO included)."""
    if trainer.optimizer is not None:
        return
    method = cfg.optimizer.method()
    if method == "use_apollo" and cfg.optimizer.apollo_scale_front:
        trainer.optimizer = _apollo_scale_front(trainer)
    elif method in _BUILDERS:
        trainer.optimizer = _BUILDERS[method](trainer.model, cfg.optimizer, trainer.args)
        if method == "use_badam":
            from badam import BAdamCallback  # its own set-up of checkpointed layers for block-wise updates

            trainer.add_callback(BAdamCallback)
    else:
        trainer.optimizer = loraplus_optimizer(trainer.model, cfg.finetuning, trainer.args)
