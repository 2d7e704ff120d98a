"""GPTQ export (LLaMA-Factory's `export_quantization_bit` with `export_quantization_dataset`): the saved export
is reloaded through transformers' GPTQ integration (optimum with gptqmodel, `lmforge[gptq]`), calibrated on
windows of the dataset's texts, verified by logits and saved over the export."""

import json
import random
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from transformers import PreTrainedTokenizerBase

from lmforge.config.export import ExportGroup
from lmforge.errors import ExportError
from lmforge.export.verify import ParityReport, save_quantized_if_faithful

# Default tolerance of a GPTQ export, by bit width (fewer bits move logits more).
GPTQ_TOLERANCE = {8: 0.5, 4: 2.0, 3: 4.0, 2: 8.0}


def check_gptq(export: ExportGroup) -> None:
    """Before any weight loads: the packages and the calibration file."""
    missing = [package for package in ("optimum", "gptqmodel") if find_spec(package) is None]
    if missing:
        raise ExportError(f"`export_quantization_dataset` quantizes the export with GPTQ, which needs "
                          f"{' and '.join(missing)}: pip install \"lmforge[gptq]\" (gptqmodel quantizes on a CUDA GPU, "
                          "or on the CPU where its CPU kernels install); without the key, `export_quantization_bit` "
                          "quantizes with bitsandbytes")
    path = Path(str(export.export_quantization_dataset))
    if not path.is_file():
        raise ExportError(f"`export_quantization_dataset`: no such file: {path} (a .jsonl/.json file of rows with a "
                          "`text` column, or a .txt file of one text per line)")


def calibration_texts(path: Path) -> list[str]:
    """The texts of a calibration file: json/jsonl rows' `text`, or the non-empty lines of a .txt file."""
    raw = path.read_text(encoding="utf-8")
    if path.suffix == ".txt":
        return [line for line in raw.splitlines() if line.strip()]
    lines = [line for line in raw.splitlines() if line.strip()]
    rows = [json.loads(line) for line in lines] if path.suffix == ".jsonl" else json.loads(raw)
    texts = [row["text"] for row in rows if isinstance(row, dict) and isinstance(row.get("text"), str)]
    if not texts:
        raise ExportError(f"`export_quantization_dataset`: {path} has no rows with a `text` string")
    return texts


def calibration_samples(texts: list[str], tokenizer: PreTrainedTokenizerBase, nsamples: int, maxlen: int,
                        seed: int = 42) -> list[dict[str, torch.Tensor]]:
    """`nsamples` windows of `maxlen` tokens, each from a random text long enough for it (LLaMA-Factory's
    sampling), seeded; tokenized as GPTQ's calibration batches."""
    encoded = [ids for ids in tokenizer(texts, add_special_tokens=False)["input_ids"] if len(ids) >= maxlen]
    if not encoded:
        raise ExportError(f"`export_quantization_dataset`: no text has the {maxlen} tokens of "
                          "`export_quantization_maxlen`: lower it or use longer texts")
    rng = random.Random(seed)
    samples = []
    for _ in range(nsamples):
        ids = rng.choice(encoded)
        start = rng.randint(0, len(ids) - maxlen)
        window = torch.tensor([ids[start:start + maxlen]])
        samples.append({"input_ids": window, "attention_mask": torch.ones_like(window)})
    return samples


def quantize_gptq(export: ExportGroup, export_dir: Path, tokenizer: PreTrainedTokenizerBase, reference: torch.Tensor,
                  batch: dict[str, torch.Tensor], console: Console) -> ParityReport:
    """Quantize the saved export with GPTQ, verify its logits against the source model's, and save it."""
    from transformers import AutoModelForCausalLM, GPTQConfig

    bits = int(export.export_quantization_bit or 4)
    samples = calibration_samples(calibration_texts(Path(str(export.export_quantization_dataset))), tokenizer,
                                  export.export_quantization_nsamples, export.export_quantization_maxlen)
    config = GPTQConfig(bits=bits, dataset=samples, tokenizer=tokenizer)
    device: Any = "auto" if torch.cuda.is_available() else "cpu"
    model = AutoModelForCausalLM.from_pretrained(export_dir, quantization_config=config, device_map=device)
    tolerance = export.export_tolerance or GPTQ_TOLERANCE[bits]
    return save_quantized_if_faithful(f"{bits}-bit GPTQ export vs source model", reference, model, batch, tolerance,
                                      export_dir, console)
