"""`--from sat`: a SAT GLM-layout checkpoint, built here from a tiny transformers GLM, converts back exactly."""

import json
import shutil

import pytest
import torch
from rich.console import Console
from transformers import AutoModelForCausalLM, GlmConfig

from lmforge.errors import ExportError
from lmforge.export.convert import run_convert
from lmforge.testing import build_tiny_tokenizer


@pytest.fixture(scope="module")
def glm(tmp_path_factory):
    """A tiny GLM (grouped-query attention with qkv bias, partial rotary, fused gate/up) and its tokenizer."""
    tokenizer = build_tiny_tokenizer()
    config = GlmConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=512,
                       rms_norm_eps=1e-5, pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).eval()
    folder = tmp_path_factory.mktemp("glm")
    tokenizer.save_pretrained(folder)
    return model, tokenizer, folder


def write_sat_checkpoint(model, folder, *, tied=False, with_rotary=True, iteration="1000"):
    """The layout SAT saves: model_config.json of SAT args, `latest`, <iter>/mp_rank_00_model_states.pt."""
    c = model.config
    sd = model.state_dict()
    sat = {"transformer.word_embeddings.weight": sd["model.embed_tokens.weight"],
           "transformer.final_layernorm.weight": sd["model.norm.weight"]}
    if not tied:
        sat["transformer.output_layer.weight"] = sd["lm_head.weight"]
    for n in range(c.num_hidden_layers):
        p = f"model.layers.{n}."
        s = f"transformer.layers.{n}."
        sat[s + "input_layernorm.weight"] = sd[p + "input_layernorm.weight"]
        sat[s + "post_attention_layernorm.weight"] = sd[p + "post_attention_layernorm.weight"]
        for kind in ("weight", "bias"):
            sat[s + f"attention.query_key_value.{kind}"] = torch.cat(
                [sd[p + f"self_attn.{x}_proj.{kind}"] for x in "qkv"])
        sat[s + "attention.dense.weight"] = sd[p + "self_attn.o_proj.weight"]
        sat[s + "mlp.dense_h_to_4h.weight"] = sd[p + "mlp.gate_up_proj.weight"]
        sat[s + "mlp.dense_4h_to_h.weight"] = sd[p + "mlp.down_proj.weight"]
        if with_rotary:  # old SAT versions saved the rotary inverse frequencies as a buffer
            sat[s + "attention.rotary_emb.inv_freq"] = 1.0 / 10000 ** (torch.arange(0, 8, 2).float() / 8)
    args = {"model_class": "ChatGLMModel", "num_layers": c.num_hidden_layers, "hidden_size": c.hidden_size,
            "num_attention_heads": c.num_attention_heads, "num_multi_query_heads": c.num_key_value_heads,
            "hidden_size_per_attention_head": c.head_dim, "inner_hidden_size": c.intermediate_size,
            "vocab_size": c.vocab_size, "max_sequence_length": c.max_position_embeddings,
            "layernorm_epsilon": c.rms_norm_eps, "use_qkv_bias": True, "pad_token_id": c.pad_token_id}
    folder.mkdir(parents=True)
    (folder / "model_config.json").write_text(json.dumps(args))
    (folder / "latest").write_text(iteration)
    (folder / iteration).mkdir()
    torch.save({"module": {k: v.clone() for k, v in sat.items()}, "iteration": int(iteration)},
               folder / iteration / "mp_rank_00_model_states.pt")
    return folder


def probe_logits(model):
    ids = torch.tensor([[5, 99, 250, 7, 31, 600, 2, 18]])
    with torch.inference_mode():
        return model(ids).logits


@pytest.mark.parametrize("tied", [False, True])
def test_sat_checkpoint_converts_back_to_the_same_logits(tmp_path, glm, tied):
    model, _, tokenizer_folder = glm
    if tied:  # a tied SAT model stores no output layer; the HF side must tie too
        model = AutoModelForCausalLM.from_config(model.config.__class__(**{**model.config.to_dict(),
                                                                          "tie_word_embeddings": True})).eval()
    source = write_sat_checkpoint(model, tmp_path / "sat", tied=tied)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy2(tokenizer_folder / name, source / name)
    console = Console(record=True, width=200)
    result = run_convert(source, tmp_path / "hf", "sat", console=console)
    text = " ".join(console.export_text().split())
    assert "dropped 2 rotary buffers" in text and "recomputes them from the config" in text
    assert result.report.max_abs_diff == 0
    converted = AutoModelForCausalLM.from_pretrained(tmp_path / "hf", dtype=torch.float32)
    assert type(converted).__name__ == "GlmForCausalLM"
    assert converted.config.tie_word_embeddings is tied
    assert converted.config.num_key_value_heads == 2 and converted.config.head_dim == 16
    assert (tmp_path / "hf" / "tokenizer.json").is_file()
    assert torch.allclose(probe_logits(converted), probe_logits(model), atol=1e-5, rtol=0)


def test_sat_errors_name_what_is_missing(tmp_path, glm):
    model = glm[0]
    source = write_sat_checkpoint(model, tmp_path / "sat", with_rotary=False)
    args = json.loads((source / "model_config.json").read_text())
    (source / "model_config.json").write_text(json.dumps({k: v for k, v in args.items() if k != "inner_hidden_size"}))
    with pytest.raises(ExportError, match=r"lacks the SAT args inner_hidden_size"):
        run_convert(source, tmp_path / "a", "sat")
    (source / "model_config.json").unlink()
    with pytest.raises(ExportError, match=r"has no model_config.json, the SAT args"):
        run_convert(source, tmp_path / "b", "sat")
    (source / "model_config.json").write_text(json.dumps({**args, "num_multi_query_heads": 4}))
    with pytest.raises(ExportError, match=r"query_key_value.weight has 128 rows; the SAT args give q 64"):
        run_convert(source, tmp_path / "c", "sat")


def test_unknown_sat_keys_stop_the_conversion(tmp_path, glm):
    source = write_sat_checkpoint(glm[0], tmp_path / "sat")
    states = source / "1000" / "mp_rank_00_model_states.pt"
    checkpoint = torch.load(states, weights_only=True)
    checkpoint["module"]["mixins.eva.vit_model.transformer.word_embeddings.weight"] = torch.zeros(2, 2)
    torch.save(checkpoint, states)
    with pytest.raises(ExportError, match=r"1 SAT keys have no place in a GLM language model \(mixins.eva"):
        run_convert(source, tmp_path / "hf", "sat")
