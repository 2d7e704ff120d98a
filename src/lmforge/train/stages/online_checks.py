"""Config rules of the online RL stages, run by preflight before any model loads: rewards that exist and fit
the data, a batch that holds whole groups of completions, and what trl's GRPOTrainer / RLOOTrainer (trl
1.16) would otherwise reject with a ValueError once the model is loaded (`stage: ppo` takes the ones that
apply to its own trainer).
"""

import importlib.util
import os
from pathlib import Path

from lmforge.config import LmforgeConfig
from lmforge.data.loading import iter_items
from lmforge.data.prompts import prompt_media_converter
from lmforge.data.registry import resolve_datasets
from lmforge.train.rewards import builtin_problems, required_columns
from lmforge.train.stages.trl_checks import no_fused_liger_cross_entropy, no_lora_on_the_output_head

BUILTIN_HINT = "accuracy, format_think, length, ... (docs/rl.md)"
DEFAULT_BETA = {"grpo": 0.0, "rloo": 0.05, "ppo": 0.2}  # trl's for grpo/rloo; LLaMA-Factory's PPO starts at 0.2


def has_rewards(cfg: LmforgeConfig) -> str | None:
    if cfg.rl.reward_funcs or cfg.rl.reward_model:
        return None
    return (f"`stage: {cfg.finetuning.stage}` learns from rewards: set `reward_funcs` (builtin: {BUILTIN_HINT}; "
            "or `path/to/file.py:function`) and/or `reward_model` (a `stage: rm` output_dir)")


def known_rewards(cfg: LmforgeConfig) -> str | None:
    return "; ".join(builtin_problems(cfg.rl)) or None


def whole_groups(cfg: LmforgeConfig) -> str | None:
    """Each prompt's `num_generations` completions are scored as one group, so a step's completions
    (per_device_train_batch_size x gradient_accumulation_steps x processes) hold whole groups."""
    training, size = cfg.training, cfg.rl.num_generations
    per_device = training.per_device_train_batch_size or 8  # transformers' default
    accumulation = training.gradient_accumulation_steps or 1
    processes = int(os.environ.get("WORLD_SIZE", "1"))
    completions = per_device * accumulation * processes
    if completions % size == 0:
        return None
    fit = next(n for n in range(per_device, per_device + size + 1) if n * accumulation * processes % size == 0)
    return (f"`per_device_train_batch_size` x `gradient_accumulation_steps`{' x processes' * (processes > 1)} = "
            f"{completions} completions per step, not a multiple of `num_generations: {size}` (each prompt's "
            f"completions are scored as a group): set `per_device_train_batch_size: {fit}`, or `num_generations` to "
            f"a divisor of {completions}")


def sampled_completions(cfg: LmforgeConfig) -> str | None:
    if cfg.generation.temperature > 0:
        return None
    return (f"`temperature: 0` decodes greedily, so a prompt's `num_generations: {cfg.rl.num_generations}` completions "
            f"would be the same and `stage: {cfg.finetuning.stage}` would learn nothing from their differences: set a "
            "sampling temperature (e.g. 1.0)")


def fixed_batch_size(cfg: LmforgeConfig) -> str | None:
    if not cfg.training.auto_find_batch_size:
        return None
    return (f"`auto_find_batch_size` halves the batch on out-of-memory, which would split the groups of "
            f"`num_generations: {cfg.rl.num_generations}` completions `stage: {cfg.finetuning.stage}` scores "
            "together: remove it and lower `per_device_train_batch_size` (with `gradient_accumulation_steps`)")


def whole_eval_groups(cfg: LmforgeConfig) -> str | None:
    training, size = cfg.training, cfg.rl.num_generations
    evaluates = (cfg.data.eval_dataset or cfg.data.val_size) and training.eval_strategy not in (None, "no")
    per_device = training.per_device_eval_batch_size or 8
    if not evaluates or per_device * int(os.environ.get("WORLD_SIZE", "1")) % size == 0:
        return None
    return (f"`per_device_eval_batch_size: {per_device}` must be a multiple of `num_generations: {size}` to "
            "evaluate whole groups of completions")


def completion_limit(cfg: LmforgeConfig) -> str | None:
    """trl limits the completion alone; a prompt + answer limit (`max_length`) has no equal there."""
    if cfg.generation.max_new_tokens > 0 or cfg.rl.max_completion_length:
        return None
    return (f"`max_new_tokens: {cfg.generation.max_new_tokens}` asks for `max_length` (prompt + answer), which "
            f"`stage: {cfg.finetuning.stage}` rollouts cannot limit: set `max_completion_length` (or a positive "
            "`max_new_tokens`)")


def no_reference_model_key(cfg: LmforgeConfig) -> str | None:
    if not cfg.finetuning.ref_model:
        return None
    return (f"`stage: {cfg.finetuning.stage}` keeps the policy close to where it started: the reference is the "
            "starting model (the adapter-disabled base with LoRA); remove `ref_model`")


def reference_from_checkpoint(cfg: LmforgeConfig) -> str | None:
    """Full and freeze runs with a KL term: trl loads the reference from the policy's checkpoint folder, which
    has neither added tokens nor a from-scratch start."""
    beta = cfg.rl.beta if cfg.rl.beta is not None else DEFAULT_BETA.get(cfg.finetuning.stage, 0.05)
    model = cfg.model
    changed = model.add_tokens or model.add_special_tokens or model.resize_vocab or model.train_from_scratch
    if cfg.finetuning.finetuning_type == "lora" or not beta or not changed:
        return None
    return ("a KL term (`beta` > 0) with `finetuning_type: full`/`freeze` compares against the checkpoint as "
            "saved, which lacks the added tokens / random start of this run: set `beta: 0`, or use LoRA")


def reward_model_type_matches(cfg: LmforgeConfig) -> str | None:
    """LLaMA-Factory's `reward_model_type` (full / lora) must say what the local `reward_model` folder holds."""
    rl = cfg.rl
    folder = Path(rl.reward_model) if rl.reward_model else None
    if folder is None or not folder.is_dir() or "reward_model_type" not in rl.model_fields_set:
        return None
    holds = "lora" if (folder / "adapter_config.json").is_file() else "full"
    if holds == rl.reward_model_type:
        return None
    what = "a LoRA adapter (adapter_config.json)" if holds == "lora" else "a full checkpoint"
    return (f"`reward_model_type: {rl.reward_model_type}` but `reward_model: {rl.reward_model}` holds {what}: set "
            f"`reward_model_type: {holds}` or remove it (lmforge reads the folder)")


def vllm_rollouts_run(cfg: LmforgeConfig) -> str | None:
    """`use_vllm` needs a CUDA device and vLLM installed (trl would fail once the model is loaded)."""
    if not cfg.rl.use_vllm:
        return None
    import torch

    if not torch.cuda.is_available():
        return ("`use_vllm: true` runs the rollouts in vLLM on the GPU (trl's colocate mode), and this machine has "
                "no CUDA device: remove `use_vllm` (rollouts then use transformers' generate)")
    if importlib.util.find_spec("vllm") is None:
        return ("`use_vllm: true` needs vLLM, which is not installed: `pip install vllm` (a version your trl "
                "supports), or remove `use_vllm` (rollouts then use transformers' generate)")
    return None


def reward_columns_present(cfg: LmforgeConfig) -> str | None:
    """Every column a reward reads is in the first row of each local dataset (hub datasets are checked when
    their rows are read)."""
    if builtin_problems(cfg.rl) or not cfg.data.dataset:  # reported by `known_rewards`
        return None
    needed = required_columns(cfg.rl)
    if not needed:
        return None
    problems = []
    for spec in resolve_datasets((cfg.data.dataset or []) + (cfg.data.eval_dataset or []), cfg.data.dataset_dir):
        if spec.path is None or spec.ranking:
            continue
        # rows with images too (a text model refuses them when its data is built)
        converter = prompt_media_converter(spec, Path(cfg.data.media_dir or cfg.data.dataset_dir))
        first = next(iter_items(spec, converter, max_samples=1, on_bad_row="error", skipped=[]), None)
        if first is None:
            continue
        for column, readers in needed.items():
            if column not in first.columns:
                present = ", ".join(f"`{c}`" for c in first.columns) or "none besides the prompt"
                problems.append(f"dataset `{spec.name}` ({first.source}) has no column `{column}`, which "
                                f"{' and '.join(readers)} reads; its other columns: {present}")
    return "; ".join(problems) or None


def adaptive_kl_has_a_kl_term(cfg: LmforgeConfig) -> str | None:
    rl, stage = cfg.rl, cfg.finetuning.stage
    if rl.ppo_target is None:
        return None
    if stage not in ("rloo", "ppo"):
        return (f"`ppo_target` adapts the KL penalty of PPO's rewards, which `stage: {stage}` does not have: use "
                "`stage: ppo` or `rloo`, or remove `ppo_target` (and keep `beta` fixed)")
    if rl.beta == 0:
        return ("`ppo_target` adapts the KL coefficient by multiplying it, and `beta: 0` stays 0 (no reference is "
                "loaded): set a starting `beta` (e.g. 0.05) or remove `ppo_target`")
    return None


ONLINE_CHECKS = (has_rewards, known_rewards, whole_groups, sampled_completions, fixed_batch_size, whole_eval_groups,
                 completion_limit, no_reference_model_key, reference_from_checkpoint, no_lora_on_the_output_head,
                 no_fused_liger_cross_entropy, reward_columns_present, reward_model_type_matches, vllm_rollouts_run,
                 adaptive_kl_has_a_kl_term)
