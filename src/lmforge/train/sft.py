"""`lmforge train` for `stage: sft`: data -> model -> Trainer -> saved model, logs, plot, summary."""

import json
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from transformers import TrainingArguments
from transformers.trainer_callback import ProgressCallback
from transformers.trainer_utils import get_last_checkpoint

from lmforge.config import LmforgeConfig
from lmforge.data.collator import Seq2SeqCollator, SftCollator
from lmforge.data.dataset import build_sft_datasets
from lmforge.data.templates.encoding import stop_token_ids
from lmforge.data.templates.jinja import template_to_jinja
from lmforge.data.templates.select import select_template
from lmforge.errors import ConfigError
from lmforge.model.adapters import apply_finetuning, count_parameters
from lmforge.model.loading import load_model, load_tokenizer
from lmforge.model.lora import loraplus_optimizer, save_adapter
from lmforge.model.precision import training_defaults, training_load_dtype
from lmforge.preflight import preflight
from lmforge.train.callbacks import JsonlLogCallback, RichProgressCallback
from lmforge.train.plots import plot_loss
from lmforge.train.summary import summary_table, training_summary
from lmforge.train.trainer import LmforgeTrainer


def _training_arguments(cfg: LmforgeConfig) -> TrainingArguments:
    kwargs = cfg.training.trainer_kwargs()
    for key, value in training_defaults(cfg).items():  # device-dependent: compute dtype, checkpointing
        kwargs.setdefault(key, value)
    kwargs["remove_unused_columns"] = False  # our collator needs `labels`, which the model signature hides
    if not torch.cuda.is_available():  # pinned memory only helps copies to an accelerator
        kwargs.setdefault("dataloader_pin_memory", False)
    try:
        return TrainingArguments(**kwargs)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"invalid training arguments in {cfg.source or 'config'}: {err}") from None


def _resume_checkpoint(cfg: LmforgeConfig, output_dir: Path) -> str | None:
    if cfg.training.resume_from_checkpoint:
        return cfg.training.resume_from_checkpoint
    if cfg.training.overwrite_output_dir or not output_dir.is_dir():
        return None
    return get_last_checkpoint(str(output_dir))


def run_sft(cfg: LmforgeConfig, console: Console | None = None) -> dict[str, Any]:
    """Train and save; returns the summary (also written to `output_dir/train_summary.json`)."""
    console = console or Console()
    kind = preflight(cfg, "train")
    template = select_template(cfg.model.template, cfg.model.model_name_or_path)
    tokenizer = load_tokenizer(cfg)
    train_set, eval_set, report = build_sft_datasets(cfg, tokenizer, template, encoder_decoder=kind.is_seq2seq)
    console.print(f"[bold]data[/bold] (template `{template.name}`)")
    for line in report.lines():
        console.print(f"  {line}")

    args = _training_arguments(cfg)
    output_dir = Path(args.output_dir)
    base = load_model(cfg, dtype=training_load_dtype(cfg), tokenizer=tokenizer)
    console.print(f"[bold]model[/bold] {type(base).__name__} via {kind.auto_class} ({kind.reason})")
    new_tokens = bool(cfg.model.add_tokens or cfg.model.add_special_tokens)
    model = apply_finetuning(base, cfg, kind, new_tokens=new_tokens)
    trainable, total = count_parameters(model)
    console.print(f"  {cfg.finetuning.finetuning_type}: {trainable:,} trainable of {total:,} parameters")

    collator = (Seq2SeqCollator if kind.is_seq2seq else SftCollator)(pad_token_id=tokenizer.pad_token_id)
    trainer = LmforgeTrainer(
        model=model, args=args, train_dataset=train_set, eval_dataset=eval_set, data_collator=collator,
        processing_class=tokenizer, optimizers=(loraplus_optimizer(model, cfg, args), None))
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(RichProgressCallback(console))
    output_dir.mkdir(parents=True, exist_ok=True)
    trainer.add_callback(JsonlLogCallback(output_dir, trainer.token_counts))

    resume = _resume_checkpoint(cfg, output_dir)
    if resume:
        console.print(f"resuming from {resume} (set `overwrite_output_dir: true` to start afresh)")
    result = trainer.train(resume_from_checkpoint=resume)

    trainer.save_model(str(output_dir))
    save_adapter(trainer.model, cfg, output_dir)
    tokenizer.chat_template = template_to_jinja(template)
    tokenizer.save_pretrained(output_dir)
    generation_config = trainer.model.generation_config
    generation_config.eos_token_id = stop_token_ids(template, tokenizer)
    generation_config.pad_token_id = tokenizer.pad_token_id
    generation_config.save_pretrained(output_dir)
    trainer.save_state()

    metrics = dict(result.metrics)
    if eval_set is not None:
        metrics.update(trainer.evaluate())
    summary = training_summary(metrics, trainer.token_counts, trainer.state.log_history,
                               trainer.state.global_step, trainable, total)
    if "eval_loss" in metrics:
        summary["eval_loss"] = round(metrics["eval_loss"], 4)
    (output_dir / "train_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    plot = plot_loss(trainer.state.log_history, output_dir)
    console.print(summary_table(summary))
    console.print(f"saved to {output_dir}" + (f"; loss plot {plot}" if plot else ""))
    return summary
