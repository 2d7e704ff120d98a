"""A DeepSpeed config's explicit values against the run's own, before the model loads.

transformers fills a DeepSpeed config's `"auto"` values from the training arguments and refuses explicit ones that
differ, when it builds the DeepSpeed engine: after the model has loaded, in every process. A config written for
another run (its own batch size, learning rate or fp16) is refused here instead, each difference named with the fix.
"""

import dataclasses
import json
from typing import Any

from lmforge.errors import ConfigError

# DeepSpeed key -> the TrainingArguments value it must equal (as transformers compares them)
MATCHED: dict[str, Any] = {
    "train_micro_batch_size_per_gpu": lambda a: a["per_device_train_batch_size"],
    "gradient_accumulation_steps": lambda a: a["gradient_accumulation_steps"],
    "train_batch_size": lambda a: a["world_size"] * a["per_device_train_batch_size"] * a["gradient_accumulation_steps"],
    "gradient_clipping": lambda a: a["max_grad_norm"],
    "optimizer.params.lr": lambda a: a["learning_rate"],
    "optimizer.params.betas": lambda a: [a["adam_beta1"], a["adam_beta2"]],
    "optimizer.params.eps": lambda a: a["adam_epsilon"],
    "optimizer.params.weight_decay": lambda a: a["weight_decay"],
    "scheduler.params.warmup_max_lr": lambda a: a["learning_rate"],
    "fp16.enabled": lambda a: bool(a["fp16"] or a["fp16_full_eval"]),
    "bf16.enabled": lambda a: bool(a["bf16"] or a["bf16_full_eval"]),
}
# what the batch finder changes as it goes (transformers does not compare them then)
BATCH_KEYS = ("train_micro_batch_size_per_gpu", "train_batch_size")
# the lmforge key a mismatch is fixed with
YAML_KEY = {"train_micro_batch_size_per_gpu": "per_device_train_batch_size", "train_batch_size":
            "per_device_train_batch_size x gradient_accumulation_steps x processes", "gradient_clipping":
            "max_grad_norm", "optimizer.params.lr": "learning_rate", "optimizer.params.betas": "adam_beta1, adam_beta2",
            "optimizer.params.eps": "adam_epsilon", "optimizer.params.weight_decay": "weight_decay",
            "scheduler.params.warmup_max_lr": "learning_rate", "fp16.enabled": "fp16", "bf16.enabled": "bf16"}


def _value(settings: dict[str, Any], dotted: str) -> Any:
    node: Any = settings
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def deepspeed_mismatches(settings: dict[str, Any], kwargs: dict[str, Any], world_size: int) -> list[str]:
    """The DeepSpeed config's explicit values (not "auto") that differ from the run's TrainingArguments `kwargs`."""
    from transformers import TrainingArguments

    run = {field.name: field.default for field in dataclasses.fields(TrainingArguments)
           if field.default is not dataclasses.MISSING}
    run.update(kwargs, world_size=world_size)
    differences = []
    for key, ours in MATCHED.items():
        written = _value(settings, key)
        if written is None or written == "auto" or (key in BATCH_KEYS and run.get("auto_find_batch_size")):
            continue
        if written != ours(run):
            differences.append(f"`{key}: {json.dumps(written)}` where the run has `{YAML_KEY.get(key, key)}`: "
                               f"{json.dumps(ours(run))}")
    return differences


def check_deepspeed_matches(settings: dict[str, Any], kwargs: dict[str, Any], world_size: int) -> None:
    if differences := deepspeed_mismatches(settings, kwargs, world_size):
        raise ConfigError("the DeepSpeed config disagrees with the training config: " + "; ".join(differences)
                          + ". Set those values to \"auto\" in the DeepSpeed config (it then takes the training "
                          "config's), or the same values in both")
