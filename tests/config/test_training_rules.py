"""The training rules that restate transformers' own checks: each refuses, before anything loads, a config that
transformers refuses only when the Trainer is built (after the model has loaded, as a traceback); and the same
values without the rule really are refused by transformers, so a rule cannot outlive the check it restates."""

import copy
import warnings

import pytest
import torch
from transformers import Trainer, TrainingArguments

from lmforge.config import build_config
from lmforge.config import rules as rules_module
from lmforge.config.training_rules import (
    best_checkpoint_evaluates,
    evaluation_has_data,
    one_sharding_plan,
    prefetch_needs_workers,
    schedule_evaluates,
    whole_step_counts,
)
from lmforge.errors import ConfigError
from lmforge.train.runner import training_kwargs

EVALUATES = {"val_size": 0.1, "eval_strategy": "steps"}
REFUSED = [
    (evaluation_has_data, {"eval_strategy": "steps"},
     r"`eval_strategy: steps` evaluates on held-out data: set `val_size` .* or `eval_dataset`, or remove"),
    (whole_step_counts, {"logging_steps": 1.5}, r"`logging_steps: 1.5`: a step count is a whole number, or a share"),
    (whole_step_counts, {"save_steps": 2.5}, r"`save_steps: 2.5`: a step count is a whole number"),
    (best_checkpoint_evaluates, {"load_best_model_at_end": True},
     r"`load_best_model_at_end` keeps the checkpoint that evaluated best.*set `eval_strategy: steps` \(now `no`\)"),
    (best_checkpoint_evaluates, {"load_best_model_at_end": True, **EVALUATES, "save_strategy": "epoch"},
     r"set `eval_strategy: epoch` \(now `steps`\) like `save_strategy`, or `save_strategy: best`"),
    (best_checkpoint_evaluates, {"load_best_model_at_end": True, **EVALUATES, "eval_steps": 3, "save_steps": 5},
     r"`save_steps: 5` must be a multiple of `eval_steps: 3`"),
    (best_checkpoint_evaluates, {"load_best_model_at_end": True, **EVALUATES},  # 500 and logging_steps' 10: fine
     None),
    (best_checkpoint_evaluates, {**EVALUATES, "save_strategy": "best"}, None),  # watching the eval loss by default
    (best_checkpoint_evaluates, {"load_best_model_at_end": True, **EVALUATES, "eval_steps": 0.1, "save_steps": 50},
     r"`save_steps: 50` must be a multiple of `eval_steps: 0.1` \(both whole steps or both shares\)"),
    (schedule_evaluates, {"lr_scheduler_type": "reduce_lr_on_plateau"},
     r"`lr_scheduler_type: reduce_lr_on_plateau` lowers the learning rate when the eval loss stops improving"),
    (schedule_evaluates, {"lr_scheduler_type": "greedy"}, r"`lr_scheduler_type: greedy` lowers"),
    (prefetch_needs_workers, {"dataloader_prefetch_factor": 2},
     r"`dataloader_prefetch_factor` sets how far worker processes load ahead: set `dataloader_num_workers`"),
]


def _transformers_verdict(raw: dict) -> Exception | None:
    """What transformers says of these keys when lmforge's rules let them through: building the arguments and a
    Trainer (the eval dataset is checked there), as a run does after loading its model."""
    try:
        args = TrainingArguments(output_dir="unused", **training_kwargs(build_config(raw)))
        Trainer(model=torch.nn.Linear(1, 1), args=args, eval_dataset=[{}] if raw.get("val_size") else None)
    except ValueError as refused:
        return refused
    return None


@pytest.mark.parametrize(("rule", "raw", "said"), REFUSED, ids=lambda value: getattr(value, "__name__", None))
def test_each_rule_refuses_what_transformers_refuses_after_loading(rule, raw, said, monkeypatch):
    if said is None:
        build_config(raw)
        assert _transformers_verdict(raw) is None
        return
    with pytest.raises(ConfigError, match=said):
        build_config(raw)
    monkeypatch.setattr(rules_module, "RULES", [other for other in rules_module.RULES if other is not rule])
    assert isinstance(_transformers_verdict(raw), ValueError), "transformers no longer refuses this: drop the rule?"


def test_the_evaluation_settings_transformers_accepts_pass():
    for raw in ({**EVALUATES, "load_best_model_at_end": True, "eval_steps": 50, "save_steps": 100},
                {**EVALUATES, "load_best_model_at_end": True, "save_strategy": "best"},
                {"eval_dataset": "identity", "eval_strategy": "epoch", "lr_scheduler_type": "reduce_lr_on_plateau"},
                {"dataloader_num_workers": 2, "dataloader_prefetch_factor": 4}, {"logging_steps": 0.05}):
        build_config(raw)


@pytest.mark.parametrize(("fsdp", "said"), [
    ("full_shrd auto_wrap", r"`fsdp`: full_shrd is not an FSDP option: choose from full_shard, shard_grad_op"),
    (["hybrid_shard", "auto_wrap"], r"`fsdp: hybrid_shard auto_wrap`: hybrid_shard is a sharding strategy of FSDP1, "
                                    r"and transformers runs FSDP2 unless `fsdp_config: \{version: 1\}`"),
])
def test_fsdp_options_transformers_refuses_in_the_training_processes_are_refused_first(fsdp, said, monkeypatch):
    with pytest.raises(ConfigError, match=said):
        build_config({"fsdp": fsdp})
    monkeypatch.setattr(rules_module, "RULES", [rule for rule in rules_module.RULES if rule is not one_sharding_plan])
    written = build_config({"fsdp": fsdp}).training.fsdp  # one process drops `fsdp`: ask for the arguments directly
    with pytest.raises(ValueError):
        TrainingArguments(output_dir="unused", use_cpu=True, fsdp=written)


@pytest.mark.parametrize(("words", "fsdp_config"), [
    ("full_shard auto_wrap", None), ("shard_grad_op offload", {"fsdp_version": 2}),
    ("full_shard", {"reshard_after_forward": False, "transformer_layer_cls_to_wrap": ["LlamaDecoderLayer"]}),
    ("hybrid_shard auto_wrap offload", {"version": 1}),
])
def test_fsdp_words_reach_transformers_as_the_settings_it_would_read_from_them(words, fsdp_config):
    """lmforge hands transformers `fsdp: true` and the words' meaning in `fsdp_config` (the form transformers keeps);
    its arguments end up as they do from the words themselves (the form it is removing)."""
    from_words = TrainingArguments(output_dir="unused", use_cpu=True, fsdp=words,
                                   fsdp_config=copy.deepcopy(fsdp_config))
    kwargs = build_config({"fsdp": words, "fsdp_config": fsdp_config}).training.trainer_kwargs()
    assert kwargs["fsdp"] is True
    ours = TrainingArguments(output_dir="unused", use_cpu=True, fsdp=kwargs["fsdp"], fsdp_config=kwargs["fsdp_config"])
    assert (ours.fsdp, ours.fsdp_config) == (from_words.fsdp, from_words.fsdp_config)


def test_fsdp_as_transformers_now_writes_it_and_as_llamafactory_does_pass():
    assert build_config({"fsdp": True}).training.fsdp is True  # transformers' own form (`--fsdp`)
    for accepted in ({"fsdp": ["full_shard", "auto_wrap"]}, {"fsdp": "shard_grad_op offload"},
                     {"fsdp": "hybrid_shard", "fsdp_config": {"version": 1}}):
        build_config(accepted)
    with pytest.raises(ConfigError, match=r"`fsdp` and `deepspeed` each shard the model across processes: keep one"):
        build_config({"fsdp": True, "deepspeed": {"zero_optimization": {"stage": 2}}})


def test_the_batch_finder_is_refused_with_zero3_only():
    """transformers refuses it when the Trainer is built under DeepSpeed (several processes, after loading)."""
    with pytest.raises(ConfigError, match=r"`auto_find_batch_size` cannot rebuild a DeepSpeed ZeRO-3 engine"):
        build_config({"auto_find_batch_size": True, "deepspeed": {"zero_optimization": {"stage": 3}}})
    build_config({"auto_find_batch_size": True, "deepspeed": {"zero_optimization": {"stage": 2}}})


def test_transformers_old_argument_names_reach_it_under_the_new_ones_without_its_warning():
    kwargs = build_config({"gradient_checkpointing": True,
                           "gradient_checkpointing_kwargs": {"use_reentrant": True}}).training.trainer_kwargs()
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # "`gradient_checkpointing` is deprecated ..."
        args = TrainingArguments(output_dir="unused", use_cpu=True, **kwargs)
    assert args.activation_checkpointing is True and args.activation_checkpointing_kwargs == {"use_reentrant": True}
    with pytest.raises(ConfigError, match=r"`gradient_checkpointing` and `activation_checkpointing` \(its new name\) "
                                          r"say different things: keep `activation_checkpointing`"):
        build_config({"gradient_checkpointing": True, "activation_checkpointing": False})
    build_config({"gradient_checkpointing": True, "activation_checkpointing": True})
