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
from lmforge.data.collator import SftCollator
from lmforge.data.dataset import build_sft_datasets
from lmforge.data.templates.auto import compare_with_tokenizer, resolve_template
from lmforge.data.templates.encoding import stop_token_ids
from lmforge.data.templates.jinja import prepare_saved_tokenizer
from lmforge.data.templates.select import select_template
from lmforge.data.templates.template import Template
from lmforge.errors import ConfigError, TemplateError
from lmforge.model.adapters import apply_finetuning, count_parameters
from lmforge.model.loading import load_causal_lm, load_tokenizer
from lmforge.preflight import preflight
from lmforge.train.callbacks import JsonlLogCallback, RichProgressCallback
from lmforge.train.plots import plot_loss
from lmforge.train.summary import summary_table, training_summary
from lmforge.train.trainer import LmforgeTrainer


def _training_arguments(cfg: LmforgeConfig) -> TrainingArguments:
    kwargs = cfg.training.trainer_kwargs()
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


def _cross_check(template: Template, tokenizer: Any, strict: bool, console: Console) -> None:
    """Warn (fail with `strict_template`) when the tokenizer's own chat template renders differently."""
    diff = compare_with_tokenizer(template, tokenizer)
    if diff is None:
        return
    message = (f"template `{template.name}` and the tokenizer's own chat template render a probe conversation "
               f"differently:\n{diff}")
    if strict:
        raise TemplateError(message + "(set `strict_template: false` to train anyway)")
    console.print(f"[yellow]warning:[/yellow] {message}", highlight=False, markup=False)


def run_sft(cfg: LmforgeConfig, console: Console | None = None) -> dict[str, Any]:
    """Train and save; returns the summary (also written to `output_dir/train_summary.json`)."""
    console = console or Console()
    preflight(cfg, "train")
    tokenizer = load_tokenizer(cfg)
    template = resolve_template(
        select_template(cfg.model.template, cfg.model.model_name_or_path, cfg.model.tool_format), tokenizer)
    _cross_check(template, tokenizer, cfg.model.strict_template, console)
    train_set, eval_set, report = build_sft_datasets(cfg, tokenizer, template)
    console.print(f"[bold]data[/bold] (template `{template.name}`)")
    for line in report.lines():
        console.print(f"  {line}")

    args = _training_arguments(cfg)
    output_dir = Path(args.output_dir)
    model = apply_finetuning(load_causal_lm(cfg, dtype=torch.float32), cfg)
    trainable, total = count_parameters(model)
    console.print(f"[bold]model[/bold] {type(model).__name__}, {cfg.finetuning.finetuning_type}: "
                  f"{trainable:,} trainable of {total:,} parameters")

    trainer = LmforgeTrainer(
        model=model, args=args, train_dataset=train_set, eval_dataset=eval_set,
        data_collator=SftCollator(pad_token_id=tokenizer.pad_token_id), processing_class=tokenizer)
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(RichProgressCallback(console))
    output_dir.mkdir(parents=True, exist_ok=True)
    trainer.add_callback(JsonlLogCallback(output_dir, trainer.token_counts))

    resume = _resume_checkpoint(cfg, output_dir)
    if resume:
        console.print(f"resuming from {resume} (set `overwrite_output_dir: true` to start afresh)")
    result = trainer.train(resume_from_checkpoint=resume)

    trainer.save_model(str(output_dir))
    prepare_saved_tokenizer(template, tokenizer)
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
