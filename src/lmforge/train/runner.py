"""`lmforge train`: data -> model -> the stage's trainer -> saved model, logs, plots, summary.

Every stage runs through here; what differs between stages is asked of the configured `Stage`
(`train/stages/`): its data, trainer, model head, reference model and plots.
"""

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.markup import escape
from transformers import EarlyStoppingCallback, TrainerCallback, set_seed
from transformers.trainer_callback import ProgressCallback

from lmforge.config import LmforgeConfig
from lmforge.data.preview import print_data_report
from lmforge.data.report import DataReport
from lmforge.data.templates.encoding import stop_token_ids
from lmforge.data.templates.jinja import prepare_saved_tokenizer
from lmforge.errors import ModelError
from lmforge.model.adapters import apply_finetuning, count_parameters, parameter_status
from lmforge.model.frozen_linears import keep_frozen_linears_in_bf16, stores_half_weight
from lmforge.model.gated_mlp import recompute_gated_activations
from lmforge.model.kind import ModelKind, reward_kind
from lmforge.model.loading import load_base_model, load_model, load_reward_model, model_path
from lmforge.model.lora import convert_pissa_adapter, merge_adapters
from lmforge.model.mixture_of_depths import use_mixture_of_depths
from lmforge.model.recast_weights import keep_frozen_weight_copies, recast_weights_in_backward
from lmforge.model.rms_norm import fuse_rms_norms, without_hub_kernels
from lmforge.model.rotary_attention import rotate_in_one_function
from lmforge.model.shared_casts import adapter_inputs_as_they_come, share_input_casts
from lmforge.model.shift_attention import use_shift_short_attention
from lmforge.model.upcast import upcast_head_output, upcast_layer_norms
from lmforge.paths import share_weight_files
from lmforge.preflight import preflight
from lmforge.train.callbacks import JsonlLogCallback, RichProgressCallback
from lmforge.train.checkpoints import CheckpointCompletionCallback, last_complete_checkpoint
from lmforge.train.cuda_only import without_cuda_only_switches
from lmforge.train.deepspeed_match import check_deepspeed_matches
from lmforge.train.fp8 import fp8_accelerate
from lmforge.train.interrupt import SaveAndStopCallback, TrainingInterrupted
from lmforge.train.module_profiler import ModuleProfilerCallback
from lmforge.train.optimizers import low_rank_arguments, set_optimizer
from lmforge.train.plots import plot_loss
from lmforge.train.precision import (
    TRAINER_BATCH_SIZE,
    compute_dtype,
    cpu_activation_savings,
    emulated_half_precision,
    emulated_pure_bf16,
    frozen_linears_in_bf16,
    frozen_linears_loaded_in_bf16,
    frozen_reference_in_bf16,
    global_batch_accumulation,
    training_defaults,
    training_load_dtype,
    weight_copies,
)
from lmforge.train.predict import predict_with_trained_model, predict_without_training
from lmforge.train.prepare import prepare_data
from lmforge.train.profiler import TorchProfilerCallback
from lmforge.train.signals import Interruption, stop_on_signals
from lmforge.train.stages import STAGES, Stage, configured_stage
from lmforge.train.summary import summary_table, training_summary, utilisation
from lmforge.train.swanlab import swanlab_callbacks
from lmforge.train.trainer import TokenCounts, counts_of_all_processes


def _checkpointing_the_model_supports(cfg: LmforgeConfig, model: Any, kwargs: dict[str, Any],
                                      console: Console) -> None:
    """Activation checkpointing only on a model class that has it (remote code may not): lmforge's default
    (a GPU, or a long CPU micro-batch) is dropped with a note; the user's own setting is refused with the fix."""
    if not kwargs.get("activation_checkpointing") or getattr(model, "supports_gradient_checkpointing", True):
        return
    training = cfg.training
    if training.gradient_checkpointing is None and training.activation_checkpointing is None:
        kwargs["activation_checkpointing"] = False
        console.print(f"  activation checkpointing: off ({type(model).__name__} does not support it)")
        return
    raise ModelError(f"{type(model).__name__} does not support activation checkpointing: remove "
                     "`gradient_checkpointing` / `activation_checkpointing` from the config (or set it to false)")


def keep_less_for_backward(cfg: LmforgeConfig, model: torch.nn.Module, kwargs: dict[str, Any],
                           longest: int | None) -> None:
    """CPU training: fewer tensors kept for the backward pass, fewer casts and passes, the same numbers (the RMSNorms'
    gradients, and q's and k's through the attention's rotation, to rounding: their backward passes are written out,
    model/rms_norm.py, model/rotary_attention.py). Long micro-batches
    (`weight_copies` says "recast") also remake in the backward pass what is cheap to remake: the weights'
    half-precision copies, the gated MLPs' products and the copies of the trained RMSNorms' outputs."""
    without_hub_kernels(model)  # before the forwards below: it would put the class forwards back over them
    copies = weight_copies(cfg, longest, bool(kwargs.get("activation_checkpointing")))
    recompute_gated_activations(model, remake_products=copies == "recast")
    fuse_rms_norms(model, remake_outputs=copies == "recast")
    rotate_in_one_function(model)
    if copies == "recast":
        recast_weights_in_backward(model)
    elif copies == "kept":
        keep_frozen_weight_copies(model)
    if training_load_dtype(cfg) == torch.float32 and not cfg.model.quantization_bit:
        # peft's casts of bf16 inputs to the float32 adapters only feed autocast's casts back to bf16
        adapter_inputs_as_they_come(model)


def training_kwargs(cfg: LmforgeConfig, longest: int | None = None) -> dict[str, Any]:
    """The TrainingArguments of the run; `longest`: the prepared data's longest example (the CPU checkpointing
    default reads it)."""
    kwargs = cfg.training.trainer_kwargs()
    for key, value in training_defaults(cfg, longest).items():  # by device: compute dtype, activation checkpointing
        kwargs.setdefault(key, value)
    if cfg.training.global_batch_size is not None:
        kwargs["gradient_accumulation_steps"] = global_batch_accumulation(
            cfg.training.global_batch_size, kwargs.get("per_device_train_batch_size") or TRAINER_BATCH_SIZE,
            int(os.environ.get("WORLD_SIZE", "1")))
    kwargs = without_cuda_only_switches(kwargs)  # tf32, NCCL, Liger: a GPU config runs where they cannot act
    kwargs["remove_unused_columns"] = False  # collators need columns the model signature does not name
    # Precision is what the config says (float32 unless bf16/fp16 is set); trl's configs would
    # otherwise switch bf16 on by themselves.
    kwargs.setdefault("bf16", False)
    if emulated := emulated_half_precision(cfg):  # fp32 where the CPU would only emulate it (see `run_training`)
        kwargs[emulated] = False
    if cfg.training.fp8:  # accelerate's fp8 autocasts in bf16 itself; TrainingArguments' bf16 would replace it
        kwargs["bf16"] = False
    if kwargs.get("fsdp") and int(os.environ.get("WORLD_SIZE", "1")) == 1:
        # transformers refuses `fsdp` in one process, where there is nothing to shard across
        kwargs.pop("fsdp")
        kwargs.pop("fsdp_config", None)
    if not torch.cuda.is_available():
        kwargs.setdefault("dataloader_pin_memory", False)  # pinned memory only helps copies to a GPU
        kwargs.setdefault("use_cpu", True)  # makes accelerate run several CPU processes as DDP (gloo)
    return kwargs


def _longest_example(report: DataReport) -> int | None:
    """Tokens of the longest example, where that bounds a padded row: not for packed rows (cutoff_len long),
    media rows (the report counts their text) or data whose lengths were not counted."""
    if report.packed_rows is not None or report.multimodal or not report.lengths:
        return None
    return max(report.lengths)


def resume_checkpoint(cfg: LmforgeConfig, output_dir: Path, console: Console) -> str | None:
    """An explicit `resume_from_checkpoint`, else the newest complete checkpoint in output_dir."""
    if cfg.training.resume_from_checkpoint:
        return cfg.training.resume_from_checkpoint
    if cfg.training.overwrite_output_dir:
        return None
    newest, moved = last_complete_checkpoint(output_dir)
    for folder in moved:
        console.print(f"[bold yellow]warning:[/bold yellow] {escape(folder.name)}: an interrupted save (moved aside)")
    return str(newest) if newest else None


def _reference_model(cfg: LmforgeConfig, stage: Stage, policy: torch.nn.Module) -> Any:
    """None lets trl use the adapter-disabled base (LoRA); full fine-tuning needs a frozen copy. The copy gets the
    policy's numerics (its CPU matmul kernel, float32 islands and, per weight, the policy's dtype): at step 0 the
    policy and the reference must give the same log-probabilities (zero rewards and KL), as the adapter-disabled
    base does."""
    if not stage.needs_reference(cfg):
        return None
    ft = cfg.finetuning
    dtype, sharded = training_load_dtype(cfg), cfg.training.shards_weights()
    half = frozen_reference_in_bf16(cfg)
    products = compute_dtype(cfg) == torch.float32  # the policy's CPU matmul route (none under autocast)
    if ft.ref_model:  # LLaMA-Factory's: its own adapters merged in, loaded in its own bits
        args = cfg.model.model_copy(update={"quantization_bit": ft.ref_model_quantization_bit})
        reference = load_base_model(args, dtype=dtype, cutoff_len=cfg.data.cutoff_len, path=ft.ref_model,
                                    sharded=sharded, fp32_products=products, bf16_linears=half)
        reference = merge_adapters(reference, ft.ref_model_adapters or [])
    elif cfg.finetuning.finetuning_type in ("lora", "oft"):  # peft adapters: trl disables them for the reference
        return None
    else:
        reference = load_base_model(cfg.model, dtype=dtype, cutoff_len=cfg.data.cutoff_len, sharded=sharded,
                                    fp32_products=products, bf16_linears=half)
    _float32_islands(reference, cfg)
    if half:
        keep_frozen_linears_in_bf16(reference.requires_grad_(False))
    _match_weight_dtypes(reference, policy)
    return reference.eval()


def _match_weight_dtypes(reference: torch.nn.Module, policy: torch.nn.Module) -> None:
    """Each reference weight in the dtype of the policy's weight of the same name: `apply_finetuning` keeps
    trainable weights in float32 (a `pure_bf16` policy computes with float32 copies of its bf16 weights). Linear
    weights the reference keeps in bf16 stay so: under autocast its products are the policy's bf16 ones."""
    dtypes = {name: param.dtype for name, param in policy.named_parameters()}
    kept = {id(module.weight) for module in reference.modules() if stores_half_weight(module)}
    for name, param in reference.named_parameters():
        dtype = dtypes.get(name, param.dtype)
        if param.dtype != dtype and param.dtype.is_floating_point and id(param) not in kept:
            param.data = param.data.to(dtype)


def _float32_islands(model: Any, cfg: LmforgeConfig) -> None:
    """`upcast_layernorm` / `upcast_lmhead_output` on this model instance."""
    if cfg.model.upcast_layernorm:
        upcast_layer_norms(model)
    if cfg.model.upcast_lmhead_output:
        upcast_head_output(model)


def run_training(cfg: LmforgeConfig, console: Console | None = None,
                 callbacks: Sequence[TrainerCallback] = (), checked: ModelKind | None = None) -> dict[str, Any]:
    """Train and save, and/or predict (`do_predict`); returns the summary (also written to
    `output_dir/train_summary.json`) with the prediction scores. `callbacks`: the engine's own (Ray's report).
    `checked`: what `preflight(cfg, "train")` returned when the caller ran it (`lmforge train` does, before it
    imports this module), so it is not run twice."""
    console = console or Console()
    if not cfg.training.runs_training():  # LLaMA-Factory's prediction configs: `do_predict` alone
        configured_stage(cfg)  # the stage's own rules: prediction needs one that generates
        return predict_without_training(cfg, console)
    kind = preflight(cfg, "train") if checked is None else checked  # the configured stage checked too
    stage = STAGES.get(cfg.finetuning.stage)
    processor, tokenizer, template, prepared = prepare_data(cfg, stage.data, kind, console)
    print_data_report(console, prepared, tokenizer, template.name)

    longest = _longest_example(prepared.report)
    kwargs = training_kwargs(cfg, longest)
    if (deepspeed := cfg.training.deepspeed_settings()) is not None:  # transformers compares them after loading
        check_deepspeed_matches(deepspeed, kwargs, int(os.environ.get("WORLD_SIZE", "1")))
    output_dir = Path(kwargs["output_dir"])
    if cfg.training.fsdp and not kwargs.get("fsdp"):
        console.print("note: `fsdp` shards the model across processes; this run has one, which trains the whole "
                      "model (`--nproc N` or torchrun start several)", style="cyan", highlight=False, markup=False)
    elif kwargs.get("fsdp") and not torch.cuda.is_available():
        console.print("[bold yellow]warning:[/bold yellow] `fsdp` needs GPUs; on CPU transformers runs the "
                      "processes as plain DDP (every process holds the whole model)")
    if emulated := emulated_half_precision(cfg):
        console.print(f"note: `{emulated}: true` asks for {emulated} mixed precision, which this CPU has no "
                      f"arithmetic for (no AMX or AVX-512 {emulated.upper()}): torch would emulate every product, tens "
                      f"of times slower than fp32; training in fp32 (on a GPU, or a CPU with it, in {emulated} as "
                      "written)", style="cyan", highlight=False, markup=False)
    elif emulated_pure_bf16(cfg):
        console.print("[bold yellow]warning:[/bold yellow] `pure_bf16: true` keeps the weights in bf16, which this "
                      "CPU has no arithmetic for (no AMX or AVX-512 BF16): torch emulates every product, about 100x "
                      "slower than fp32; `pure_bf16: false` trains in fp32 (twice the weights' memory)")
    set_seed(kwargs.get("seed", 42))  # adapter and head initialisation must not depend on the run
    sharded = cfg.training.shards_weights()
    fp32_products = compute_dtype(cfg) == torch.float32  # under autocast the CPU matmul route changes nothing
    if stage.reward_head:
        reward = reward_kind(kind)  # refused before any weight loads
        base = load_reward_model(cfg.model, tokenizer, dtype=training_load_dtype(cfg), sharded=sharded, kind=kind,
                                 fp32_products=fp32_products, seed=cfg.training.seed)
        kind = reward
    else:
        base = load_model(cfg.model, dtype=training_load_dtype(cfg), cutoff_len=cfg.data.cutoff_len,
                          tokenizer=tokenizer, seed=cfg.training.seed, sharded=sharded, fp32_products=fp32_products,
                          bf16_linears=frozen_linears_loaded_in_bf16(cfg))
    console.print(f"[bold]model[/bold] {type(base).__name__} via {kind.auto_class} ({kind.reason})")
    _float32_islands(base, cfg)
    base.config.use_cache = False  # training never decodes; a cache only costs memory
    if cfg.model.shift_attn:  # S²-Attn on the trained model only (a reference model keeps full attention)
        use_shift_short_attention(base)
        console.print("  shift_attn: S²-Attn while training (4 groups, half of the heads shifted); full attention "
                      "in evaluation and the saved model")
    if cfg.model.mixture_of_depths:  # routers on the trained model only, saved with it
        routed = use_mixture_of_depths(base, cfg.model.mixture_of_depths, model_path(cfg.model))
        console.print(f"  mixture_of_depths ({cfg.model.mixture_of_depths}): layers {routed} route 12.5% of each "
                      "sequence's tokens" + (" (the routers the load report lists as unexpected, loaded now)"
                                             if cfg.model.mixture_of_depths == "load" else ""))
    _checkpointing_the_model_supports(cfg, base, kwargs, console)
    new_tokens = bool(cfg.model.add_tokens or cfg.model.add_special_tokens)
    model = apply_finetuning(base, cfg.finetuning, kind, adapters=cfg.model.adapter_paths(),
                             new_tokens=new_tokens, sharded=sharded, output_dir=cfg.training.output_dir)
    if frozen_linears_in_bf16(cfg):  # lossless: autocast cast them to bf16 on every forward
        keep_frozen_linears_in_bf16(model)
    if not kwargs.get("torch_compile"):  # compiled graphs would break at the hooks' checks
        share_input_casts(model)  # under autocast, one half-precision copy of an input its projections share
    if cpu_activation_savings(cfg):
        keep_less_for_backward(cfg, model, kwargs, longest)
    trainable, total = count_parameters(model)
    console.print(f"  {cfg.finetuning.finetuning_type}: {trainable:,} trainable of {total:,} parameters")
    if cfg.model.print_param_status:
        console.print(parameter_status(model), highlight=False, markup=False)

    kwargs.update(low_rank_arguments(cfg.optimizer, cfg.training.optim, model))  # GaLore, APOLLO
    with fp8_accelerate(cfg.training):  # accelerate reads its FP8 settings while the trainer is built
        trainer = stage.build_trainer(cfg, model, tokenizer, prepared, kwargs, _reference_model(cfg, stage, model))
    if getattr(trainer.data_collator, "padding_free", False):
        console.print("  padding_free: each batch's examples in one row, no padding computed (`padding_free: false` "
                      "pads them)")
    set_optimizer(trainer, cfg)  # BAdam, Adam-mini, Muon, LoRA+
    if cfg.profiler.enable_torch_profiler:
        trainer.add_callback(TorchProfilerCallback(cfg.profiler))
    if cfg.profiler.profile_modules:
        trainer.add_callback(ModuleProfilerCallback(cfg.profiler.profile_modules, console))
    if cfg.swanlab.use_swanlab:
        callbacks = [*swanlab_callbacks(cfg.swanlab), *callbacks]
    if cfg.training.early_stopping_steps:
        trainer.add_callback(EarlyStoppingCallback(early_stopping_patience=cfg.training.early_stopping_steps))
    counts: TokenCounts = getattr(trainer, "token_counts", TokenCounts())
    trainer.remove_callback(ProgressCallback)
    progress = RichProgressCallback(console)
    trainer.add_callback(progress)
    output_dir.mkdir(parents=True, exist_ok=True)
    log = JsonlLogCallback(output_dir, counts, (*stage.logs, *stage.plots))  # what the UI plots is in the log
    trainer.add_callback(log)

    trainer.add_callback(CheckpointCompletionCallback())
    for callback in callbacks:
        trainer.add_callback(callback)
    resume = resume_checkpoint(cfg, output_dir, console)
    if resume:
        console.print(f"resuming from {resume} (set `overwrite_output_dir: true` to start afresh)", markup=False)
    result = _train_until_done_or_signal(trainer, progress, resume, output_dir)
    trainer.save_model(str(output_dir))  # every process takes part (sharded engines gather here)
    if trainer.is_world_process_zero():
        convert_pissa_adapter(trainer.model, cfg.finetuning, output_dir)
        _save_outputs(trainer, tokenizer, template, output_dir, stage, processor)
        share_weight_files(output_dir)

    metrics = dict(result.metrics)
    trainer.save_metrics("train", metrics)  # train_results.json and all_results.json, as transformers writes them
    if prepared.evaluation is not None:
        evaluation = _final_evaluation(trainer)
        trainer.save_metrics("eval", evaluation)
        metrics.update(evaluation)
    counts = counts_of_all_processes(counts, trainer.accelerator)  # every process calls this
    if not trainer.is_world_process_zero():
        return {}
    flop_rates = utilisation(base.config, counts, float(metrics.get("train_runtime", 0.0)),
                             finetuning_type=cfg.finetuning.finetuning_type, trainable=trainable,
                             dtype=compute_dtype(cfg))
    summary = training_summary(metrics, counts, trainer.state.log_history, trainer.state.global_step,
                               trainable, total, flop_rates)
    if log.start_step:
        summary["steps_this_run"] = trainer.state.global_step - log.start_step
    summary.update({key: round(value, 4) for key, value in metrics.items()
                    if key.startswith("eval_") and isinstance(value, float)})
    if cfg.training.include_effective_tokens_per_second:
        if counts.non_pad_tokens:  # LLaMA-Factory's name for the tokens of the examples (no padding) per second
            summary["effective_tokens_per_sec"] = summary["non_pad_tokens_per_s"]
        else:
            console.print(f"[bold yellow]warning:[/bold yellow] `include_effective_tokens_per_second`: the "
                          f"`{stage.name}` trainer does not count tokens (pt and sft do)")
    (output_dir / "train_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    plots = [p for key in stage.plots if (p := plot_loss(trainer.state.log_history, output_dir, key))]
    console.print(summary_table(summary))
    console.print(f"saved to {output_dir}" + (f"; plots: {', '.join(p.name for p in plots)}" if plots else ""),
                  markup=False)
    if cfg.training.do_predict:
        summary.update(predict_with_trained_model(cfg, trainer.model, tokenizer, console))
    return summary


def _train_until_done_or_signal(trainer: Any, progress: RichProgressCallback, resume: str | None,
                                output_dir: Path) -> Any:
    """`trainer.train()`; Ctrl-C or SIGTERM (to any process) saves a checkpoint after the running step and
    raises `TrainingInterrupted` in every process."""
    interruption = Interruption()
    trainer.add_callback(SaveAndStopCallback(interruption))
    try:
        with stop_on_signals(interruption):
            result = trainer.train(resume_from_checkpoint=resume)
    finally:
        progress.close()  # a KeyboardInterrupt must not leave the bar's line open
    state = trainer.state
    if interruption.requested and state.global_step < state.max_steps:
        raise TrainingInterrupted(interruption, state.global_step, state.max_steps,
                                  str(output_dir / f"checkpoint-{state.global_step}"))
    return result


def _final_evaluation(trainer: Any) -> dict[str, Any]:
    """The evaluation of the final model; when the eval strategy already ran it at the last step, its
    logged metrics (evaluating again would log the same point twice)."""
    step = trainer.state.global_step
    for entry in reversed(trainer.state.log_history):
        if "eval_loss" in entry and entry.get("step") == step:
            return {key: value for key, value in entry.items() if key.startswith("eval_")}
    return trainer.evaluate()


def _save_outputs(trainer: Any, tokenizer: Any, template: Any, output_dir: Path, stage: Stage,
                  processor: Any = None) -> None:
    """What lmforge adds beside the model (main process only): tokenizer (inside the processor of a
    multimodal model, so chat and export reload both), generation config, state."""
    prepare_saved_tokenizer(template, tokenizer)
    if processor is not None:
        processor.chat_template = tokenizer.chat_template  # one chat template file, the training one
        processor.save_pretrained(output_dir)
    else:
        tokenizer.save_pretrained(output_dir)
    if not stage.reward_head:
        generation_config = trainer.model.generation_config
        generation_config.eos_token_id = stop_token_ids(template, tokenizer)
        generation_config.pad_token_id = tokenizer.pad_token_id
        generation_config.save_pretrained(output_dir)
    trainer.save_state()
