"""Logit parity: every export and conversion reloads its result and compares logits with the source.

A probe batch is left-padded (as generation sees it) and only real tokens are compared. Tolerances
depend on the dtype the result is stored in; `ParityReport` is what the commands print.
"""

from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from lmforge.data.templates.encoding import encode_conversation
from lmforge.data.templates.template import Message, Template
from lmforge.errors import ExportError
from lmforge.paths import share_weight_files

PROBE_PROMPTS = ["Who are you?", "What is the capital of France?", "Write one sentence about the sea."]
# Max |logit| difference allowed between a result and its source, by the dtype the result is stored in.
DEFAULT_TOLERANCE = {torch.float32: 1e-3, torch.bfloat16: 0.25, torch.float16: 0.05}


@dataclass(frozen=True)
class ParityReport:
    what: str  # e.g. "reloaded export vs source model"
    max_abs_diff: float
    tolerance: float
    probes: int

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.tolerance  # NaN fails too

    def line(self) -> str:
        return (f"verified: {self.what}, max |logit diff| = {self.max_abs_diff:.3g} "
                f"(tolerance {self.tolerance:g}) on {self.probes} probe prompts")


def _left_padded(rows: list[list[int]], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for index, row in enumerate(rows):
        ids[index, width - len(row):] = torch.tensor(row)
        mask[index, width - len(row):] = 1
    return {"input_ids": ids, "attention_mask": mask}


def probe_batch(template: Template, tokenizer: PreTrainedTokenizerBase) -> dict[str, torch.Tensor]:
    """Left-padded prompts rendered with the chat template, for logit comparisons."""
    rows = [encode_conversation(template, tokenizer, [Message("user", p)], add_generation_prompt=True).flat()
            for p in PROBE_PROMPTS]
    return _left_padded(rows, tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)


def text_probe_batch(tokenizer: PreTrainedTokenizerBase | None, vocab_size: int) -> dict[str, torch.Tensor]:
    """Plain-text probes for conversions, which know no chat template; fixed ids when there is no tokenizer."""
    if tokenizer is None:
        generator = torch.Generator().manual_seed(0)
        rows = [torch.randint(0, vocab_size, (n,), generator=generator).tolist() for n in (7, 12, 9)]
        return _left_padded(rows, 0)
    rows = [tokenizer.encode(p, add_special_tokens=True) for p in PROBE_PROMPTS]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return _left_padded(rows, pad)


@torch.inference_mode()
def masked_logits(model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """float32 logits of the real (non-pad) positions."""
    parameter = next(model.parameters())
    inputs = {key: value.to(parameter.device, dtype=parameter.dtype) if value.is_floating_point()
              else value.to(parameter.device) for key, value in batch.items()}  # pixels in the model's dtype
    logits = model(**inputs).logits.float().cpu()
    return logits[batch["attention_mask"].bool()]


def compare(what: str, reference: torch.Tensor, model: Any, batch: dict[str, torch.Tensor],
            tolerance: float) -> ParityReport:
    diff = (masked_logits(model.eval(), batch) - reference).abs().max().item()
    return ParityReport(what, diff, tolerance, int(batch["input_ids"].shape[0]))


def require_parity(report: ParityReport, where: str) -> None:
    if not report.ok:
        raise ExportError(f"the result in {where} does not reproduce the source model ({report.what}): "
                          f"max |logit diff| {report.max_abs_diff:.3g} > tolerance {report.tolerance:g}; do not use it "
                          "(the files are kept for inspection)")


def save_quantized_if_faithful(what: str, reference: torch.Tensor, model: Any, batch: Any, tolerance: float,
                               export_dir: Path, console: Any) -> ParityReport:
    """A quantized export's logits against the source model's: printed, required within `tolerance`, then the
    quantized weights saved (readable like every other output file)."""
    report = compare(what, reference, model, batch, tolerance)
    console.print(report.line())
    require_parity(report, str(export_dir))
    model.save_pretrained(export_dir)
    share_weight_files(export_dir)
    return report


def llamacpp_available() -> bool:
    """Whether llama.cpp's Python binding (`pip install 'lmforge[llamacpp]'`, a CPU build) is installed."""
    return find_spec("llama_cpp") is not None


def open_llamacpp(gguf_file: Path, n_ctx: int = 512) -> Any:
    """llama.cpp's own model for `gguf_file`, keeping the logits of every position."""
    from llama_cpp import Llama

    try:
        return Llama(model_path=str(gguf_file), n_ctx=n_ctx, logits_all=True, verbose=False)
    except (ValueError, RuntimeError) as err:
        raise ExportError(f"llama.cpp cannot load the GGUF {gguf_file}: {err}; do not use the file") from None


def llamacpp_tokenize(llama: Any, text: str) -> list[int]:
    """Ids as llama.cpp gives them for `text`, special tokens in the text included, no BOS added."""
    return list(llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))


@torch.inference_mode()
def llamacpp_logits(llama: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """float32 logits of the batch's real positions, each row run alone by llama.cpp (as `masked_logits`)."""
    import numpy as np

    rows = []
    for ids, mask in zip(batch["input_ids"], batch["attention_mask"], strict=True):
        tokens = ids[mask.bool()].tolist()
        llama.reset()
        llama.eval(tokens)
        rows.append(torch.from_numpy(np.array(llama.scores[:len(tokens)], dtype=np.float32)))
    return torch.cat(rows)


def check_with_llamacpp(gguf_file: Path, tokenizer: PreTrainedTokenizerBase, texts: list[str],
                        batch: dict[str, torch.Tensor], reference: torch.Tensor,
                        tolerance: float) -> ParityReport | None:
    """llama.cpp's reading of the file, when its binding is installed (else None): the tokenizer must split
    `texts` as the source does (what llama.cpp and Ollama would feed the model) and its logits on the probe
    batch must be within `tolerance` of `reference`."""
    if not llamacpp_available():
        return None
    llama = open_llamacpp(gguf_file, n_ctx=max(512, int(batch["input_ids"].shape[1])))
    try:
        for text in texts:
            expected = tokenizer.encode(text, add_special_tokens=False)
            got = llamacpp_tokenize(llama, text)
            if got != expected:
                raise ExportError(f"llama.cpp splits {text[:40]!r} in {gguf_file} differently from the source "
                                  f"tokenizer ({got[:12]} vs {expected[:12]}), so llama.cpp and Ollama would feed "
                                  "the model other tokens than training did; do not use the file")
        diff = (llamacpp_logits(llama, batch) - reference).abs().max().item()
    finally:
        llama.close()
    return ParityReport(f"{gguf_file.name} run by llama.cpp vs source model", diff, tolerance,
                        int(batch["input_ids"].shape[0]))
