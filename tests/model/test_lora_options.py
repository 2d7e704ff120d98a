"""LoRA options that show in the model before training: LoRA+ learning rates, DoRA/rsLoRA flags, PiSSA init."""

import torch
from transformers import TrainingArguments

from lmforge.model.kind import detect_kind
from lmforge.model.lora import apply_lora, loraplus_optimizer
from tests.model.conftest import config_for, load_configured


def lora_model(path, **keys):
    cfg = config_for(path, **keys)
    model = load_configured(cfg, dtype=torch.float32)
    return apply_lora(model, cfg.finetuning, detect_kind(model.config), adapters=[]), cfg


def test_loraplus_gives_the_b_matrices_ratio_times_the_learning_rate(tiny_family, tmp_path):
    model, cfg = lora_model(tiny_family("llama"), loraplus_lr_ratio=16.0)
    args = TrainingArguments(output_dir=str(tmp_path), learning_rate=1e-4, weight_decay=0.01, report_to="none")
    optimizer = loraplus_optimizer(model, cfg.finetuning, args)
    by_lr = {}
    for group in optimizer.param_groups:
        for param in group["params"]:
            by_lr.setdefault(group["lr"], set()).add(id(param))
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[i].split(".")[-3] for i in by_lr[1e-4]} == {"lora_A"}
    assert {names[i].split(".")[-3] for i in by_lr[1.6e-3]} == {"lora_B"}
    plain, plain_cfg = lora_model(tiny_family("llama"))
    assert loraplus_optimizer(plain, plain_cfg.finetuning, args) is None


def test_dora_rslora_and_pissa_reach_peft(tiny_family):
    model, _ = lora_model(tiny_family("qwen2"), use_dora=True, use_rslora=True, lora_rank=4, lora_alpha=8)
    config = model.peft_config["default"]
    assert config.use_dora and config.use_rslora
    layer = model.base_model.model.model.layers[0].self_attn.q_proj
    assert layer.scaling["default"] == 8 / 4 ** 0.5  # rsLoRA: alpha / sqrt(r)
    assert "default" in layer.lora_magnitude_vector  # DoRA's magnitude vector

    qwen2 = load_configured(config_for(tiny_family("qwen2")), dtype=torch.float32)
    base = qwen2.model.layers[0].self_attn.q_proj.weight
    model, _ = lora_model(tiny_family("qwen2"), pissa_init=True, pissa_iter=-1)
    layer = model.base_model.model.model.layers[0].self_attn.q_proj
    assert model.peft_config["default"].init_lora_weights == "pissa"
    assert not torch.allclose(layer.base_layer.weight, base)  # the residual, not the original weight
    rebuilt = layer.base_layer.weight + layer.scaling["default"] * layer.lora_B["default"].weight @ \
        layer.lora_A["default"].weight
    assert torch.allclose(rebuilt, base, atol=1e-5)


def test_new_tokens_train_the_embeddings_once_when_tied(tiny_family):
    from lmforge.model.lora import build_lora_config

    for family, expected in (("qwen2", ["embed_tokens"]), ("llama", ["embed_tokens", "lm_head"])):
        cfg = config_for(tiny_family(family))
        model = load_configured(cfg, dtype=torch.float32)
        lora = build_lora_config(model, cfg.finetuning, detect_kind(model.config), new_tokens=True)
        assert sorted(lora.modules_to_save) == expected, family
