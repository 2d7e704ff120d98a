"""The training group: every `transformers.TrainingArguments` field, typed, without importing it.

Field names and types come from `training_fields.json` (see `lmforge.train.fields_snapshot`).
Fields the user does not set keep transformers' defaults, except the few lmforge sets below.
"""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model

from lmforge.config.fsdp import fsdp_arguments, fsdp_settings
from lmforge.errors import ConfigError

_SNAPSHOT = Path(__file__).resolve().parent / "training_fields.json"
_KIND_TYPES: dict[str, Any] = {
    "bool": bool, "int": int, "float": float, "str": str, "dict": dict, "list": list, "none": None, "any": Any,
}


# Ranges of the numeric keys, checked before anything loads (transformers would fail later, or not at all).
# A float step count below 1 is a share of all steps, so steps only need to be positive.
NUMERIC_RANGES: dict[str, dict[str, float]] = {
    "learning_rate": {"gt": 0},
    "per_device_train_batch_size": {"ge": 1},
    "per_device_eval_batch_size": {"ge": 1},
    "gradient_accumulation_steps": {"ge": 1},
    "eval_accumulation_steps": {"ge": 1},
    "num_train_epochs": {"gt": 0},
    "max_steps": {"ge": -1},
    "warmup_steps": {"ge": 0},
    "weight_decay": {"ge": 0},
    "max_grad_norm": {"ge": 0},
    "adam_beta1": {"ge": 0, "lt": 1},
    "adam_beta2": {"ge": 0, "lt": 1},
    "adam_epsilon": {"ge": 0},
    "label_smoothing_factor": {"ge": 0, "lt": 1},
    "logging_steps": {"gt": 0},
    "save_steps": {"gt": 0},
    "eval_steps": {"gt": 0},
    "eval_delay": {"ge": 0},
    "save_total_limit": {"ge": 0},
    "seed": {"ge": 0},
    "data_seed": {"ge": 0},
    "dataloader_num_workers": {"ge": 0},
    "dataloader_prefetch_factor": {"ge": 1},
    "neftune_noise_alpha": {"gt": 0},
    "torch_empty_cache_steps": {"ge": 1},
    "ddp_timeout": {"gt": 0},
    "ddp_bucket_cap_mb": {"ge": 1},
}


def _no_for_false(value: Any) -> Any:
    """YAML reads an unquoted `no` as false; in a choice that has "no" it means "no" (as in LLaMA-Factory)."""
    return "no" if value is False else value


def _fsdp_words(value: Any) -> Any:
    """LLaMA-Factory configs may give `fsdp` as a YAML list; transformers reads the options space-separated."""
    return " ".join(str(option) for option in value) if isinstance(value, list) else value


# Keys whose value is normalised before validation.
BEFORE_VALIDATORS: dict[str, Callable[[Any], Any]] = {"fsdp": _fsdp_words}


def _annotation(name: str, spec: dict[str, Any]) -> Any:
    members: list[Any] = []
    limits = NUMERIC_RANGES.get(name, {})
    for kind in spec["kinds"]:
        if kind == "choice":
            choice = Literal[tuple(spec["choices"])]
            members.append(Annotated[choice, BeforeValidator(_no_for_false)] if "no" in spec["choices"] else choice)
        elif kind in ("int", "float") and limits:
            members.append(Annotated[_KIND_TYPES[kind], Field(**limits)])
        else:
            members.append(_KIND_TYPES[kind])
    if Any in members:
        return Any
    annotation = members[0]
    for member in members[1:]:
        annotation = annotation | member
    if name in BEFORE_VALIDATORS:
        return Annotated[annotation | None, BeforeValidator(BEFORE_VALIDATORS[name])]
    return annotation


class _TrainingBase(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())

    def trainer_kwargs(self) -> dict[str, Any]:
        """The TrainingArguments keyword arguments: what the user set plus lmforge's own defaults."""
        kwargs = self.model_dump(exclude_unset=True, exclude=set(LMFORGE_TRAINING_KEYS))
        for key, value in LMFORGE_DEFAULTS.items():
            kwargs.setdefault(key, value)
        if self.early_stopping_steps is not None or self.save_strategy == "best":
            # early stopping and saving the best checkpoint watch a metric: the eval loss unless one is named
            kwargs.setdefault("metric_for_best_model", "loss")
        if self.warmup_ratio is not None:  # transformers 5 reads a warmup_steps below 1 as a ratio
            kwargs["warmup_steps"] = self.warmup_ratio
        for old_name, new_name in RENAMED.items():  # transformers' old names, in the form it keeps (no warning)
            if old_name in kwargs:
                kwargs.setdefault(new_name, kwargs.pop(old_name))
        if isinstance(self.fsdp, str):  # LLaMA-Factory's option words, in the form transformers keeps
            kwargs.update(fsdp_arguments(self.fsdp, self.fsdp_config))
        if self.fsdp_transformer_layer_cls_to_wrap:  # transformers 5 reads it inside `fsdp_config` only
            layers = self.fsdp_transformer_layer_cls_to_wrap
            fsdp_config = fsdp_settings(kwargs.get("fsdp_config")) or {}
            if "transformer_layer_cls_to_wrap" in fsdp_config:
                raise ConfigError("`fsdp_transformer_layer_cls_to_wrap` and "
                                  "`fsdp_config.transformer_layer_cls_to_wrap` set the same thing: keep one")
            kwargs["fsdp_config"] = {**fsdp_config,
                                     "transformer_layer_cls_to_wrap": [layers] if isinstance(layers, str) else layers}
        return kwargs

    def shards_weights(self) -> bool:
        """DeepSpeed or FSDP trains the model: their hooks gather sharded weights around each layer's own
        forward, so speed-ups that replace that forward stay off."""
        return bool(self.deepspeed or self.fsdp)

    def deepspeed_settings(self) -> dict[str, Any] | None:
        """The DeepSpeed config as a mapping (given inline or as a JSON file); None when there is none or it cannot
        be read (the rules report a missing or broken file)."""
        source = self.deepspeed
        if isinstance(source, str):
            try:
                source = json.loads(Path(source).read_text())
            except (OSError, ValueError):
                return None
        return source if isinstance(source, dict) else None

    def runs_training(self) -> bool:
        """LLaMA-Factory's `do_train`. Unset, lmforge trains unless the config only asks for `do_predict`
        (LLaMA-Factory's prediction configs set `do_predict` and leave `do_train` out)."""
        if "do_train" in self.model_fields_set:
            return bool(self.do_train)
        return not self.do_predict


# Keys we add: LLaMA-Factory's training keys that transformers 5 no longer has.
LMFORGE_TRAINING_KEYS: dict[str, tuple[Any, Any]] = {
    "warmup_ratio": (float | None, Field(None, ge=0, lt=1, description="Warmup share of all steps.")),
    "fsdp_transformer_layer_cls_to_wrap": (str | list[str] | None, Field(
        None, description="FSDP wraps these decoder layer classes (LLaMA-Factory's key; transformers 5 reads it as "
                          "`fsdp_config: {transformer_layer_cls_to_wrap: [...]}`).")),
    "overwrite_output_dir": (bool, Field(False, description="Start afresh instead of resuming from "
                                                              "the last checkpoint in output_dir.")),
    "chunked_loss": (bool | None, Field(None, description="Cross-entropy over supervised positions in chunks, "
                                                          "never whole logits; default on where the head is plain.")),
    "early_stopping_steps": (int | None, Field(None, gt=0, description="Stop when `metric_for_best_model` (default: "
                                                                  "eval loss) has not improved for this many "
                                                                  "evaluations.")),
    "include_effective_tokens_per_second": (bool, Field(False, description="Add `effective_tokens_per_sec` (tokens "
                                                                       "of the examples, padding excluded, per second "
                                                                       "and process) to train_summary.json.")),
    "fp8": (bool, Field(False, description="FP8 mixed precision through accelerate (torchao or Transformer Engine "
                                           "linear layers, bf16 autocast elsewhere); needs an NVIDIA GPU with FP8 "
                                           "tensor cores (compute capability 8.9+: Ada, Hopper, Blackwell).")),
    "fp8_backend": (Literal["auto", "torchao", "te"], Field("auto", description="FP8 library: `auto` (torchao, "
                                                                                 "else Transformer Engine), `torchao`, "
                                                                                 "`te`.")),
    "fp8_enable_fsdp_float8_all_gather": (bool, Field(False, description="FP8 with FSDP2 and torchao: gather the "
                                                                          "sharded weights in FP8 (half the traffic "
                                                                          "of bf16).")),
    "predict_with_generate": (bool | None, Field(None, description="With `do_predict`: answer eval_dataset's prompts "
                                                                   "by generation and score them (BLEU-4, ROUGE). "
                                                                   "lmforge's prediction always generates.")),
    "generation_config": (str | None, Field(None, description="Prediction (`do_predict`, `lmforge predict`): a "
                                                               "generation_config.json file, or a folder holding one, "
                                                               "whose settings decode the answers; the generation "
                                                               "keys (do_sample, temperature, top_p, top_k, num_beams, "
                                                               "max_new_tokens, ...) override it, as in LLaMA-Factory. "
                                                               "Transformers backend only.")),
    "global_batch_size": (int | None, Field(None, ge=1, description="Examples per optimizer step over all processes "
                                                                     "(LLaMA-Factory v1's key): gradient accumulation "
                                                                     "becomes global_batch_size / "
                                                                     "(per_device_train_batch_size x processes). "
                                                                     "Instead of `gradient_accumulation_steps`.")),
    "generation_max_length": (int | None, Field(None, gt=0, description="Accepted from LLaMA-Factory configs, where "
                                                                        "it has no effect: the answer limit there and "
                                                                        "here is `max_new_tokens` (or `max_length` "
                                                                        "when max_new_tokens is 0 or less).")),
}
# TrainingArguments' deprecated names (read by transformers 5 with a FutureWarning) and the ones it keeps
RENAMED = {"gradient_checkpointing": "activation_checkpointing",
           "gradient_checkpointing_kwargs": "activation_checkpointing_kwargs"}
# Defaults that differ from transformers' (applied only when the user sets nothing).
LMFORGE_DEFAULTS: dict[str, Any] = {"report_to": "none", "logging_steps": 10}


def _build() -> type[_TrainingBase]:
    snapshot: dict[str, dict[str, Any]] = json.loads(_SNAPSHOT.read_text())
    fields: dict[str, Any] = {
        name: (_annotation(name, spec) | None, None) for name, spec in snapshot.items()
    }
    fields.update(LMFORGE_TRAINING_KEYS)
    return create_model("TrainingGroup", __base__=_TrainingBase, **fields)


TrainingGroup = _build()
