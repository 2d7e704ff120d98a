"""Our GGUF files as llama.cpp itself reads them: same tokens as the HF tokenizer, logits close to ours.

llama.cpp comes from its Python binding (`pip install 'lmforge[llamacpp]'`). PyPI has only its source
distribution, a C++ build of about 24 minutes on two (shared) cores, so `make test` does not install it and
these tests skip there; they run wherever the binding is installed.
"""

import json

import pytest
import torch
from gguf import GGUFReader
from rich.console import Console
from tokenizers import pre_tokenizers
from transformers import AutoModelForCausalLM, AutoTokenizer

from lmforge.data.templates import get_template
from lmforge.data.templates.jinja import template_to_jinja
from lmforge.errors import ExportError
from lmforge.export.gguf import llamacpp_tolerance, write_gguf
from lmforge.export.verify import (
    PROBE_PROMPTS,
    check_with_llamacpp,
    llamacpp_available,
    llamacpp_tokenize,
    masked_logits,
    open_llamacpp,
    probe_batch,
)
from lmforge.testing import build_tiny_model
from tests.refdata import REFDATA

NO_BINDING = "llama.cpp's Python binding is not installed (`pip install 'lmforge[llamacpp]'`, a long C++ build)"
needs_llamacpp = pytest.mark.skipif(not llamacpp_available(), reason=NO_BINDING)
CHATML = get_template("chatml")
BATTERY = [
    "1234567", "  42", "1\n\n2", "pi is 3.14159, not 22/7", "10,000,000 and 0.5%", "year 2024-12-04 at 13:05",
    "你好，世界！今天天气很好。", "日本語のテキストとカタカナ", "한국어 문장입니다",
    "emoji 😀👍🏽🇫🇷 and ünïcødé", "   three leading spaces", "trailing spaces   ", "a\n\n\nb", "\t\ttabs\tand\n \n",
    "def square(x):\n    return x ** 2  # comment\n", "if (a != b) { return a->c[0]; }",
    "<|im_start|>user\nhi<|im_end|>\n", CHATML.render_text([], system="Be brief.", add_generation_prompt=True),
    *PROBE_PROMPTS,
]


def battery() -> list[str]:
    """Ours, plus the 46 texts llama.cpp's own tokenizer tests use (refdata), where present."""
    expectations = REFDATA / "tokenizers" / "llamacpp-ggml-vocab" / "expectations" / "gpt-2.json"
    extra = [case["text"] for case in json.loads(expectations.read_text())["cases"]] if expectations.is_file() else []
    return [*BATTERY, *(t for t in extra if isinstance(t, str))]


def with_gpt2_split(path):
    """The builtin SmolLM2's tokenizer with GPT-2's split (digit runs whole), which `gpt-2` means in llama.cpp."""
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.backend_tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    return tokenizer


def assert_llamacpp_agrees(model, tokenizer, path, template, qtype):
    llama = open_llamacpp(path)
    try:
        mismatches = [(text, llamacpp_tokenize(llama, text), tokenizer.encode(text, add_special_tokens=False))
                      for text in battery()]
    finally:
        llama.close()
    assert [m for m in mismatches if m[1] != m[2]] == []
    batch = probe_batch(template, tokenizer)
    reference = masked_logits(model, batch)
    report = check_with_llamacpp(path, tokenizer, BATTERY, batch, reference, llamacpp_tolerance(qtype, reference))
    assert report is not None and report.ok, report
    assert report.max_abs_diff > 0  # llama.cpp really computed something of its own


@needs_llamacpp
@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_tiny_model_gguf_tokenizes_and_runs_in_llamacpp_as_in_transformers(tmp_path, family):
    folder = build_tiny_model(tmp_path / family, family, chat_template=template_to_jinja(CHATML))
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    path = write_gguf(model, tokenizer, tmp_path / f"{family}.gguf", "f16")
    assert_llamacpp_agrees(model, tokenizer, path, CHATML, "f16")


@needs_llamacpp
@pytest.mark.parametrize("qtype", ["f16", "bf16", "q8_0"])
def test_the_builtin_smollm2_gguf_tokenizes_and_runs_in_llamacpp_as_in_transformers(smollm2_path, tmp_path, qtype):
    model = AutoModelForCausalLM.from_pretrained(smollm2_path, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(smollm2_path)  # the builtin's own: every digit apart
    path = write_gguf(model, tokenizer, tmp_path / "smollm2.gguf", qtype)
    assert GGUFReader(path).fields["tokenizer.ggml.pre"].contents() == "smollm"
    assert_llamacpp_agrees(model, tokenizer, path, get_template("smollm2"), qtype)


@needs_llamacpp
def test_a_file_whose_split_differs_is_caught_by_llamacpp(smollm2_path, tmp_path):
    model = AutoModelForCausalLM.from_pretrained(smollm2_path, dtype=torch.float32)
    plain = write_gguf(model, with_gpt2_split(smollm2_path), tmp_path / "gpt2-split.gguf", "f16")
    tokenizer = AutoTokenizer.from_pretrained(smollm2_path)
    assert tokenizer.tokenize("  42") == ["ĠĠ", "4", "2"]  # GPT-2's split, which `gpt-2` means: "Ġ", "Ġ", "42"
    batch = probe_batch(get_template("smollm2"), tokenizer)
    with pytest.raises(ExportError, match=r"llama\.cpp splits '  42'"):
        check_with_llamacpp(plain, tokenizer, ["1234567", "  42"], batch, masked_logits(model, batch), 1.0)


def test_export_reports_the_llamacpp_check_and_names_the_model(tmp_path):
    from lmforge.config import build_config
    from lmforge.export.pipeline import run_export

    console = Console(record=True, width=200)
    cfg = build_config({"model_name_or_path": "builtin:tiny-llama", "template": "chatml", "export_gguf": "f16",
                        "export_dir": str(tmp_path / "my-export")})
    run_export(cfg, console)
    text = console.export_text()
    if llamacpp_available():
        assert "my-export-f16.gguf run by llama.cpp vs source model" in text
    else:
        assert "llama.cpp check skipped: its Python binding is not installed" in text
    reader = GGUFReader(tmp_path / "my-export" / "my-export-f16.gguf")
    assert reader.fields["general.name"].contents() == "tiny-llama"
