"""What every conversion shares: reading a config that may be missing or broken, and the final check.

A conversion builds the model in memory from the source's tensors (strictly: every weight filled,
every source tensor used or explained), saves it, loads the saved folder back with transformers and
compares logits with the in-memory source on a probe batch.
"""

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from lmforge.errors import ExportError
from lmforge.export.verify import DEFAULT_TOLERANCE, ParityReport, compare, masked_logits, require_parity
from lmforge.export.verify import text_probe_batch as _text_probe_batch
from lmforge.model.loading import TRANSFORMERS_FORMAT
from lmforge.paths import share_weight_files

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
                   "vocab.json", "merges.txt", "added_tokens.json", "chat_template.jinja", "chat_template.json")
EXTRA_FILES = ("generation_config.json", "preprocessor_config.json", "processor_config.json")


@dataclass
class ConversionResult:
    out_dir: Path
    report: ParityReport
    notes: list[str] = field(default_factory=list)  # what was found and fixed or deliberately left out


def read_hf_config(where: Path, *, what: str, config_path: Path | None = None) -> Any:
    """The transformers config from `config_path` (a config.json or a folder) or from `where`.

    A missing or broken config stops here with what to provide, before any tensor is read.
    """
    from transformers import AutoConfig

    candidate = config_path or where
    file = candidate / "config.json" if candidate.is_dir() else candidate
    if not file.is_file():
        raise ExportError(
            f"{what}: no config.json in {candidate}. The weights alone do not say the architecture: copy the "
            "config.json of the model this checkpoint was trained from (same sizes, same `model_type`) into "
            f"{candidate}, or pass `--config PATH/TO/config.json`")
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ExportError(f"{file} is not valid JSON ({err.msg} at line {err.lineno}, column {err.colno}): "
                          "fix the file or replace it with the base model's config.json") from None
    if not isinstance(raw, dict) or "model_type" not in raw:
        raise ExportError(f"{file} has no `model_type`, so transformers cannot tell the architecture: use the "
                          "base model's config.json (it names `model_type` and `architectures`)")
    try:
        return AutoConfig.from_pretrained(file.parent if file.name == "config.json" else file)
    except (ValueError, KeyError, TypeError) as err:
        raise ExportError(f"{file} cannot be read by transformers: {err}") from None


def build_model(config: Any, state: dict[str, torch.Tensor], *, what: str,
                dtype: torch.dtype | None = None) -> Any:
    """A causal LM of `config` holding exactly `state` (tied weights may be absent)."""
    from transformers import AutoModelForCausalLM

    dtype = dtype or dominant_dtype(state)
    try:
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    except ValueError as err:
        raise ExportError(f"{what}: transformers cannot build `{config.model_type}` as a causal LM: {err}") from None
    tied = set(getattr(model, "all_tied_weights_keys", {}) or {}) if config.get_text_config().tie_word_embeddings \
        else set()
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [key for key in missing if key not in tied]
    if missing or unexpected:
        raise ExportError(
            f"{what}: the weights do not fit the config ({config.model_type}): "
            + (f"{len(missing)} missing ({', '.join(missing[:4])}) " if missing else "")
            + (f"{len(unexpected)} unexpected ({', '.join(unexpected[:4])}) " if unexpected else "")
            + "- is the config.json the one this checkpoint was trained with?")
    model.tie_weights()
    return model.eval()


def dominant_dtype(state: dict[str, torch.Tensor]) -> torch.dtype:
    sizes: dict[torch.dtype, int] = {}
    for tensor in state.values():
        if tensor.is_floating_point():
            sizes[tensor.dtype] = sizes.get(tensor.dtype, 0) + tensor.numel()
    return max(sizes, key=sizes.__getitem__) if sizes else torch.float32


def load_tokenizer_if_any(folder: Path | None) -> Any:
    from transformers import AutoTokenizer

    if folder is None or not any((folder / name).is_file() for name in TOKENIZER_FILES):
        return None
    return AutoTokenizer.from_pretrained(folder, **TRANSFORMERS_FORMAT)


def copy_side_files(source: Path | None, out_dir: Path) -> None:
    """Tokenizer, generation and processor files travel with the weights unchanged."""
    if source is None or not source.is_dir():
        return
    for name in (*TOKENIZER_FILES, *EXTRA_FILES):
        if (source / name).is_file():
            shutil.copy2(source / name, out_dir / name)


def save_and_verify(model: Any, out_dir: Path, *, what: str, tokenizer: Any = None, side_files: Path | None = None,
                    notes: list[str] | None = None, console: Console | None = None,
                    reference_model: Any = None) -> ConversionResult:
    """Save `model` as safetensors, load it back with transformers and compare logits with the source.

    The source is `reference_model` when the source format can run on its own (a GGUF), else `model`.
    """
    from transformers import AutoModelForCausalLM

    console = console or Console()
    out_dir.mkdir(parents=True, exist_ok=True)
    batch = _text_probe_batch(tokenizer, model.config.get_text_config().vocab_size)
    reference = masked_logits(reference_model if reference_model is not None else model, batch)
    model.save_pretrained(out_dir)
    share_weight_files(out_dir)
    copy_side_files(side_files, out_dir)
    if tokenizer is not None:
        tokenizer.save_pretrained(out_dir)
    dtype = next(model.parameters()).dtype
    del model
    reloaded = AutoModelForCausalLM.from_pretrained(out_dir, dtype=dtype)
    report = compare(f"{what}: reloaded with transformers vs source", reference, reloaded, batch,
                     DEFAULT_TOLERANCE.get(dtype, 1e-3))
    for note in notes or []:
        console.print(note)
    console.print(report.line())
    require_parity(report, str(out_dir))
    return ConversionResult(out_dir, report, notes or [])
