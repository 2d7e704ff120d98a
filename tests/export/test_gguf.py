"""GGUF export: every supported family and type round-trips through transformers' GGUF reader."""

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from lmforge.data.templates import get_template
from lmforge.data.templates.jinja import template_to_jinja
from lmforge.errors import ExportError
from lmforge.export.gguf import gguf_model_name, gguf_tolerance, verify_gguf, write_gguf
from lmforge.export.verify import PROBE_PROMPTS, masked_logits, probe_batch
from lmforge.testing import build_tiny_model

CHATML = get_template("chatml")
TEXTS = [CHATML.render_text([], system="Be brief.", add_generation_prompt=True), *PROBE_PROMPTS,
         "  two  spaces\n\nand ünïcødé 😀"]
EXPECTED_CLASS = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "mistral": "LlamaForCausalLM",
                  "gemma2": "Gemma2ForCausalLM", "gemma3": "Gemma3ForCausalLM"}


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("families")
    return {family: build_tiny_model(root / family, family, chat_template=template_to_jinja(CHATML))
            for family in EXPECTED_CLASS}


@pytest.mark.parametrize("qtype", ["f16", "bf16", "q8_0"])
@pytest.mark.parametrize("family", list(EXPECTED_CLASS))
def test_gguf_round_trip_reproduces_logits_tokenizer_and_template(tiny_models, tmp_path, family, qtype):
    model = AutoModelForCausalLM.from_pretrained(tiny_models[family], dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(tiny_models[family])
    path = write_gguf(model, tokenizer, tmp_path / f"{family}.gguf", qtype)
    read_back = verify_gguf(path, tokenizer, TEXTS)  # tokenization and chat template checked inside
    assert type(read_back).__name__ == EXPECTED_CLASS[family]
    batch = probe_batch(CHATML, tokenizer)
    reference = masked_logits(model, batch)
    diff = (masked_logits(read_back, batch) - reference).abs().max().item()
    assert diff <= gguf_tolerance(qtype, reference) / 3, diff
    assert diff > 0 or qtype == "f16"  # bf16 and q8_0 really are lossy: the comparison is not vacuous


def test_gguf_sizes_follow_the_type(tiny_models, tmp_path):
    model = AutoModelForCausalLM.from_pretrained(tiny_models["llama"], dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(tiny_models["llama"])
    f16 = write_gguf(model, tokenizer, tmp_path / "a.gguf", "f16").stat().st_size
    q8 = write_gguf(model, tokenizer, tmp_path / "b.gguf", "q8_0").stat().st_size
    assert q8 < 0.7 * f16


def test_sentencepiece_style_tokenizer_round_trips(tmp_path):
    from tokenizers import SentencePieceBPETokenizer
    from transformers import LlamaConfig, LlamaTokenizer

    from lmforge.testing.tiny import corpus_lines

    trainer = SentencePieceBPETokenizer()
    trainer.train_from_iterator(corpus_lines(), vocab_size=600, special_tokens=["<unk>", "<s>", "</s>"],
                                show_progress=False)
    spec = json.loads(trainer.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in spec["merges"]]
    tokenizer = LlamaTokenizer(vocab=spec["vocab"], merges=merges, unk_token="<unk>", bos_token="<s>",
                               eos_token="</s>")
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tokenizer.chat_template = template_to_jinja(CHATML)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(LlamaConfig(vocab_size=len(tokenizer) + 6, hidden_size=64,
                                                         intermediate_size=128, num_hidden_layers=1,
                                                         num_attention_heads=4, num_key_value_heads=4))
    path = write_gguf(model, tokenizer, tmp_path / "spm.gguf", "f16")
    read_back = verify_gguf(path, tokenizer, TEXTS[:-1])
    assert read_back.config.vocab_size == len(tokenizer) + 6  # unused embedding rows become placeholders
    ids = tokenizer("Hello world", return_tensors="pt")
    with torch.inference_mode():
        assert (read_back(**ids).logits - model(**ids).logits).abs().max() < 0.01


def test_unsupported_architecture_is_refused_with_the_reason(tmp_path, tiny_models):
    from transformers import GemmaConfig

    tokenizer = AutoTokenizer.from_pretrained(tiny_models["llama"])
    model = AutoModelForCausalLM.from_config(GemmaConfig(vocab_size=len(tokenizer), hidden_size=32,
                                                         intermediate_size=64, num_hidden_layers=1,
                                                         num_attention_heads=2, num_key_value_heads=1, head_dim=16))
    with pytest.raises(ExportError, match=r"this model is `gemma`: transformers cannot read Gemma \(1\)"):
        write_gguf(model, tokenizer, tmp_path / "g.gguf", "f16")


def test_a_tokenizer_that_reads_back_differently_is_caught(tiny_models, tmp_path):
    model = AutoModelForCausalLM.from_pretrained(tiny_models["qwen2"], dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(tiny_models["qwen2"])
    path = write_gguf(model, tokenizer, tmp_path / "q.gguf", "f16")
    tokenizer.add_tokens(["seahorse"])  # the source now splits this word differently from the file
    with pytest.raises(ExportError, match="splits 'a seahorse' differently"):
        verify_gguf(path, tokenizer, ["a seahorse"])


def gguf_field(path, key):
    from gguf import GGUFReader

    return GGUFReader(path).fields[key].contents()


def test_general_name_comes_from_the_model_not_the_file(tiny_models, tmp_path):
    model = AutoModelForCausalLM.from_pretrained(tiny_models["qwen2"], dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(tiny_models["qwen2"])
    path = write_gguf(model, tokenizer, tmp_path / "export-folder" / "export-folder-f16.gguf", "f16")
    assert gguf_field(path, "general.name") == "qwen2"  # the folder the model was loaded from
    named = write_gguf(model, tokenizer, tmp_path / "n.gguf", "f16", name=gguf_model_name("builtin:smollm2-135m"))
    assert gguf_field(named, "general.name") == "smollm2-135m"
    assert gguf_model_name("HuggingFaceTB/SmolLM2-135M-Instruct") == "SmolLM2-135M-Instruct"


def test_a_digit_splitting_tokenizer_is_written_as_smollm_and_reads_back_the_same(tiny_models, tmp_path):
    from tokenizers import pre_tokenizers

    model = AutoModelForCausalLM.from_pretrained(tiny_models["llama"], dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(tiny_models["llama"])
    plain = write_gguf(model, tokenizer, tmp_path / "plain.gguf", "f16")
    assert gguf_field(plain, "tokenizer.ggml.pre") == "gpt-2"
    tokenizer.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)])
    digits = ["1234567 apples", "pi is 3.14159", "year 2024\n\n  42"]
    assert tokenizer.tokenize("1234567")[:3] == ["1", "2", "3"]  # every digit apart, as SmolLM2 splits them
    path = write_gguf(model, tokenizer, tmp_path / "digits.gguf", "f16")
    assert gguf_field(path, "tokenizer.ggml.pre") == "smollm"
    verify_gguf(path, tokenizer, [*TEXTS, *digits])
    with pytest.raises(ExportError, match="differently from the source"):  # the plain file keeps digit runs whole
        verify_gguf(plain, tokenizer, digits)


@pytest.mark.slow
def test_the_builtin_smollm2_exports_with_its_digit_split_and_its_name(smollm2_path, tmp_path):
    """SmolLM2 splits every digit apart (llama.cpp's `smollm`, not `gpt-2`); the builtin's tokenizer does too."""
    from rich.console import Console

    from lmforge.config import build_config
    from lmforge.export.pipeline import run_export

    assert AutoTokenizer.from_pretrained(smollm2_path).tokenize("year 2024") == ["year", "Ġ", "2", "0", "2", "4"]
    cfg = build_config({"model_name_or_path": "builtin:smollm2-135m-instruct", "export_gguf": "f16",
                        "export_dir": str(tmp_path / "exported")})
    run_export(cfg, Console(quiet=True))
    path = tmp_path / "exported" / "exported-f16.gguf"
    assert gguf_field(path, "tokenizer.ggml.pre") == "smollm"
    assert gguf_field(path, "general.name") == "smollm2-135m-instruct"  # the model's, not the folder's
