"""Shared pieces of the benchmarks: reference data, the real Qwen tokenizer, LLaMA-Factory's venv.

Benchmarks read ../shared/refdata (never copied into the repository) and run LLaMA-Factory in its
own virtual environment, created here on first use with the same torch as lmforge.
"""

import json
import os
import platform
import statistics
import subprocess
import sys
from datetime import date
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
REFDATA = Path(os.environ.get("LMFORGE_REFDATA", ROOT.parent / "shared" / "refdata"))
CACHE = BENCH / ".cache"
LF_VENV = BENCH / ".venv-llamafactory"
LF_VERSION = "0.9.5"
QWEN_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def refdata(*parts: str) -> Path:
    path = REFDATA.joinpath(*parts)
    if not path.exists():
        sys.exit(f"reference data {path} is absent: the benchmarks need ../shared/refdata")
    return path


def qwen_tokenizer_dir() -> Path:
    """An HF tokenizer folder with the real Qwen2/2.5 vocabulary (151,643 ranks + ChatML specials).

    Built from refdata's qwen.tiktoken with transformers' own tiktoken converter and NFC
    normalisation, then checked against the 46 reference encodings of Qwen's HF tokenizer.
    """
    folder = CACHE / "qwen-tokenizer"
    if (folder / "tokenizer.json").is_file():
        return folder
    from tokenizers import normalizers
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    converter = TikTokenConverter(vocab_file=str(refdata("tokenizers", "qwen-tiktoken", "qwen.tiktoken")),
                                  pattern=QWEN_PATTERN, extra_special_tokens=QWEN_SPECIALS)
    backend = converter.converted()
    backend.normalizer = normalizers.NFC()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|im_end|>",
                                        pad_token="<|endoftext|>", unk_token=None)
    expectations = json.loads(refdata("tokenizers", "llamacpp-ggml-vocab", "expectations", "qwen2.json").read_text())
    wrong = [case["text"] for case in expectations["cases"]
             if tokenizer.encode(case["text"], add_special_tokens=False) != case["ids"]]
    if wrong:
        sys.exit(f"the converted Qwen tokenizer disagrees with Qwen's on {len(wrong)} cases, e.g. {wrong[0]!r}")
    assert tokenizer.convert_tokens_to_ids("<|im_start|>") == 151644
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(folder)
    return folder


def tiny_qwen2_dir(tokenizer_dir: Path, name: str, **shape: int) -> Path:
    """A random Qwen2-shaped model (weights saved once) beside the given tokenizer, for both frameworks."""
    folder = CACHE / name
    if (folder / "config.json").is_file():
        return folder
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = Qwen2Config(vocab_size=len(tokenizer), eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True, **shape)
    torch.manual_seed(0)
    Qwen2ForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def llamafactory_python() -> Path:
    """The LLaMA-Factory venv's python, created on first use (torch first, then llamafactory pinned)."""
    python = LF_VENV / "bin" / "python"
    ready = LF_VENV / ".ready"
    if ready.is_file():
        return python
    subprocess.run([sys.executable, "-m", "venv", str(LF_VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "torch==2.14.1", "torchvision==0.29.1"], check=True)
    subprocess.run([*pip, f"llamafactory=={LF_VERSION}"], check=True)
    subprocess.run([*pip, "bitsandbytes>=0.47"], check=True)  # its QLoRA (`quantization_bit`), on the CPU too
    ready.touch()
    return python


def versions(python: Path | str, packages: list[str]) -> dict[str, str]:
    code = ("import importlib.metadata as m, json, sys; "
            "print(json.dumps({p: m.version(p) for p in sys.argv[1:]}))")
    out = subprocess.run([str(python), "-c", code, *packages], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def cpu_model() -> str:
    """The CPU's model name and the instruction sets that decide fp32/bf16 speed (a figure means little without)."""
    from lmforge.train.precision import cpu_description

    return cpu_description()


def machine() -> str:
    return f"{cpu_model()}, {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def median_range(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})"


def append_benchmark_row(section: str, table_header: str, row: str) -> None:
    """Add a row after the last row of the table under `## section` in BENCHMARKS.md (the section and its
    table are created when missing); the section's prose after the table stays after it."""
    path = ROOT / "BENCHMARKS.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    header = f"## {section}"
    if header not in text:
        text = text.rstrip("\n") + f"\n\n{header}\n\n{table_header}\n"
    start = text.index(header)
    following = text.find("\n## ", start + len(header))
    end = len(text) if following == -1 else following
    lines = text[start:end].split("\n")
    table_rows = [index for index, line in enumerate(lines) if line.startswith("|")]
    if table_rows:
        lines.insert(table_rows[-1] + 1, row)
        section_text = "\n".join(lines)
    else:
        section_text = text[start:end].rstrip("\n") + f"\n\n{table_header}\n{row}\n"
    text = text[:start] + section_text + text[end:]
    path.write_text(text)


def today() -> str:
    return date.today().isoformat()
