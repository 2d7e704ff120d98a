"""`lmforge export`: merge adapters, save sharded safetensors, reload and verify the logits."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from peft import PeftModel
from rich.console import Console
from transformers import AutoModelForCausalLM, PreTrainedTokenizerBase

from lmforge.config import LmforgeConfig
from lmforge.data.templates.auto import resolve_template
from lmforge.data.templates.encoding import encode_conversation, stop_token_ids
from lmforge.data.templates.jinja import prepare_saved_tokenizer
from lmforge.data.templates.select import select_template
from lmforge.data.templates.template import Message, Template
from lmforge.errors import ExportError
from lmforge.model.adapters import merge_adapters
from lmforge.model.loading import inference_dtype, load_causal_lm, load_tokenizer
from lmforge.preflight import preflight

PROBE_PROMPTS = ["Who are you?", "What is the capital of France?", "Write one sentence about the sea."]
# Max |logit| difference allowed between the exported and the source model, by export dtype.
DEFAULT_TOLERANCE = {torch.float32: 1e-3, torch.bfloat16: 0.25, torch.float16: 0.05}


@dataclass
class ExportResult:
    export_dir: Path
    files: list[str]
    max_abs_logit_diff: float
    tolerance: float


def probe_batch(template: Template, tokenizer: PreTrainedTokenizerBase) -> dict[str, torch.Tensor]:
    """Left-padded prompts rendered with the template, for logit comparisons."""
    rows = [encode_conversation(template, tokenizer, [Message("user", p)], add_generation_prompt=True).flat()
            for p in PROBE_PROMPTS]
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for index, row in enumerate(rows):
        ids[index, width - len(row):] = torch.tensor(row)
        mask[index, width - len(row):] = 1
    return {"input_ids": ids, "attention_mask": mask}


@torch.inference_mode()
def masked_logits(model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    logits = model(**batch).logits.float()
    return logits[batch["attention_mask"].bool()]


def run_export(cfg: LmforgeConfig, console: Console | None = None) -> ExportResult:
    console = console or Console()
    preflight(cfg, "export")
    tokenizer = load_tokenizer(cfg)
    template = resolve_template(
        select_template(cfg.model.template, cfg.model.model_name_or_path, cfg.model.tool_format), tokenizer)
    dtype = inference_dtype(cfg)
    export_dir = Path(cfg.export.export_dir or "")
    tolerance = cfg.export.export_tolerance or DEFAULT_TOLERANCE[dtype]

    adapters = cfg.model.adapter_name_or_path or []
    model = merge_adapters(load_causal_lm(cfg, dtype=dtype), adapters[:-1])
    if adapters:  # the last adapter stays unmerged for the reference logits
        model = PeftModel.from_pretrained(model, adapters[-1])
    batch = probe_batch(template, tokenizer)
    reference = masked_logits(model.eval(), batch)
    if adapters:
        model = model.merge_and_unload()
    console.print(f"merged {len(adapters)} adapter(s); saving {dtype} shards of at most "
                  f"{cfg.export.export_size} GB to {export_dir}")

    export_dir.mkdir(parents=True, exist_ok=True)
    model.generation_config.eos_token_id = stop_token_ids(template, tokenizer)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(export_dir, max_shard_size=f"{cfg.export.export_size}GB")
    prepare_saved_tokenizer(template, tokenizer)
    tokenizer.save_pretrained(export_dir)
    del model

    reloaded = AutoModelForCausalLM.from_pretrained(export_dir, dtype=dtype).eval()
    diff = (masked_logits(reloaded, batch) - reference).abs().max().item()
    files = sorted(p.name for p in export_dir.iterdir())
    console.print(f"verified: reloaded export vs source model, max |logit diff| = {diff:.3g} "
                  f"(tolerance {tolerance:g}) on {len(PROBE_PROMPTS)} probe prompts")
    if not diff <= tolerance:
        raise ExportError(f"the export in {export_dir} does not reproduce the source model: max |logit diff| "
                          f"{diff:.3g} > tolerance {tolerance:g}; do not use it (the files are kept for inspection)")
    return ExportResult(export_dir, files, diff, tolerance)
