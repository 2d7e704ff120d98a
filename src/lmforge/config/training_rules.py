"""Cross-field rules of the training keys: batch sizes, evaluation, checkpoints, the optimizer methods, `report_to`.

Several restate checks transformers makes when the Trainer's arguments are built, which happens after the model
has loaded; tests/config/test_training_rules.py holds each against transformers' own on the same values.
"""

import difflib

from lmforge.config.fsdp import fsdp_problem
from lmforge.config.groups import LmforgeConfig
from lmforge.config.optimizer import APOLLO_OF, GALORE_OF, LOW_RANK_ARGS, OPTIMIZER_METHODS
from lmforge.config.packages import REPORT_TO_PACKAGES, report_targets
from lmforge.config.training import RENAMED


def global_batch_size_divides(cfg: LmforgeConfig) -> str | None:
    training = cfg.training
    if training.global_batch_size is None:
        return None
    if training.gradient_accumulation_steps is not None:
        return ("`global_batch_size` and `gradient_accumulation_steps` both set the accumulation: keep one "
                "(global_batch_size = per_device_train_batch_size x gradient_accumulation_steps x processes)")
    micro = training.per_device_train_batch_size
    if micro is not None and training.global_batch_size % micro:
        return (f"`global_batch_size: {training.global_batch_size}` is not a multiple of "
                f"`per_device_train_batch_size: {micro}`")
    return None


# transformers' defaults for the keys the rules read when they are unset (lmforge's own: `logging_steps: 10`)
SAVE_STRATEGY, SAVE_STEPS, LOGGING_STEPS = "steps", 500, 10


def evaluation_has_data(cfg: LmforgeConfig) -> str | None:
    strategy = cfg.training.eval_strategy
    if strategy in (None, "no") or cfg.data.eval_dataset or cfg.data.val_size:
        return None
    return (f"`eval_strategy: {strategy}` evaluates on held-out data: set `val_size` (a share of the training rows, "
            "e.g. 0.1) or `eval_dataset`, or remove `eval_strategy`")


def whole_step_counts(cfg: LmforgeConfig) -> str | None:
    """A step count is whole, or a share (below 1) of the run's steps."""
    counts = {key: getattr(cfg.training, key) for key in ("logging_steps", "eval_steps", "save_steps")}
    broken = [f"`{key}: {value}`" for key, value in counts.items() if value and value > 1 and value != int(value)]
    if broken:
        return f"{', '.join(broken)}: a step count is a whole number, or a share below 1 of all steps"
    return None


def best_checkpoint_evaluates(cfg: LmforgeConfig) -> str | None:
    """`load_best_model_at_end` picks among the saved checkpoints by their evaluation: each save needs one."""
    training = cfg.training
    save = training.save_strategy or SAVE_STRATEGY
    if not training.load_best_model_at_end or save == "best":
        return None
    evaluate = training.eval_strategy or "no"
    if evaluate != save:
        return (f"`load_best_model_at_end` keeps the checkpoint that evaluated best, so it evaluates at every save: "
                f"set `eval_strategy: {save}` (now `{evaluate}`) like `save_strategy`, or `save_strategy: best`")
    if save != "steps":
        return None
    save_steps = training.save_steps or SAVE_STEPS
    eval_steps = training.eval_steps or training.logging_steps or LOGGING_STEPS
    if (save_steps < 1) != (eval_steps < 1) or round(save_steps * 1_000_000) % round(eval_steps * 1_000_000):
        return (f"`load_best_model_at_end`: `save_steps: {save_steps:g}` must be a multiple of `eval_steps: "
                f"{eval_steps:g}` (both whole steps or both shares), so each saved checkpoint has been evaluated")
    return None


def schedule_evaluates(cfg: LmforgeConfig) -> str | None:
    """The schedules that follow the eval loss."""
    schedule = cfg.training.lr_scheduler_type
    if schedule in ("reduce_lr_on_plateau", "greedy") and cfg.training.eval_strategy in (None, "no"):
        return (f"`lr_scheduler_type: {schedule}` lowers the learning rate when the eval loss stops improving: "
                "set `eval_strategy` (steps or epoch) and `val_size` or `eval_dataset`")
    return None


def prefetch_needs_workers(cfg: LmforgeConfig) -> str | None:
    training = cfg.training
    if training.dataloader_prefetch_factor is not None and not training.dataloader_num_workers:
        return ("`dataloader_prefetch_factor` sets how far worker processes load ahead: set "
                "`dataloader_num_workers` (1 or more), or remove it")
    return None


def one_sharding_plan(cfg: LmforgeConfig) -> str | None:
    """`fsdp` names options transformers knows, for the FSDP version it runs, and is not combined with DeepSpeed
    (transformers refuses each in the training processes, after the model has loaded)."""
    training = cfg.training
    if not training.fsdp:
        return None
    if training.deepspeed is not None:
        return "`fsdp` and `deepspeed` each shard the model across processes: keep one"
    return fsdp_problem(training.fsdp, training.fsdp_config)


def one_name_per_setting(cfg: LmforgeConfig) -> str | None:
    """transformers 5 renamed some arguments; given under both names, it would silently use the new one."""
    training = cfg.training
    both = [(old, new) for old, new in RENAMED.items()
            if getattr(training, old) is not None and getattr(training, new) is not None
            and getattr(training, old) != getattr(training, new)]
    if both:
        return "; ".join(f"`{old}` and `{new}` (its new name) say different things: keep `{new}`" for old, new in both)
    return None


def batch_finder_without_zero3(cfg: LmforgeConfig) -> str | None:
    settings = cfg.training.deepspeed_settings() or {}
    if cfg.training.auto_find_batch_size and (settings.get("zero_optimization") or {}).get("stage") == 3:
        return ("`auto_find_batch_size` cannot rebuild a DeepSpeed ZeRO-3 engine at a smaller batch: remove it (and "
                "set `per_device_train_batch_size`), or use ZeRO-2")
    return None


def early_stopping_evaluates(cfg: LmforgeConfig) -> str | None:
    if cfg.training.early_stopping_steps is None:
        return None
    if not (cfg.data.eval_dataset or cfg.data.val_size):
        return "`early_stopping_steps` watches an evaluation metric: set `val_size` or `eval_dataset`"
    if cfg.training.eval_strategy in (None, "no"):
        return ("`early_stopping_steps` counts evaluations: set `eval_strategy: steps` (with `eval_steps`) "
                "or `eval_strategy: epoch`")
    return None


def one_optimizer_method(cfg: LmforgeConfig) -> str | None:
    """LLaMA-Factory's optimizer methods replace the optimizer: one at a time, on the weights themselves."""
    opt, ft = cfg.optimizer, cfg.finetuning
    chosen = [name for name in OPTIMIZER_METHODS if getattr(opt, name)]
    if len(chosen) > 1:
        return f"{' and '.join(f'`{k}`' for k in chosen)} each choose the optimizer: keep one"
    if not chosen:
        return None
    method = chosen[0]
    if ft.finetuning_type == "lora" and method in ("use_galore", "use_apollo", "use_badam"):
        return (f"`{method}` optimizes the model's own weights, not LoRA adapters: set `finetuning_type: full` "
                "(or `freeze`)")
    if ft.loraplus_lr_ratio is not None:
        return f"`{method}` and `loraplus_lr_ratio` each choose the optimizer: keep one"
    if method in LOW_RANK_ARGS:
        if cfg.training.optim not in (GALORE_OF if method == "use_galore" else APOLLO_OF):
            bases = sorted(str(k) for k in (GALORE_OF if method == "use_galore" else APOLLO_OF) if k)
            return f"`{method}` builds on `optim` {', '.join(bases)} (got `{cfg.training.optim}`)"
        if set_keys := [k for k in ("optim_target_modules", "optim_args") if getattr(cfg.training, k) is not None]:
            prefix = method.removeprefix("use_")
            return (f"`{method}` sets {' and '.join(f'`{k}`' for k in set_keys)} from its `{prefix}_*` keys: "
                    f"remove {' and '.join(f'`{k}`' for k in set_keys)}")
    layerwise = (method == "use_galore" and opt.galore_layerwise) or (method == "use_apollo" and opt.apollo_layerwise)
    if layerwise and (cfg.training.gradient_accumulation_steps or 1) > 1:
        return (f"layer-wise `{method}` updates each weight during backward: set `gradient_accumulation_steps: 1` "
                "(or switch the layer-wise variant off)")
    if method in ("use_galore", "use_apollo", "use_badam") and cfg.training.deepspeed is not None:
        return f"`{method}` replaces the optimizer DeepSpeed would shard: remove `deepspeed` (or the method)"
    return None


def report_to_known(cfg: LmforgeConfig) -> str | None:
    """transformers refuses an unknown integration when the Trainer is built, after the model has loaded."""
    unknown = [name for name in report_targets(cfg.training.report_to) if name not in REPORT_TO_PACKAGES]
    if not unknown:
        return None
    close = [match for name in unknown for match in difflib.get_close_matches(name, list(REPORT_TO_PACKAGES), n=1)]
    hint = f" (did you mean {', '.join(f'`{name}`' for name in close)}?)" if close else ""
    return (f"`report_to`: {', '.join(f'`{name}`' for name in unknown)} is not one of transformers' integrations"
            f"{hint}: choose from all, none, {', '.join(sorted(REPORT_TO_PACKAGES))}")
