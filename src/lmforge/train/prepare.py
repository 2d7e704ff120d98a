"""A run's tokenizer, template and data, as `lmforge train` reads them and `lmforge data` shows them."""

from typing import Any

from rich.console import Console
from rich.markup import escape

from lmforge.config import LmforgeConfig
from lmforge.data.dataset import PreparedData, build_datasets
from lmforge.data.stage_data import StageData
from lmforge.data.templates.auto import compare_with_tokenizer, family_advice
from lmforge.data.templates.select import run_template
from lmforge.data.templates.template import Template
from lmforge.errors import ConfigError, TemplateError
from lmforge.model.kind import ModelKind
from lmforge.model.loading import load_model_config, load_processor, load_tokenizer
from lmforge.train.launch import prepares_data


def cross_check_template(template: Template, tokenizer: Any, strict: bool, console: Console) -> None:
    """Warn (fail with `strict_template`) when the tokenizer's own chat template renders differently."""
    diff = compare_with_tokenizer(template, tokenizer)
    if diff is None:
        return
    message = (f"template `{template.name}` and the tokenizer's own chat template render a probe conversation "
               f"differently:\n{diff}{family_advice(tokenizer)}, or `template: auto` trains with it as it is\n")
    if strict:
        raise TemplateError(message + "(set `strict_template: false` to train anyway)")
    console.print(f"[yellow]warning:[/yellow] {escape(message)}", highlight=False)


def prepare_data(cfg: LmforgeConfig, stage: StageData, kind: ModelKind, console: Console) -> tuple[
        Any, Any, Template, PreparedData]:
    """(processor or None, tokenizer, template, data). A vision/audio-language model's processor's tokenizer
    serves the template and the plugin alike; whether its rows keep their media is decided once, in
    `build_datasets`, which then gives their collator."""
    processor = load_processor(cfg.model, kind)
    tokenizer = processor.tokenizer if processor is not None else load_tokenizer(cfg.model)
    template = run_template(cfg.model, tokenizer, preserve_thinking=cfg.data.preserve_thinking)
    cross_check_template(template, tokenizer, cfg.model.strict_template, console)
    # the model's config: the 3-D positions of Qwen2.5-VL videos need its tokens_per_second
    model_config = load_model_config(cfg.model) if processor is not None else None
    # LLaMA-Factory's `main_process_first`: one process prepares (per node, or per run on a shared file
    # system), the others read its result from the cache; they wait as long as the processes wait for each other
    waits = 0.0 if prepares_data(cfg.data.data_shared_file_system) else float(cfg.training.ddp_timeout or 1800)
    prepared = build_datasets(cfg.data, tokenizer, template, processor, stage=stage, stage_name=cfg.finetuning.stage,
                              seed=cfg.training.seed, encoder_decoder=kind.is_seq2seq, model_config=model_config,
                              wait_s=waits)
    if cfg.data.padding_free and (prepared.collator is not None or kind.is_seq2seq):
        what = "an encoder-decoder's" if kind.is_seq2seq else "media rows'"
        raise ConfigError(f"`padding_free: true` puts the examples of a text batch in one decoder row; {what} "
                          "batches are padded by their own collator: remove `padding_free`"
                          + ("" if kind.is_seq2seq else " (`packing: true` packs media rows batch by batch)"))
    if prepared.collator is not None:
        plugin = prepared.collator.encoder.plugin
        console.print(f"[bold]processor[/bold] {type(processor).__name__} with the "
                      + ("processor-native plugin" if plugin.fallback else f"`{plugin.name}` plugin"))
    return processor, tokenizer, template, prepared
