"""LLaMA-Factory's optimizer methods train a tiny model end to end, each checked by what it does to the weights."""

import importlib.util

import pytest
import torch
from rich.console import Console
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, Trainer, TrainingArguments

from lmforge.config import build_config
from lmforge.errors import ConfigError, ModelError
from lmforge.preflight import preflight
from lmforge.train import optimizers
from lmforge.train.optimizers import low_rank_arguments
from lmforge.train.runner import run_training
from tests.conftest import ROOT

BASE = {"model_name_or_path": "builtin:tiny-llama", "template": "chatml", "dataset": "identity",
        "dataset_dir": str(ROOT / "examples" / "data"), "max_samples": 8, "cutoff_len": 64, "max_steps": 2,
        "per_device_train_batch_size": 4, "learning_rate": 1e-2, "logging_steps": 1, "report_to": "none",
        "overwrite_output_dir": True, "finetuning_type": "full", "save_strategy": "no", "weight_decay": 0.0}


def _needs(module: str, extra: str):
    return pytest.mark.skipif(importlib.util.find_spec(module) is None,
                              reason=f"`{module}` is not installed (pip install \"lmforge[{extra}]\")")


def train(tmp_path, name, **keys) -> dict[str, torch.Tensor]:
    """The weights after training with `keys` on top of BASE."""
    out = tmp_path / name
    summary = run_training(build_config({**BASE, "output_dir": str(out), **keys}), Console(quiet=True))
    assert summary["steps"] == keys.get("max_steps", BASE["max_steps"])
    return load_file(out / "model.safetensors")


@pytest.fixture(scope="module")
def base_weights(tiny_llama_path):
    return load_file(tiny_llama_path / "model.safetensors")


def delta(trained, base, name):
    return (trained[name] - base[name]).double()


Q0 = "model.layers.0.self_attn.q_proj.weight"
K0 = "model.layers.0.self_attn.k_proj.weight"


@pytest.mark.slow
@_needs("galore_torch", "galore")
@pytest.mark.parametrize("layerwise", [False, True])
def test_galore_updates_its_targets_within_the_projection_rank(tmp_path, base_weights, layerwise):
    """GaLore keeps Adam's moments in a rank-r projection of the gradient: the update of a target matrix has
    rank <= galore_rank (the projection is computed once here: update interval 200 > 2 steps); others are full."""
    trained = train(tmp_path, f"galore{layerwise}", use_galore=True, galore_target="q_proj", galore_rank=2,
                    galore_layerwise=layerwise)
    assert torch.linalg.matrix_rank(delta(trained, base_weights, Q0), rtol=1e-6) <= 2
    assert torch.linalg.matrix_rank(delta(trained, base_weights, K0), rtol=1e-6) > 2


@_needs("galore_torch", "galore")
def test_galore_keys_become_transformers_galore_optimizer(tiny_llama_path):
    from galore_torch import GaLoreAdafactor

    cfg = build_config({**BASE, "use_galore": True, "galore_rank": 3, "galore_update_interval": 7,
                        "galore_scale": 0.5, "galore_proj_type": "left", "optim": "adafactor"})
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_path)
    kwargs = low_rank_arguments(cfg.optimizer, cfg.training.optim, model)
    assert kwargs["optim"] == "galore_adafactor"
    assert kwargs["optim_target_modules"] == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                              "down_proj"]  # `all`: not the output head
    optimizer = Trainer(model=model, args=TrainingArguments(output_dir="/tmp/unused", use_cpu=True,
                                                            report_to="none", **kwargs)).create_optimizer()
    assert isinstance(optimizer, GaLoreAdafactor)
    projected = next(group for group in optimizer.param_groups if "rank" in group)
    assert (projected["rank"], projected["update_proj_gap"], projected["scale"], projected["proj_type"]) == \
        (3, 7, 0.5, "left")
    assert len(projected["params"]) == 7 * 2  # two layers


@pytest.mark.slow
@_needs("apollo_torch", "apollo")
def test_apollo_trains_with_its_settings(tmp_path, base_weights, tiny_llama_path):
    from apollo_torch import APOLLOAdamW

    keys = {"use_apollo": True, "apollo_target": "q_proj,v_proj", "apollo_rank": 2, "apollo_scale": 4.0,
            "apollo_proj": "svd", "apollo_scale_type": "tensor"}
    trained = train(tmp_path, "apollo", **keys)
    assert delta(trained, base_weights, Q0).abs().max() > 0
    cfg = build_config({**BASE, **keys})
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_path)
    kwargs = low_rank_arguments(cfg.optimizer, None, model)
    assert kwargs["optim"] == "apollo_adamw"
    optimizer = Trainer(model=model, args=TrainingArguments(output_dir="/tmp/unused", use_cpu=True,
                                                            report_to="none", **kwargs)).create_optimizer()
    assert isinstance(optimizer, APOLLOAdamW)
    projected = next(group for group in optimizer.param_groups if "rank" in group)
    assert {k: projected[k] for k in ("rank", "scale", "proj", "scale_type", "update_proj_gap")} == \
        {"rank": 2, "scale": 4.0, "proj": "svd", "scale_type": "tensor", "update_proj_gap": 200}
    assert len(projected["params"]) == 4


@_needs("apollo_torch", "apollo")
def test_apollo_scale_front_reaches_transformers_own_apollo_optimizer(tiny_llama_path):
    from apollo_torch import APOLLOAdamW

    from lmforge.train.optimizers import set_optimizer

    keys = {"use_apollo": True, "apollo_target": "q_proj,v_proj", "apollo_rank": 2}
    built = {}
    for front in (False, True):
        cfg = build_config({**BASE, **keys, "apollo_scale_front": front})
        model = AutoModelForCausalLM.from_pretrained(tiny_llama_path)
        args = TrainingArguments(output_dir="/tmp/unused", use_cpu=True, report_to="none",
                                 **low_rank_arguments(cfg.optimizer, None, model))
        trainer = Trainer(model=model, args=args)
        set_optimizer(trainer, cfg)
        built[front] = trainer.optimizer if front else trainer.create_optimizer()
    assert isinstance(built[True], APOLLOAdamW) and built[True].scale_front and not built[False].scale_front
    settings = [[{k: v for k, v in group.items() if k != "params"} | {"count": len(group["params"])}
                 for group in built[front].param_groups] for front in (False, True)]
    assert settings[0] == settings[1]  # transformers' own groups and APOLLO settings; only scale_front differs
    with pytest.raises(ConfigError, match="`apollo_scale_front` with `apollo_layerwise`"):
        build_config({**BASE, **keys, "apollo_scale_front": True, "apollo_layerwise": True})


@pytest.mark.slow
@_needs("badam", "badam")
def test_badam_layer_mode_trains_one_block_at_a_time(tmp_path, base_weights):
    """Block 1 first, switching every 50 steps: after 2 steps layer 0 and the embeddings are untouched."""
    trained = train(tmp_path, "badam", use_badam=True, badam_start_block=1, badam_switch_mode="ascending")
    changed = {name for name in trained if not torch.equal(trained[name], base_weights[name])}
    assert changed and all(name.startswith("model.layers.1.") for name in changed), sorted(changed)


@pytest.mark.slow
@_needs("badam", "badam")
@pytest.mark.skipif(not optimizers._norms_sparse_gradients(), reason="torch before 2.14: preflight refuses it")
def test_badam_ratio_mode_updates_a_share_of_each_matrix(tmp_path, base_weights):
    trained = train(tmp_path, "badam_ratio", use_badam=True, badam_mode="ratio", badam_update_ratio=0.1,
                    max_steps=1)
    share = (delta(trained, base_weights, Q0) != 0).double().mean()
    assert 0 < share <= 0.2, share


@pytest.mark.slow
@_needs("adam_mini", "adam-mini")
def test_adam_mini_trains_with_one_second_moment_per_block(tmp_path, base_weights):
    """Adam-mini's first step divides a block's gradient by one shared RMS, so the update of an MLP row is
    proportional to its gradient; AdamW's first step is sign-like (every entry about lr)."""
    trained = train(tmp_path, "adam_mini", use_adam_mini=True, max_steps=1)
    adamw = train(tmp_path, "adamw", max_steps=1)
    name = "model.layers.0.mlp.down_proj.weight"
    mini_update, adamw_update = delta(trained, base_weights, name), delta(adamw, base_weights, name)
    assert mini_update.abs().max() > 0
    # AdamW's first step: |update| = lr for nearly every entry; Adam-mini's varies with the gradient
    assert adamw_update.abs().std() / adamw_update.abs().mean() < 0.1
    assert mini_update.abs().std() / mini_update.abs().mean() > 0.3


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(torch.optim, "Muon"), reason="torch.optim.Muon arrived in torch 2.9")
def test_muon_orthogonalises_hidden_matrix_updates(tmp_path, base_weights):
    """One Muon step on a hidden matrix is its orthogonalised momentum: singular values close together, unlike
    AdamW's; embeddings still train (with AdamW)."""
    trained = train(tmp_path, "muon", use_muon=True, max_steps=1)
    adamw = train(tmp_path, "adamw", max_steps=1)

    def spread(weights):
        values = torch.linalg.svdvals(delta(weights, base_weights, "model.layers.0.mlp.gate_proj.weight"))
        return float(values.max() / values.min())

    assert spread(trained) < 3 < spread(adamw)
    assert delta(trained, base_weights, "model.embed_tokens.weight").abs().max() > 0
    assert delta(trained, base_weights, "lm_head.weight").abs().max() > 0


def test_optimizer_methods_are_checked_before_anything_loads():
    cases = [({"use_galore": True, "finetuning_type": "lora"}, "not LoRA adapters"),
             ({"use_galore": True, "use_muon": True}, "keep one"),
             ({"use_galore": True, "galore_layerwise": True, "gradient_accumulation_steps": 2},
              "gradient_accumulation_steps: 1"),
             ({"use_apollo": True, "optim": "sgd"}, "builds on `optim` adamw_torch"),
             ({"use_galore": True, "optim_args": "rank=4"}, "remove `optim_args`"),
             ({"use_badam": True, "deepspeed": {"zero_optimization": {"stage": 2}}}, "remove `deepspeed`"),
             ({"use_muon": True, "finetuning_type": "lora", "loraplus_lr_ratio": 4.0}, "keep one")]
    for keys, message in cases:
        with pytest.raises(ConfigError, match=message):
            build_config({"finetuning_type": "full", **keys})


def test_what_the_installed_torch_cannot_run_fails_before_a_weight_loads(monkeypatch, tmp_path):
    """torch before 2.9 has no Muon; before 2.14 no norm of BAdam ratio mode's sparse gradients, which the Trainer
    takes every step: preflight names the fix instead of a traceback in the first step."""
    def check(**keys):
        for command in ("check", "train"):
            preflight(build_config({**BASE, "output_dir": str(tmp_path), **keys}), command)

    monkeypatch.delattr(torch.optim, "Muon", raising=False)
    with pytest.raises(ModelError, match=r"torch.optim.Muon, which torch has from 2.9 on"):
        check(use_muon=True)
    monkeypatch.setattr(optimizers, "_norms_sparse_gradients", lambda: False)
    for clipping in ({}, {"max_grad_norm": 0.0}):  # the Trainer logs the norm without clipping too
        with pytest.raises(ModelError, match=r"`badam_mode: ratio` leaves sparse gradients.*`badam_mode: layer`"):
            check(use_badam=True, badam_mode="ratio", **clipping)
    check(use_badam=True)  # layer mode: dense gradients
