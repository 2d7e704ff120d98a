"""`lmforge export`: merge adapters, save, reload and verify the logits; GGUF, Modelfile, quantized.

The source is the base model plus its adapters, the last unmerged (`export/merge.py`; QLoRA adapters
too: the base is always loaded unquantized, so they merge onto the dequantized weights). Every artefact written (the
safetensors or `.bin` folder, each GGUF file, a bitsandbytes-quantized folder) is read back and its
logits compared with the source on a probe batch rendered with the chat template; beyond the
tolerance the export fails.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import transformers
from rich.console import Console
from transformers import AutoModelForCausalLM, PreTrainedTokenizerBase

from lmforge.config import LmforgeConfig
from lmforge.config.groups import ExportGroup, GenerationGroup
from lmforge.data.templates.encoding import stop_token_ids
from lmforge.data.templates.jinja import prepare_saved_tokenizer
from lmforge.data.templates.select import run_template
from lmforge.data.templates.template import Message, Template
from lmforge.errors import ExportError
from lmforge.export.gguf import gguf_model_name, gguf_tolerance, llamacpp_tolerance, verify_gguf, write_gguf
from lmforge.export.gptq import check_gptq, quantize_gptq
from lmforge.export.media_probe import media_probe_batch
from lmforge.export.merge import merge_last, source_model
from lmforge.export.ollama import write_modelfile
from lmforge.export.push import check_push, push_export
from lmforge.export.save import save_weights
from lmforge.export.verify import (
    DEFAULT_TOLERANCE,
    PROBE_PROMPTS,
    ParityReport,
    check_with_llamacpp,
    compare,
    masked_logits,
    probe_batch,
    require_parity,
    save_quantized_if_faithful,
)
from lmforge.model.loading import (
    TRANSFORMERS_FORMAT,
    inference_dtype,
    load_base_model,
    load_processor,
    load_tokenizer,
    model_kind,
    model_path,
)
from lmforge.model.quantization import bitsandbytes_problem, keep_cpu_kernel_to_packable_layers
from lmforge.preflight import preflight

__all__ = ["ExportResult", "masked_logits", "probe_batch", "run_export"]
# Default tolerance of a bitsandbytes-quantized export, by bit width (quantization moves logits more).
QUANTIZED_TOLERANCE = {8: 0.5, 4: 2.0}


@dataclass
class ExportResult:
    export_dir: Path
    files: list[str]
    reports: list[ParityReport] = field(default_factory=list)

    @property
    def max_abs_logit_diff(self) -> float:
        return self.reports[0].max_abs_diff

    @property
    def tolerance(self) -> float:
        return self.reports[0].tolerance


def export_dtype(cfg: LmforgeConfig) -> torch.dtype:
    """`export_dtype`, else the inference dtype (`infer_dtype`, else bf16/fp16 on CUDA, float32 on CPU)."""
    if cfg.export.export_dtype != "auto":
        return getattr(torch, cfg.export.export_dtype)
    return inference_dtype(cfg.model)


def _check_quantization_device(bits: int | None) -> None:
    problem = bitsandbytes_problem(bits, "export_quantization_bit")
    if problem:
        raise ExportError(f"{problem}, or remove the key (GGUF `export_gguf: q8_0` quantizes without it)")


def save_processor(source: str, export_dir: Path, *, trust_remote_code: bool = False) -> bool:
    """A vision-language model's processor (image/video preprocessing) goes next to its weights; a remote-code
    processor (`trust_remote_code`) brings its code file along (transformers copies what its auto_map names)."""
    from transformers import AutoImageProcessor, AutoProcessor, AutoVideoProcessor

    folder = Path(source)
    if (folder / "processor_config.json").is_file():
        AutoProcessor.from_pretrained(source, **TRANSFORMERS_FORMAT,
                                      trust_remote_code=trust_remote_code).save_pretrained(export_dir)
        return True
    # Without a processor_config.json, AutoProcessor falls back to the tokenizer: save the parts one by one.
    parts = {"preprocessor_config.json": AutoImageProcessor, "video_preprocessor_config.json": AutoVideoProcessor}
    found = [auto for name, auto in parts.items() if (folder / name).is_file()]
    for auto in found:
        auto.from_pretrained(source, trust_remote_code=trust_remote_code).save_pretrained(export_dir)
    return bool(found)


def modelfile_parameters(gen: GenerationGroup) -> dict[str, float | int]:
    if not gen.do_sample:
        return {"temperature": 0, "repeat_penalty": gen.repetition_penalty}
    return {"temperature": gen.temperature, "top_p": gen.top_p, "top_k": gen.top_k,
            "repeat_penalty": gen.repetition_penalty}


def _export_gguf(model: Any, tokenizer: PreTrainedTokenizerBase, template: Template, export: ExportGroup,
                 reference: torch.Tensor, batch: dict[str, torch.Tensor], console: Console,
                 source_name: str) -> list[ParityReport]:
    if not export.export_gguf:
        return []
    export_dir = Path(export.export_dir or "")
    reports = []
    # a chat prompt (the template's special tokens) besides plain text; it holds a question, as a jinja template
    # may read the first message (Qwen2.5's asks whether it is a system prompt)
    texts = [template.render_text([Message("user", PROBE_PROMPTS[0])], add_generation_prompt=True), *PROBE_PROMPTS]
    for qtype in export.export_gguf:
        path = write_gguf(model, tokenizer, export_dir / f"{export_dir.name}-{qtype}.gguf", qtype, name=source_name)
        read_back = verify_gguf(path, tokenizer, texts)
        tolerance = export.export_tolerance or gguf_tolerance(qtype, reference)
        report = compare(f"{path.name} read back by transformers vs source model", reference, read_back, batch,
                         tolerance)
        console.print(report.line())
        require_parity(report, str(path))
        reports.append(report)
        llamacpp = check_with_llamacpp(path, tokenizer, texts, batch, reference,
                                       export.export_tolerance or llamacpp_tolerance(qtype, reference))
        console.print(llamacpp.line() if llamacpp else "llama.cpp check skipped: its Python binding is not "
                      "installed (`pip install 'lmforge[llamacpp]'`)")
        if llamacpp:  # printed and enforced; `reports` keeps one entry per file
            require_parity(llamacpp, str(path))
    return reports


def _quantize(export: ExportGroup, export_dir: Path, reference: torch.Tensor, batch: dict[str, torch.Tensor],
              console: Console) -> ParityReport:
    """Reload the export in 4/8-bit with bitsandbytes (on the GPU, else the CPU), verify it, and save it over
    the export."""
    from transformers import BitsAndBytesConfig

    bits = export.export_quantization_bit
    quantization = (BitsAndBytesConfig(load_in_8bit=True) if bits == 8 else
                    BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                       bnb_4bit_compute_dtype=torch.bfloat16))
    model = AutoModelForCausalLM.from_pretrained(export_dir, quantization_config=quantization,
                                                 device_map="cuda" if torch.cuda.is_available() else "cpu")
    keep_cpu_kernel_to_packable_layers(model)
    tolerance = export.export_tolerance or QUANTIZED_TOLERANCE[bits]  # type: ignore[index]
    return save_quantized_if_faithful(f"{bits}-bit bitsandbytes export vs source model", reference, model, batch,
                                      tolerance, export_dir, console)


def merge_device(export: ExportGroup) -> str:
    """`export_device: auto` merges and verifies on the GPU when there is one; cpu (the default) never uses it."""
    return "cuda" if export.export_device == "auto" and torch.cuda.is_available() else "cpu"


def run_export(cfg: LmforgeConfig, console: Console | None = None) -> ExportResult:
    console = console or Console()
    preflight(cfg, "export")
    token = cfg.model.hf_hub_token.get_secret_value() if cfg.model.hf_hub_token else None
    check_push(cfg.export.export_hub_model_id, str(cfg.export.export_dir), token)
    if cfg.export.export_quantization_dataset:
        check_gptq(cfg.export)
    else:
        _check_quantization_device(cfg.export.export_quantization_bit)
    tokenizer = load_tokenizer(cfg.model)
    template = run_template(cfg.model, tokenizer, preserve_thinking=cfg.data.preserve_thinking)
    dtype = export_dtype(cfg)
    export_dir = Path(cfg.export.export_dir or "")
    tolerance = cfg.export.export_tolerance or DEFAULT_TOLERANCE[dtype]

    adapters = cfg.model.adapter_paths()
    base = load_base_model(cfg.model, dtype=dtype, cutoff_len=cfg.data.cutoff_len)
    model = source_model(base.to(merge_device(cfg.export)), adapters)
    batch = probe_batch(template, tokenizer)
    reference = masked_logits(model.eval(), batch)
    kind = model_kind(cfg.model)
    media_batch = media_probe_batch(cfg, load_processor(cfg.model, kind), template)
    media_reference = masked_logits(model, media_batch) if media_batch else None
    model = merge_last(model)
    legacy = cfg.export.export_legacy_format
    console.print(f"merged {len(adapters)} adapter(s); saving {dtype} {'.bin' if legacy else 'safetensors'} "
                  f"shards of at most {cfg.export.export_size} GB to {export_dir}", markup=False)

    model.generation_config.eos_token_id = stop_token_ids(template, tokenizer)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    save_weights(model, export_dir, max_shard_gb=cfg.export.export_size, legacy_format=legacy)
    prepare_saved_tokenizer(template, tokenizer)
    tokenizer.save_pretrained(export_dir)
    if save_processor(model_path(cfg.model), export_dir, trust_remote_code=cfg.model.trust_remote_code):
        console.print("saved the model's processor")

    reloaded = getattr(transformers, kind.auto_class).from_pretrained(export_dir, dtype=dtype,
                                                                      trust_remote_code=cfg.model.trust_remote_code)
    report = compare("reloaded export vs source model", reference, reloaded, batch, tolerance)
    console.print(report.line())
    require_parity(report, str(export_dir))
    if media_batch is not None and media_reference is not None:
        with_image = compare("reloaded export vs source model, prompt with an image", media_reference, reloaded,
                             media_batch, tolerance)
        console.print(with_image.line())
        require_parity(with_image, str(export_dir))
    del reloaded
    reports = [report, *_export_gguf(model, tokenizer, template, cfg.export, reference, batch, console,
                                       gguf_model_name(cfg.model.model_name_or_path or ""))]
    del model
    if cfg.export.export_quantization_dataset:
        reports.append(quantize_gptq(cfg.export, export_dir, tokenizer, reference, batch, console))
    elif cfg.export.export_quantization_bit:
        reports.append(_quantize(cfg.export, export_dir, reference, batch, console))
    if cfg.export.export_modelfile:
        ggufs = [f"./{export_dir.name}-{q}.gguf" for q in cfg.export.export_gguf or []]
        console.print(write_modelfile(export_dir, template, ggufs[0] if ggufs else ".",
                                      bos_token=tokenizer.bos_token or "", eos_token=tokenizer.eos_token or "",
                                      parameters=modelfile_parameters(cfg.generation)), highlight=False)
    files = sorted(p.name for p in export_dir.iterdir())
    if cfg.export.export_hub_model_id:
        console.print(f"uploaded to {push_export(export_dir, cfg.export.export_hub_model_id, token)}", markup=False)
    return ExportResult(export_dir, files, reports)
