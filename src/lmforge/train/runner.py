"""`lmforge train`: data -> model -> the stage's trainer -> saved model, logs, plots, summary.

Every stage runs through here; what differs between stages is asked of the configured `Stage`
(`train/stages/`): its data, trainer, model head, reference model and plots.
"""

import json
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from transformers import set_seed
from transformers.trainer_callback import ProgressCallback

from lmforge.config import LmforgeConfig
from lmforge.data.preview import print_data_report
from lmforge.data.templates.encoding import stop_token_ids
from lmforge.data.templates.jinja import prepare_saved_tokenizer
from lmforge.model.adapters import apply_finetuning, count_parameters
from lmforge.model.kind import reward_kind
from lmforge.model.loading import load_base_model, load_model, load_reward_model
from lmforge.model.lora import convert_pissa_adapter
from lmforge.preflight import preflight
from lmforge.train.callbacks import JsonlLogCallback, RichProgressCallback
from lmforge.train.checkpoints import CheckpointCompletionCallback, last_complete_checkpoint
from lmforge.train.plots import plot_loss
from lmforge.train.precision import training_defaults, training_load_dtype
from lmforge.train.predict import predict_with_trained_model, predict_without_training
from lmforge.train.prepare import prepare_data
from lmforge.train.stages import STAGES, Stage, configured_stage
from lmforge.train.summary import summary_table, training_summary
from lmforge.train.trainer import TokenCounts


def training_kwargs(cfg: LmforgeConfig) -> dict[str, Any]:
    kwargs = cfg.training.trainer_kwargs()
    for key, value in training_defaults(cfg).items():  # by device: compute dtype, activation checkpointing
        kwargs.setdefault(key, value)
    kwargs["remove_unused_columns"] = False  # collators need columns the model signature does not name
    # Precision is what the config says (float32 unless bf16/fp16 is set); trl's configs would
    # otherwise switch bf16 on by themselves.
    kwargs.setdefault("bf16", False)
    if not torch.cuda.is_available():
        kwargs.setdefault("dataloader_pin_memory", False)  # pinned memory only helps copies to a GPU
        kwargs.setdefault("use_cpu", True)  # makes accelerate run several CPU processes as DDP (gloo)
    return kwargs


def resume_checkpoint(cfg: LmforgeConfig, output_dir: Path, console: Console) -> str | None:
    """An explicit `resume_from_checkpoint`, else the newest complete checkpoint in output_dir."""
    if cfg.training.resume_from_checkpoint:
        return cfg.training.resume_from_checkpoint
    if cfg.training.overwrite_output_dir:
        return None
    newest, moved = last_complete_checkpoint(output_dir)
    for folder in moved:
        console.print(f"[bold yellow]warning:[/bold yellow] {folder.name}: an interrupted save (moved aside)")
    return str(newest) if newest else None


def _reference_model(cfg: LmforgeConfig, stage: Stage) -> Any:
    """None lets trl use the adapter-disabled base (LoRA); full fine-tuning needs a frozen copy."""
    if not stage.needs_reference(cfg):
        return None
    if cfg.finetuning.ref_model:
        return load_base_model(cfg, dtype=torch.float32, path=cfg.finetuning.ref_model).eval()
    if cfg.finetuning.finetuning_type == "lora":
        return None
    return load_base_model(cfg, dtype=torch.float32).eval()


def run_training(cfg: LmforgeConfig, console: Console | None = None) -> dict[str, Any]:
    """Train and save, and/or predict (`do_predict`); returns the summary (also written to
    `output_dir/train_summary.json`) with the prediction scores."""
    console = console or Console()
    if not cfg.training.runs_training():  # LLaMA-Factory's prediction configs: `do_predict` alone
        configured_stage(cfg)  # the stage's own rules: prediction needs one that generates
        return predict_without_training(cfg, console)
    kind = preflight(cfg, "train")  # the configured stage checked too
    stage = STAGES.get(cfg.finetuning.stage)
    processor, tokenizer, template, prepared = prepare_data(cfg, stage.data, kind, console)
    print_data_report(console, prepared, tokenizer, template.name)

    kwargs = training_kwargs(cfg)
    output_dir = Path(kwargs["output_dir"])
    if kwargs.get("fsdp") and not torch.cuda.is_available():
        console.print("[bold yellow]warning:[/bold yellow] `fsdp` needs GPUs; on CPU transformers runs the "
                      "processes as plain DDP (every process holds the whole model)")
    set_seed(kwargs.get("seed", 42))  # adapter and head initialisation must not depend on the run
    if stage.reward_head:
        base, kind = load_reward_model(cfg, tokenizer, dtype=training_load_dtype(cfg)), reward_kind(kind)
    else:
        base = load_model(cfg, dtype=training_load_dtype(cfg), tokenizer=tokenizer)
    console.print(f"[bold]model[/bold] {type(base).__name__} via {kind.auto_class} ({kind.reason})")
    base.config.use_cache = False  # training never decodes; a cache only costs memory
    new_tokens = bool(cfg.model.add_tokens or cfg.model.add_special_tokens)
    model = apply_finetuning(base, cfg, kind, new_tokens=new_tokens)
    trainable, total = count_parameters(model)
    console.print(f"  {cfg.finetuning.finetuning_type}: {trainable:,} trainable of {total:,} parameters")

    trainer = stage.build_trainer(cfg, model, tokenizer, prepared, kwargs, _reference_model(cfg, stage))
    counts: TokenCounts = getattr(trainer, "token_counts", TokenCounts())
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(RichProgressCallback(console))
    output_dir.mkdir(parents=True, exist_ok=True)
    trainer.add_callback(JsonlLogCallback(output_dir, counts, stage.logs))

    trainer.add_callback(CheckpointCompletionCallback())
    resume = resume_checkpoint(cfg, output_dir, console)
    if resume:
        console.print(f"resuming from {resume} (set `overwrite_output_dir: true` to start afresh)")
    result = trainer.train(resume_from_checkpoint=resume)
    trainer.save_model(str(output_dir))  # every process takes part (sharded engines gather here)
    if trainer.is_world_process_zero():
        convert_pissa_adapter(trainer.model, cfg, output_dir)
        _save_outputs(trainer, tokenizer, template, output_dir, stage, processor)

    metrics = dict(result.metrics)
    if prepared.evaluation is not None:
        metrics.update(trainer.evaluate())
    if not trainer.is_world_process_zero():
        return {}
    summary = training_summary(metrics, counts, trainer.state.log_history, trainer.state.global_step,
                               trainable, total)
    summary.update({key: round(value, 4) for key, value in metrics.items()
                    if key.startswith("eval_") and isinstance(value, float)})
    (output_dir / "train_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    plots = [p for key in stage.plots if (p := plot_loss(trainer.state.log_history, output_dir, key))]
    console.print(summary_table(summary))
    console.print(f"saved to {output_dir}" + (f"; plots: {', '.join(p.name for p in plots)}" if plots else ""))
    if cfg.training.do_predict:
        summary.update(predict_with_trained_model(cfg, trainer.model, tokenizer, console))
    return summary


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
