"""`lmforge train`: data -> model -> the stage's trainer -> saved model, logs, plots, summary.

Every stage runs through here; a stage module only builds its trainer (see `train/stages/`).
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from transformers import set_seed
from transformers.trainer_callback import ProgressCallback

from lmforge.config import LmforgeConfig
from lmforge.data.dataset import build_datasets, multimodal_rows
from lmforge.data.multimodal.collator import MultimodalCollator, multimodal_collator
from lmforge.data.multimodal.plugin import mm_plugin_for
from lmforge.data.preview import print_data_report
from lmforge.data.templates.auto import compare_with_tokenizer
from lmforge.data.templates.encoding import stop_token_ids
from lmforge.data.templates.jinja import prepare_saved_tokenizer
from lmforge.data.templates.select import run_template
from lmforge.data.templates.template import Template
from lmforge.errors import TemplateError
from lmforge.model.adapters import apply_finetuning, count_parameters
from lmforge.model.kind import reward_kind
from lmforge.model.loading import (
    load_causal_lm,
    load_model,
    load_model_config,
    load_processor,
    load_reward_model,
    load_tokenizer,
)
from lmforge.model.lora import save_adapter
from lmforge.model.precision import training_defaults, training_load_dtype
from lmforge.preflight import preflight
from lmforge.train.callbacks import JsonlLogCallback, RichProgressCallback
from lmforge.train.checkpoints import CheckpointCompletionCallback, last_complete_checkpoint
from lmforge.train.plots import plot_loss
from lmforge.train.predict import predict_with_trained_model, predict_without_training
from lmforge.train.stages import causal, dpo, kto, rm
from lmforge.train.summary import summary_table, training_summary
from lmforge.train.trainer import TokenCounts


@dataclass(frozen=True)
class Stage:
    build_trainer: Callable[..., Any]
    reward_head: bool = False
    needs_reference: Callable[[LmforgeConfig], bool] = lambda cfg: False
    plotted: tuple[str, ...] = ("loss", "eval_loss")


STAGES: dict[str, Stage] = {
    "pt": Stage(causal.build_trainer, plotted=("loss", "eval_loss", "eval_accuracy")),
    "sft": Stage(causal.build_trainer, plotted=("loss", "eval_loss", "eval_accuracy")),
    "dpo": Stage(dpo.build_trainer, needs_reference=dpo.needs_reference,
                 plotted=("loss", "eval_loss", "rewards/accuracies")),
    "kto": Stage(kto.build_trainer, needs_reference=lambda cfg: True),
    "rm": Stage(rm.build_trainer, reward_head=True, plotted=("loss", "eval_loss", "accuracy", "eval_accuracy")),
}


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
        return load_causal_lm(cfg, dtype=torch.float32, path=cfg.finetuning.ref_model).eval()
    if cfg.finetuning.finetuning_type == "lora":
        return None
    return load_causal_lm(cfg, dtype=torch.float32).eval()


def cross_check_template(template: Template, tokenizer: Any, strict: bool, console: Console) -> None:
    """Warn (fail with `strict_template`) when the tokenizer's own chat template renders differently."""
    diff = compare_with_tokenizer(template, tokenizer)
    if diff is None:
        return
    message = (f"template `{template.name}` and the tokenizer's own chat template render a probe conversation "
               f"differently:\n{diff}")
    if strict:
        raise TemplateError(message + "(set `strict_template: false` to train anyway)")
    console.print(f"[yellow]warning:[/yellow] {message}", highlight=False, markup=False)


def _multimodal_collator(cfg: LmforgeConfig, processor: Any, template: Template,
                         console: Console) -> MultimodalCollator | None:
    """The collator of a multimodal model's rows (None for a text model), built before the data is read
    so a template of another family or a refused `packing` fails first."""
    if processor is None:
        return None
    if not multimodal_rows(cfg, processor):
        why = (f"`stage: {cfg.finetuning.stage}` takes no media" if mm_plugin_for(processor) else
               f"lmforge has no multimodal plugin for {type(processor).__name__}")
        console.print(f"[bold yellow]warning:[/bold yellow] {why}: this run trains on text only")
        return None
    # the model's config: the 3-D positions of Qwen2.5-VL videos need its tokens_per_second
    collator = multimodal_collator(cfg, processor, template, load_model_config(cfg))
    console.print(f"[bold]processor[/bold] {type(processor).__name__} with the `{collator.encoder.plugin.name}` "
                  "plugin")
    return collator


def run_training(cfg: LmforgeConfig, console: Console | None = None) -> dict[str, Any]:
    """Train and save, and/or predict (`do_predict`); returns the summary (also written to
    `output_dir/train_summary.json`) with the prediction scores."""
    console = console or Console()
    if not cfg.training.runs_training():  # LLaMA-Factory's prediction configs: `do_predict` alone
        return predict_without_training(cfg, console)
    kind = preflight(cfg, "train")
    stage = STAGES[cfg.finetuning.stage]
    # A vision/audio-language model: its processor's tokenizer serves the template and the plugin alike.
    processor = load_processor(cfg, kind)
    tokenizer = processor.tokenizer if processor is not None else load_tokenizer(cfg)
    template = run_template(cfg, tokenizer)
    cross_check_template(template, tokenizer, cfg.model.strict_template, console)
    mm_collator = _multimodal_collator(cfg, processor, template, console)
    prepared = build_datasets(cfg, tokenizer, template, processor, encoder_decoder=kind.is_seq2seq)
    print_data_report(console, prepared, tokenizer, template.name,
                      encoder=mm_collator.encoder if mm_collator else None)

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

    extra: dict[str, Any] = {"ref_model": _reference_model(cfg, stage)} if stage.needs_reference(cfg) else {}
    if mm_collator is not None:
        extra["mm_collator"] = mm_collator
    trainer = stage.build_trainer(cfg, model, tokenizer, prepared, kwargs, **extra)
    counts: TokenCounts = getattr(trainer, "token_counts", TokenCounts())
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(RichProgressCallback(console))
    output_dir.mkdir(parents=True, exist_ok=True)
    trainer.add_callback(JsonlLogCallback(output_dir, counts))

    trainer.add_callback(CheckpointCompletionCallback())
    resume = resume_checkpoint(cfg, output_dir, console)
    if resume:
        console.print(f"resuming from {resume} (set `overwrite_output_dir: true` to start afresh)")
    result = trainer.train(resume_from_checkpoint=resume)
    trainer.save_model(str(output_dir))  # every process takes part (sharded engines gather here)
    if trainer.is_world_process_zero():
        save_adapter(trainer.model, cfg, output_dir)
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
    plots = [p for key in stage.plotted if (p := plot_loss(trainer.state.log_history, output_dir, key))]
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
