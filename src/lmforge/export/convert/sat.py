"""`--from sat`: a SwissArmyTransformer (SAT) GLM / CogVLM-style language model -> transformers' `glm`.

SAT layout read here (what SAT's `save_checkpoint` writes):

    SOURCE/model_config.json                      SAT args: the architecture
    SOURCE/latest                                 the iteration folder to use (optional)
    SOURCE/<iteration>/mp_rank_00_model_states.pt {"module": state_dict}  (or directly in SOURCE)

Key mapping (N = layer index), SAT -> transformers `GlmForCausalLM`:

    transformer.word_embeddings.weight                    model.embed_tokens.weight
    transformer.layers.N.input_layernorm.weight           model.layers.N.input_layernorm.weight
    transformer.layers.N.attention.query_key_value.{w,b}  model.layers.N.self_attn.{q,k,v}_proj.{w,b}
                                                          split by rows: [q: heads*d | k: kv*d | v: kv*d]
    transformer.layers.N.attention.dense.weight           model.layers.N.self_attn.o_proj.weight
    transformer.layers.N.post_attention_layernorm.weight  model.layers.N.post_attention_layernorm.weight
    transformer.layers.N.mlp.dense_h_to_4h.weight         model.layers.N.mlp.gate_up_proj.weight  ([gate | up])
    transformer.layers.N.mlp.dense_4h_to_h.weight         model.layers.N.mlp.down_proj.weight
    transformer.final_layernorm.weight                    model.norm.weight
    transformer.output_layer.weight                       lm_head.weight  (absent: tied to the embeddings)

    *.rotary_emb.inv_freq (and other rotary caches)       dropped: transformers recomputes them from the
                                                          config, so they are rightly absent from the result

SAT args -> GlmConfig: num_layers -> num_hidden_layers, hidden_size, num_attention_heads,
num_multi_query_heads -> num_key_value_heads (0 or absent: one per head), inner_hidden_size ->
intermediate_size, vocab_size, max_sequence_length -> max_position_embeddings, layernorm_epsilon ->
rms_norm_eps, hidden_size_per_attention_head -> head_dim, rotary_percent -> partial_rotary_factor
(default 0.5, GLM's), rope_theta (default 10000), use_qkv_bias / add_qkv_bias -> attention_bias.

Anything else in the checkpoint (a CogVLM vision tower under `mixins.eva`, vision-expert weights)
is not guessed at: the conversion stops and names the keys.
"""

import json
import re
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from lmforge.errors import ExportError
from lmforge.export.convert.common import ConversionResult, build_model, load_tokenizer_if_any, save_and_verify

REQUIRED_ARGS = ("num_layers", "hidden_size", "num_attention_heads", "inner_hidden_size", "vocab_size")
RENAMES = [  # (SAT pattern, transformers name); {n} is the layer index
    (r"transformer\.word_embeddings\.weight", "model.embed_tokens.weight"),
    (r"transformer\.layers\.(\d+)\.input_layernorm\.weight", "model.layers.{n}.input_layernorm.weight"),
    (r"transformer\.layers\.(\d+)\.attention\.dense\.weight", "model.layers.{n}.self_attn.o_proj.weight"),
    (r"transformer\.layers\.(\d+)\.post_attention_layernorm\.weight",
     "model.layers.{n}.post_attention_layernorm.weight"),
    (r"transformer\.layers\.(\d+)\.mlp\.dense_h_to_4h\.weight", "model.layers.{n}.mlp.gate_up_proj.weight"),
    (r"transformer\.layers\.(\d+)\.mlp\.dense_4h_to_h\.weight", "model.layers.{n}.mlp.down_proj.weight"),
    (r"transformer\.final_layernorm\.weight", "model.norm.weight"),
    (r"transformer\.output_layer\.weight", "lm_head.weight"),
]
FUSED_QKV = re.compile(r"transformer\.layers\.(\d+)\.attention\.query_key_value\.(weight|bias)")
RECOMPUTED = re.compile(r"(rotary_emb\.(inv_freq|cos_cached|sin_cached)|rotary_pos_emb\.\w+)$")


def sat_args(source: Path) -> dict[str, Any]:
    path = source / "model_config.json"
    if not path.is_file():
        raise ExportError(f"{source} has no model_config.json, the SAT args that describe the architecture: copy it "
                          "from the SAT model this checkpoint was trained from (SAT writes it next to `latest`)")
    try:
        args = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ExportError(f"{path} is not valid JSON ({err.msg} at line {err.lineno})") from None
    args = args.get("args", args)  # some SAT versions nest the args
    missing = [key for key in REQUIRED_ARGS if key not in args]
    if missing:
        raise ExportError(f"{path} lacks the SAT args {', '.join(missing)}; they size the model and cannot be "
                          "guessed: take them from the SAT model's original model_config.json")
    return args


def glm_config(args: dict[str, Any], tie: bool) -> Any:
    from transformers import GlmConfig

    heads = args["num_attention_heads"]
    return GlmConfig(
        vocab_size=args["vocab_size"],
        hidden_size=args["hidden_size"],
        intermediate_size=args["inner_hidden_size"],
        num_hidden_layers=args["num_layers"],
        num_attention_heads=heads,
        num_key_value_heads=args.get("num_multi_query_heads") or heads,
        head_dim=args.get("hidden_size_per_attention_head") or args["hidden_size"] // heads,
        max_position_embeddings=args.get("max_sequence_length", 8192),
        rms_norm_eps=args.get("layernorm_epsilon", 1e-5),
        attention_bias=bool(args.get("use_qkv_bias", args.get("add_qkv_bias", True))),
        rope_parameters={"rope_type": "default", "rope_theta": float(args.get("rope_theta", 10000.0)),
                         "partial_rotary_factor": float(args.get("rotary_percent", 0.5))},
        tie_word_embeddings=tie,
        pad_token_id=args.get("pad_token_id"),
        bos_token_id=args.get("bos_token_id"),
        eos_token_id=args.get("eos_token_id"),
    )


def model_states_file(source: Path) -> Path:
    folder = source
    if (source / "latest").is_file():
        folder = source / (source / "latest").read_text().strip()
    ranks = sorted(folder.glob("mp_rank_*_model_states.pt"))
    if not ranks:
        raise ExportError(f"no mp_rank_00_model_states.pt in {folder}: point SOURCE at the SAT checkpoint folder "
                          "(the one holding model_config.json and `latest`)")
    if len(ranks) > 1:
        raise ExportError(f"{folder} holds {len(ranks)} model-parallel ranks; merge them into one rank with SAT "
                          "first (lmforge converts mp_size 1 checkpoints)")
    return ranks[0]


def map_sat_state(sat: dict[str, torch.Tensor], config: Any) -> tuple[dict[str, torch.Tensor], list[str]]:
    """transformers' state dict and the SAT keys dropped on purpose (recomputed buffers)."""
    q_rows = config.num_attention_heads * config.head_dim
    kv_rows = config.num_key_value_heads * config.head_dim
    out: dict[str, torch.Tensor] = {}
    dropped, unknown = [], []
    for key, tensor in sat.items():
        if RECOMPUTED.search(key):
            dropped.append(key)
            continue
        if match := FUSED_QKV.fullmatch(key):
            layer, kind = match.groups()
            if tensor.shape[0] != q_rows + 2 * kv_rows:
                raise ExportError(f"{key} has {tensor.shape[0]} rows; the SAT args give q {q_rows} + k {kv_rows} + "
                                  f"v {kv_rows} = {q_rows + 2 * kv_rows}: check num_multi_query_heads and "
                                  "hidden_size_per_attention_head in model_config.json")
            q, k, v = tensor.split([q_rows, kv_rows, kv_rows], dim=0)
            for name, part in (("q", q), ("k", k), ("v", v)):
                out[f"model.layers.{layer}.self_attn.{name}_proj.{kind}"] = part.clone()
            continue
        for pattern, target in RENAMES:
            if match := re.fullmatch(pattern, key):
                out[target.format(n=match.group(1) if match.groups() else "")] = tensor
                break
        else:
            unknown.append(key)
    if unknown:
        raise ExportError(f"{len(unknown)} SAT keys have no place in a GLM language model ({', '.join(unknown[:4])}"
                          f"{', ...' if len(unknown) > 4 else ''}): a vision tower or extra mixins are not converted; "
                          "lmforge maps the documented GLM layout only (docs/export.md)")
    return out, dropped


def convert(source: Path, out_dir: Path, *, config: Path | None = None,
            console: Console | None = None) -> ConversionResult:
    if config is not None:
        raise ExportError("a SAT checkpoint's config is written from its model_config.json; drop `--config`")
    args = sat_args(source)
    states_file = model_states_file(source)
    loaded = torch.load(states_file, map_location="cpu", weights_only=True)
    sat = loaded.get("module", loaded) if isinstance(loaded, dict) else loaded
    tied = "transformer.output_layer.weight" not in sat
    hf_config = glm_config(args, tie=tied)
    state, dropped = map_sat_state(sat, hf_config)
    model = build_model(hf_config, state, what=f"SAT checkpoint {source}")
    notes = [f"mapped {len(sat) - len(dropped)} SAT tensors onto transformers' glm ({len(state)} tensors; fused "
             f"query_key_value split into q/k/v){'; output head tied to the embeddings' if tied else ''}"]
    if dropped:
        notes.append(f"dropped {len(dropped)} rotary buffers ({dropped[0]}, ...): transformers recomputes them from "
                     "the config, so their absence is expected, not a loading warning to worry about")
    return save_and_verify(model, out_dir, what=f"SAT checkpoint {source.name}",
                           tokenizer=load_tokenizer_if_any(source), side_files=source, notes=notes, console=console)
