"""HF model + tokenizer -> one GGUF file, written with the `gguf` package (no llama.cpp binary).

Tensor names come from gguf's own per-architecture map (`get_tensor_name_map`), so they are the
names llama.cpp and transformers' GGUF reader expect. Two value transforms follow llama.cpp's
converter, and transformers' reader undoes exactly these:

- llama / mistral: the rows of q_proj and k_proj are interleaved per head (llama.cpp's rope pairs
  dimensions (0,1),(2,3).. where transformers pairs (0,d/2),(1,d/2+1)..);
- gemma2 / gemma3: RMSNorm weights are stored as 1 + w (Gemma scales by 1 + w at run time).

Mistral is written as the llama architecture, as llama.cpp does; transformers reads it back as a
Llama model, the same network (a sliding window only matters beyond the probe length).

The tokenizer goes in as llama.cpp's `gpt2` (byte-level BPE: vocab + merges + the pre-tokenizer's
name) or `llama` (SentencePiece-style BPE: vocab, scores, merges, byte tokens), with the special
ids and the chat template.
"""

import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from lmforge.errors import ExportError
from lmforge.export.save import untied_state_dict
from lmforge.hub.gguf import restore_pre_tokenizer

GgufType = Literal["f16", "bf16", "q8_0"]
# Max |logit| difference between the GGUF read back and its source, as a share of the source's largest
# |logit| (at least 1): rounding errors grow with the logits' scale. Measured on the real SmolLM2-135M
# (max |logit| 38): f16 0.041 (0.11%), bf16 0.28 (0.7%), q8_0 1.32 (3.5%).
GGUF_RELATIVE_TOLERANCE: dict[str, float] = {"f16": 0.005, "bf16": 0.02, "q8_0": 0.06}


# The same for llama.cpp running the file (its CPU kernels round activations too: q8_0 matmuls quantize them
# to 8 bits). Measured on the real SmolLM2-135M: f16 0.095 (0.25%), bf16 0.44 (1.2%), q8_0 2.55 (6.7%).
LLAMACPP_RELATIVE_TOLERANCE: dict[str, float] = {"f16": 0.01, "bf16": 0.03, "q8_0": 0.12}


def gguf_tolerance(qtype: str, reference: torch.Tensor) -> float:
    return GGUF_RELATIVE_TOLERANCE[qtype] * max(1.0, reference.abs().max().item())


def llamacpp_tolerance(qtype: str, reference: torch.Tensor) -> float:
    return LLAMACPP_RELATIVE_TOLERANCE[qtype] * max(1.0, reference.abs().max().item())


@dataclass(frozen=True)
class GgufArch:
    arch: str  # gguf.MODEL_ARCH member name
    permute_qk: bool = False
    norm_offset: bool = False


GGUF_ARCHS: dict[str, GgufArch] = {
    "llama": GgufArch("LLAMA", permute_qk=True),
    "mistral": GgufArch("LLAMA", permute_qk=True),
    "qwen2": GgufArch("QWEN2"),
    "gemma2": GgufArch("GEMMA2", norm_offset=True),
    "gemma3_text": GgufArch("GEMMA3", norm_offset=True),
}
UNSUPPORTED_HINTS = {
    "gemma": "transformers cannot read Gemma (1) GGUF files back, so the export could not be verified; "
             "Gemma 2 and Gemma 3 text models are supported",
    "gemma3": "export the text model (Gemma3ForCausalLM); GGUF holds the language model only",
}

# llama.cpp token types
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
_BYTE_TOKEN = re.compile(r"^<0x[0-9A-F]{2}>$")


def gguf_arch(config: Any) -> GgufArch:
    spec = GGUF_ARCHS.get(config.model_type)
    if spec is None:
        hint = UNSUPPORTED_HINTS.get(config.model_type, "")
        raise ExportError(f"GGUF export supports {', '.join(GGUF_ARCHS)}; this model is `{config.model_type}`"
                          + (f": {hint}" if hint else ""))
    rope = getattr(config, "rope_parameters", None) or {}
    rope_types = {v.get("rope_type") for v in rope.values() if isinstance(v, dict)} or {rope.get("rope_type")}
    if rope_types - {None, "default"}:
        raise ExportError(f"GGUF export: rope scaling {sorted(t for t in rope_types if t)} is not carried into "
                          "the file by transformers' reader, so it could not be verified; export safetensors instead")
    return spec


def _rope_theta(config: Any) -> float:
    rope = getattr(config, "rope_parameters", None) or {}
    if "full_attention" in rope:  # per-layer-type parameters (Gemma 3): the global layers' base
        rope = rope["full_attention"]
    return float(rope.get("rope_theta", getattr(config, "rope_theta", 10000.0)))


def _interleave_rope_rows(weight: torch.Tensor, heads: int) -> torch.Tensor:
    """transformers' half-split rotary layout -> llama.cpp's interleaved one, per head."""
    return weight.reshape(heads, 2, weight.shape[0] // heads // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(
        weight.shape)


def _encode(data: np.ndarray, qtype: GgufType, *, is_matrix: bool) -> tuple[np.ndarray, Any]:
    """(data, raw ggml type) for one tensor; vectors (norms, biases) stay float32 as llama.cpp keeps them."""
    from gguf import GGMLQuantizationType as T
    from gguf import quants

    if not is_matrix:
        return data.astype(np.float32), T.F32
    if qtype == "q8_0" and data.shape[-1] % 32 == 0:
        return quants.quantize(data, T.Q8_0), T.Q8_0
    if qtype == "bf16":
        return quants.quantize(data, T.BF16), T.BF16
    return data.astype(np.float16), T.F16


def _add_model_metadata(writer: Any, config: Any, spec: GgufArch, name: str, vocab_size: int) -> None:
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    # transformers reads a llama-architecture file named exactly "mistral" through a Mistral path that
    # gguf-py cannot map, so that one name is never written.
    writer.add_name(name if name.lower() != "mistral" else f"{name}-model")
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_rope_freq_base(_rope_theta(config))
    writer.add_vocab_size(vocab_size)
    if spec.permute_qk:
        writer.add_rope_dimension_count(head_dim)
    if spec.norm_offset:
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)
        if getattr(config, "sliding_window", None):
            writer.add_sliding_window(config.sliding_window)
        if getattr(config, "attn_logit_softcapping", None):
            writer.add_attn_logit_softcapping(config.attn_logit_softcapping)
        if getattr(config, "final_logit_softcapping", None):
            writer.add_final_logit_softcapping(config.final_logit_softcapping)


def _add_tensors(writer: Any, model: Any, spec: GgufArch, qtype: GgufType) -> None:
    import gguf

    config = model.config
    name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH[spec.arch], config.num_hidden_layers)
    unmapped: list[str] = []
    for hf_name, tensor in untied_state_dict(model).items():
        base, _, suffix = hf_name.rpartition(".")
        gguf_name = name_map.get_name(base)
        if gguf_name is None:
            unmapped.append(hf_name)
            continue
        data = tensor.float()
        if spec.permute_qk and base.endswith(".q_proj") and suffix == "weight":
            data = _interleave_rope_rows(data, config.num_attention_heads)
        elif spec.permute_qk and base.endswith(".k_proj") and suffix == "weight":
            data = _interleave_rope_rows(data, config.num_key_value_heads)
        if spec.norm_offset and base.endswith("norm"):
            data = data + 1
        array, raw_type = _encode(data.numpy(), qtype, is_matrix=data.dim() == 2)
        writer.add_tensor(f"{gguf_name}.{suffix}", array, raw_dtype=raw_type)
    if unmapped:
        raise ExportError(f"GGUF export: {len(unmapped)} weights of this `{config.model_type}` model have no GGUF "
                          f"name ({', '.join(unmapped[:4])}); the model is not a plain {config.model_type}")


def _tokenizer_kind(tokenizer_json: dict[str, Any]) -> Literal["gpt2", "llama"]:
    model = tokenizer_json.get("model", {})
    if model.get("type") != "BPE":
        raise ExportError(f"GGUF export writes BPE tokenizers (byte-level or SentencePiece-style); this one is "
                          f"`{model.get('type')}`")
    text = json.dumps([tokenizer_json.get("pre_tokenizer"), tokenizer_json.get("decoder")])
    if '"ByteLevel"' in text:
        return "gpt2"
    if model.get("byte_fallback") or '"Metaspace"' in text or "\u2581" in json.dumps(tokenizer_json.get("normalizer")):
        return "llama"
    raise ExportError("GGUF export: the tokenizer is BPE but neither byte-level nor SentencePiece-style")


# ByteLevel's built-in split written out, as tiktoken-converted GPT-2 / Whisper tokenizers carry it.
GPT2_SPLIT = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"


# What llama.cpp means by a `tokenizer.ggml.pre` name: the chain of splits it applies before BPE. A
# name llama.cpp does not know stops the load, and a wrong one tokenizes differently from training
# (SmolLM2 splits every digit apart, GPT-2 keeps digit runs whole), so the name is derived from the
# structure of the tokenizer's own pre_tokenizer. "bytelevel" is ByteLevel's built-in split (GPT-2's
# regex), "digits" is Digits(individual_digits=True); names sharing a chain behave alike in llama.cpp,
# the one written is the one llama.cpp's converter writes for that family. The single-regex chains use
# transformers' table, so transformers' GGUF reader rebuilds the same split when verifying.
def _llamacpp_pre_tokenizers() -> dict[tuple[str, ...], str]:
    from transformers.integrations.gguf.gguf_tokenizer_mapping import GGUF_PRE_TOKENIZER_SPLITS as SPLITS

    names: dict[tuple[str, ...], str] = {("bytelevel",): "gpt-2", (GPT2_SPLIT,): "gpt-2",
                                         ("digits", "bytelevel"): "smollm"}
    for name in ("llama-bpe", "qwen2", "qwen35", "tekken", "llama4"):  # Llama 3, Qwen 2, Qwen 3.5, Mistral, Llama 4
        names.setdefault((SPLITS[name],), name)
    return names


def _split_chain(pre_tokenizer: dict[str, Any] | None) -> tuple[str, ...]:
    """The splits a tokenizer.json pre_tokenizer applies, in order, as keys of `_llamacpp_pre_tokenizers`."""
    if not pre_tokenizer:
        raise ExportError("GGUF export: the byte-level tokenizer has no pre_tokenizer; llama.cpp always splits "
                          "text before BPE, so it would tokenize differently")
    kind = pre_tokenizer.get("type")
    if kind == "Sequence":
        return tuple(step for inner in pre_tokenizer["pretokenizers"] for step in _split_chain(inner))
    if kind == "ByteLevel":
        if pre_tokenizer.get("add_prefix_space"):
            raise ExportError("GGUF export: the tokenizer adds a space before the text (ByteLevel "
                              "add_prefix_space), which llama.cpp never does for byte-level BPE; save the tokenizer "
                              "with `add_prefix_space=False` if the model was trained that way, else export "
                              "safetensors")
        return ("bytelevel",) if pre_tokenizer.get("use_regex", True) else ()
    if kind == "Digits":
        return ("digits",) if pre_tokenizer.get("individual_digits") else (r"\p{N}+",)
    regex = (pre_tokenizer.get("pattern") or {}).get("Regex")
    keeps_matches = (pre_tokenizer.get("behavior"), bool(pre_tokenizer.get("invert"))) in {
        ("Isolated", False), ("Removed", True)}
    if kind == "Split" and regex is not None and keeps_matches:
        return (regex,)
    raise ExportError(f"GGUF export: the tokenizer's pre-tokenizer step {json.dumps(pre_tokenizer)[:120]} has no "
                      "llama.cpp equivalent; export safetensors instead")


def pre_tokenizer_name(tokenizer_json: dict[str, Any]) -> str:
    """llama.cpp's name (`tokenizer.ggml.pre`) for the splits of this byte-level tokenizer."""
    chain = _split_chain(tokenizer_json.get("pre_tokenizer"))
    name = _llamacpp_pre_tokenizers().get(chain)
    if name is None:
        shown = " then ".join(step if len(step) < 40 else step[:40] + "..." for step in chain)
        raise ExportError(f"GGUF export: the tokenizer splits text with {shown!r}, which matches no llama.cpp "
                          "pre-tokenizer lmforge knows; llama.cpp and Ollama would tokenize it differently, so "
                          "export safetensors instead")
    return name


def _add_tokenizer(writer: Any, tokenizer: PreTrainedTokenizerBase, vocab_size: int) -> None:
    if not getattr(tokenizer, "is_fast", False):
        raise ExportError("GGUF export needs a fast tokenizer (tokenizer.json); set `use_fast_tokenizer: true`")
    tokenizer_json = json.loads(tokenizer.backend_tokenizer.to_str())
    kind = _tokenizer_kind(tokenizer_json)
    by_id = {index: token for token, index in tokenizer.get_vocab().items()}
    if len(by_id) > vocab_size:
        raise ExportError(f"the tokenizer has {len(by_id)} tokens but the model only {vocab_size} embeddings")
    added = {t.content: t for t in tokenizer.added_tokens_decoder.values()}
    tokens, types = [], []
    for index in range(vocab_size):  # llama.cpp fills unused embedding rows with placeholder tokens
        token = by_id.get(index, f"[PAD{index}]")
        tokens.append(token)
        if index not in by_id:
            types.append(UNUSED)
        elif token in added:
            types.append(CONTROL if added[token].special else USER_DEFINED)
        elif token == tokenizer.unk_token:
            types.append(UNKNOWN)
        elif kind == "llama" and _BYTE_TOKEN.match(token):
            types.append(BYTE)
        else:
            types.append(NORMAL)
    merges = [m if isinstance(m, str) else " ".join(m) for m in tokenizer_json["model"].get("merges", [])]
    writer.add_tokenizer_model(kind)
    if kind == "gpt2":
        writer.add_tokenizer_pre(pre_tokenizer_name(tokenizer_json))
    else:
        writer.add_token_scores([-float(i) for i in range(vocab_size)])  # BPE rank as SentencePiece score
        writer.add_add_space_prefix(True)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    if merges:
        writer.add_token_merges(merges)
    for token, add in (("bos", writer.add_bos_token_id), ("eos", writer.add_eos_token_id),
                       ("unk", writer.add_unk_token_id), ("pad", writer.add_pad_token_id)):
        token_id = getattr(tokenizer, f"{token}_token_id")
        if token_id is not None:
            add(token_id)
    probe = tokenizer.encode("a")
    writer.add_add_bos_token(bool(probe) and probe[0] == tokenizer.bos_token_id)
    writer.add_add_eos_token(bool(probe) and probe[-1] == tokenizer.eos_token_id)
    if tokenizer.chat_template:
        writer.add_chat_template(tokenizer.chat_template)


def gguf_model_name(name_or_path: str) -> str:
    """`general.name`: the model's own name (a hub id's or folder's last part, a builtin's registry name)."""
    return Path(name_or_path.removeprefix("builtin:").rstrip("/")).name or "model"


def write_gguf(model: Any, tokenizer: PreTrainedTokenizerBase, out_file: Path, qtype: GgufType,
               name: str | None = None) -> Path:
    """Write `model` (any dtype; converted from float32) and its tokenizer to `out_file`.

    `name` (`general.name`) defaults to the name of the folder or hub id the model was loaded from.
    """
    import gguf

    spec = gguf_arch(model.config)
    vocab_size = model.get_input_embeddings().weight.shape[0]
    out_file.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(out_file, gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH[spec.arch]])
    try:
        _add_model_metadata(writer, model.config, spec, name or gguf_model_name(model.name_or_path), vocab_size)
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
        writer.add_file_type({"f16": gguf.LlamaFileType.MOSTLY_F16, "bf16": gguf.LlamaFileType.MOSTLY_BF16,
                              "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}[qtype])
        _add_tokenizer(writer, tokenizer, vocab_size)
        _add_tensors(writer, model, spec, qtype)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()
    return out_file


def verify_gguf(gguf_file: Path, tokenizer: PreTrainedTokenizerBase, texts: list[str]) -> Any:
    """Read the file back with transformers; the tokenizer must tokenize `texts` and template as the source.

    Returns the model transformers reads (dequantized, float32) for the caller's logit comparison.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # Read from a folder holding nothing else: next to an export, transformers would take the folder's
    # config.json and tokenizer files instead of the GGUF's own metadata.
    with tempfile.TemporaryDirectory() as alone:
        (Path(alone) / gguf_file.name).symlink_to(gguf_file.resolve())
        try:
            read_back = AutoTokenizer.from_pretrained(alone, gguf_file=gguf_file.name)
            model = AutoModelForCausalLM.from_pretrained(alone, gguf_file=gguf_file.name, dtype=torch.float32)
        except (ValueError, OSError, KeyError) as err:
            raise ExportError(f"transformers cannot read the GGUF {gguf_file} back: {err}") from None
    restore_pre_tokenizer(read_back, gguf_file)
    for text in texts:
        expected = tokenizer.encode(text, add_special_tokens=False)
        got = read_back.encode(text, add_special_tokens=False)
        if got != expected:
            raise ExportError(f"the GGUF tokenizer in {gguf_file} splits {text!r} differently from the source "
                              f"tokenizer ({got[:12]} vs {expected[:12]}); do not use the file")
    if (read_back.chat_template or None) != (tokenizer.chat_template or None):
        raise ExportError(f"the GGUF {gguf_file} does not carry the source tokenizer's chat template")
    return model
