"""LLaMA-Factory v1's configs (`USE_V1=1 llamafactory-cli sft|dpo|rm config.yaml`), read as the flat keys they
stand for.

v1 writes a run in other names (`model`, `micro_batch_size`, `train_dataset`) and groups methods into plugin
mappings with a `name` (`peft_config: {name: lora, r: 16}`, `dist_config: {name: deepspeed, config_file: ...}`,
`quant_config`, `kernel_config`, `optim_config`). `translate_v1` rewrites such a config into LLaMA-Factory's
v0.9 keys, with v1's own defaults where they differ from v0.9's (LoRA dropout 0.05; a constant learning rate,
since v1 registers no scheduler; torch AdamW's weight decay 0.01; full fine-tuning when no `peft_config`), and
says in one notice what it read. Its stage comes from the command in v1: here from `stage`, else `dpo` when the
run's datasets are pairs (`converter: pair`, or rows of `chosen_messages`), else `sft`. Keys of hardware lmforge
does not run (context and expert parallelism, NPU kernels) are refused with the reason.
"""

import json
from collections.abc import Collection
from pathlib import Path
from typing import Any

from lmforge.data import llamafactory_v1_datasets
from lmforge.errors import ConfigError

# keys only a v1 config has: one of them makes a config a v1 one
V1_KEYS = frozenset({
    "model", "model_class", "custom_chat_template", "init_config", "peft_config", "kernel_config", "quant_config",
    "train_dataset", "micro_batch_size", "global_batch_size", "batching_strategy", "batching_workers",
    "enable_activation_checkpointing", "dist_config", "dp_size", "cp_size", "cp_mode", "mp_replicate_size",
    "mp_shard_size", "dist_timeout", "optim_config", "lr_scheduler_config", "save_epochs", "save_ckpt_as_hf",
    "sample_backend"})
# same meaning, same name in v0.9
SHARED = ("trust_remote_code", "eval_dataset", "output_dir", "cutoff_len", "learning_rate", "num_train_epochs",
          "max_steps", "max_grad_norm", "bf16", "seed", "full_determinism", "save_steps", "save_total_limit",
          "logging_steps", "pref_loss", "pref_beta", "pref_ftx", "simpo_gamma", "dpo_label_smoothing", "ld_alpha",
          "max_new_tokens", "stage")
RENAMED = {"model": "model_name_or_path", "train_dataset": "dataset", "micro_batch_size": "per_device_train_batch_size",
           "batching_workers": "dataloader_num_workers", "enable_activation_checkpointing": "activation_checkpointing",
           "dist_timeout": "ddp_timeout"}
ATTENTION = {"eager": "disabled", "sdpa": "sdpa", "flash_attention_2": "fa2"}
BACKENDS = {"hf": "huggingface", "vllm": "vllm"}
LORA = {"r": "lora_rank", "lora_alpha": "lora_alpha", "lora_dropout": "lora_dropout", "target_modules": "lora_target",
        "use_rslora": "use_rslora", "use_dora": "use_dora", "modules_to_save": "additional_target",
        "adapter_name_or_path": "adapter_name_or_path", "export_dir": "export_dir", "export_size": "export_size",
        "export_hub_model_id": "export_hub_model_id", "infer_dtype": "infer_dtype",
        "export_legacy_format": "export_legacy_format"}
LORA_DEFAULTS = {"lora_rank": 8, "lora_alpha": 16, "lora_dropout": 0.05, "lora_target": "all"}
FREEZE = {"freeze_trainable_layers": "freeze_trainable_layers", "freeze_trainable_modules": "freeze_trainable_modules",
          "freeze_extra_modules": "freeze_extra_modules"}
QUANT = {"quantization_bit": "quantization_bit", "double_quantization": "double_quantization",
         "quantization_type": "quantization_type"}
# kernels for NPUs or of packages lmforge does not use: the same training without them
SKIPPED_KERNELS = {"auto", "npu_fused_moe", "npu_fused_swiglu", "npu_fused_rmsnorm", "npu_fused_rope",
                   "cuda_fused_moe"}


V1_MODEL_CLASSES = ("llm", "cls", "other")  # lmforge's own `model_class` names an auto class


# the keys that make a config a v1 one (a v0.9 config from a fork may carry another v1 key, `global_batch_size`)
DEFINING = frozenset({"model", "train_dataset", "micro_batch_size", "peft_config", "dist_config", "quant_config",
                      "kernel_config", "init_config", "optim_config"})


def is_v1_config(raw: dict[str, Any]) -> bool:
    return any(key in DEFINING for key in raw) or raw.get("model_class") in V1_MODEL_CLASSES


def _listed(value: Any) -> Any:
    """v1's lists of module names as v0.9's comma-separated strings."""
    return ",".join(map(str, value)) if isinstance(value, list) else value


def _plugin(raw: dict[str, Any], key: str, names: set[str] | dict[str, Any]) -> dict[str, Any] | None:
    value = raw.get(key)
    if isinstance(value, str) and value.strip().startswith("{"):
        value = json.loads(value)
    if value is None:
        return None
    if not isinstance(value, dict) or "name" not in value:
        raise ConfigError(f"`{key}` must be a mapping with a `name` (LLaMA-Factory v1's plugin config), got {value!r}")
    if value["name"] not in names:
        raise ConfigError(f"`{key}: {{name: {value['name']}}}`: lmforge reads {', '.join(sorted(names))}; set "
                          f"`name` to one of them (docs/migrating-from-llamafactory.md says what each becomes) or "
                          f"remove `{key}`")
    return value


def _params(plugin: dict[str, Any], table: dict[str, str], key: str, ignored: tuple[str, ...] = ()) -> dict[str, Any]:
    unknown = sorted(set(plugin) - set(table) - {"name", *ignored})
    if unknown:
        raise ConfigError(f"`{key}` ({plugin['name']}) has unknown key(s) {', '.join(f'`{k}`' for k in unknown)}; "
                          f"it reads {', '.join(f'`{k}`' for k in table)}")
    return {table[name]: _listed(value) for name, value in plugin.items() if name in table and value is not None}


def _method(raw: dict[str, Any]) -> dict[str, Any]:
    peft = _plugin(raw, "peft_config", {"lora", "freeze"})
    if peft is None:
        return {"finetuning_type": "full"}
    if peft["name"] == "lora":
        return {"finetuning_type": "lora", **_params(peft, LORA, "peft_config")}
    return {"finetuning_type": "freeze",
            **_params(peft, FREEZE, "peft_config", ignored=("cast_trainable_params_to_fp32",))}


def _engine(raw: dict[str, Any]) -> dict[str, Any]:
    dist = _plugin(raw, "dist_config", {"fsdp2", "deepspeed"})
    if dist is None:
        return {}
    if dist.get("dcp_path"):
        raise ConfigError(f"`dist_config.dcp_path: {dist['dcp_path']}`: lmforge loads the weights from `model`; "
                          "convert the DCP checkpoint to a Hugging Face folder and name it as `model`")
    if dist["name"] == "deepspeed":
        if not dist.get("config_file"):
            raise ConfigError("`dist_config: {name: deepspeed}` needs `config_file` (the DeepSpeed JSON)")
        return {"deepspeed": dist["config_file"]}
    return {"fsdp": "full_shard auto_wrap" + (" offload" if dist.get("offload_params") else "")}


def _quantization(raw: dict[str, Any]) -> dict[str, Any]:
    quant = _plugin(raw, "quant_config", {"bnb", "auto"})
    if quant is None or (quant["name"] == "auto" and quant.get("quantization_bit") is None):
        return {}
    found = _params(quant, QUANT, "quant_config", ignored=("compute_dtype",))
    return {"quantization_method": "bnb", "quantization_bit": found.pop("quantization_bit", 4), **found}


def _kernels(raw: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    kernel = raw.get("kernel_config")
    if not kernel:
        return {}
    names = {name.strip() for name in str(kernel.get("name", "")).split(",") if name.strip()}
    unknown = names - SKIPPED_KERNELS - {"liger_kernel"}
    if unknown:
        raise ConfigError(f"`kernel_config: {{name: {', '.join(sorted(unknown))}}}` is not applied by lmforge; remove "
                          "it (the same training, unfused)")
    if names & SKIPPED_KERNELS:
        notes.append(f"kernels {', '.join(sorted(names & SKIPPED_KERNELS))} not used (NPU or fused MoE kernels)")
    return {"enable_liger_kernel": True} if "liger_kernel" in names else {}


def _refuse_parallelism(raw: dict[str, Any]) -> None:
    for key, neutral in (("cp_size", 1), ("mp_replicate_size", 1), ("dp_size", None), ("mp_shard_size", None)):
        if raw.get(key, neutral) != neutral:
            raise ConfigError(f"`{key}: {raw[key]}`: lmforge runs data parallelism (each process a whole replicate "
                              "or a DeepSpeed / FSDP shard of the model), not LLaMA-Factory v1's device meshes; "
                              f"remove `{key}`")
    if raw.get("model_class") == "other":
        raise ConfigError("`model_class: other` loads a model without a head to train; lmforge trains `llm` (and "
                          "`cls` for a reward model)")
    if raw.get("custom_chat_template"):
        raise ConfigError("`custom_chat_template`: save the jinja as the tokenizer's `chat_template` and use "
                          "`template: auto`, or name a registered template (`lmforge template list`)")
    if raw.get("lr_scheduler_config") is not None:
        raise ConfigError("`lr_scheduler_config`: LLaMA-Factory v1 registers no scheduler; set `lr_scheduler_type` "
                          "(cosine, linear, constant, ...) and `warmup_ratio` instead")


def _pairs(dataset: Any) -> bool:
    """Whether a v1 `train_dataset` holds preference pairs (every listed dataset's converter is `pair`, or a
    native file's first row has `chosen_messages`)."""
    if not isinstance(dataset, str):
        return False
    path = Path(dataset)
    if llamafactory_v1_datasets.is_dataset_file(dataset) and path.is_file():
        return llamafactory_v1_datasets.lists_only_pairs(path)
    if path.is_file() and path.suffix == ".jsonl":
        with path.open(encoding="utf-8") as rows:
            first = rows.readline()
        return '"chosen_messages"' in first
    return False


def _batching(raw: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if raw.get("global_batch_size"):
        micro = raw.get("micro_batch_size", 1)
        if raw["global_batch_size"] % micro:
            raise ConfigError(f"`global_batch_size: {raw['global_batch_size']}` is not a multiple of "
                              f"`micro_batch_size: {micro}`")
        out["global_batch_size"] = raw["global_batch_size"]
        notes.append(f"global_batch_size {raw['global_batch_size']} as accumulation steps of {micro}-example "
                     f"micro-batches: {raw['global_batch_size'] // micro} in one process, divided among several")
    strategy = raw.get("batching_strategy", "normal")
    if strategy == "dynamic_padding_free":
        out["packing"] = True
    elif strategy == "dynamic_batching":
        notes.append("dynamic_batching as micro-batches of `micro_batch_size` examples")
    if raw.get("save_epochs"):
        if raw["save_epochs"] != 1:
            raise ConfigError(f"`save_epochs: {raw['save_epochs']}`: lmforge saves every epoch (`save_epochs: 1`) or "
                              "every `save_steps` steps")
        out["save_strategy"] = "epoch"
    return out


def _defaults(raw: dict[str, Any]) -> dict[str, Any]:
    """v1's behaviour where a config leaves a key out and v0.9's default differs."""
    defaults: dict[str, Any] = {
        "model_name_or_path": "Qwen/Qwen3-4B-Instruct-2507",  # v1's default model
        "template": "auto",  # v1 renders with the tokenizer's own chat template
        "lr_scheduler_type": "constant",  # v1 registers no scheduler
        "weight_decay": 0.01,  # torch AdamW's, which v1 builds
        "finetuning_type": "full",  # no peft_config
        "per_device_train_batch_size": 1,  # v1's micro_batch_size (transformers': 8)
        "learning_rate": 1e-4,  # v1's (transformers': 5e-5)
        "logging_steps": 1,  # v1's (lmforge's: 10)
        "stage": "rm" if raw.get("model_class") == "cls" else "dpo" if _pairs(raw.get("train_dataset")) else "sft",
    }
    peft = raw.get("peft_config")
    if isinstance(peft, dict) and peft.get("name") == "lora":
        defaults.update(LORA_DEFAULTS)
    elif isinstance(peft, dict) and peft.get("name") == "freeze":
        defaults["freeze_trainable_layers"] = 2
    dataset = raw.get("train_dataset")
    if isinstance(dataset, str) and not Path(dataset).exists() and not dataset.endswith((".yaml", ".yml")):
        defaults["dataset_dir"] = "ONLINE"  # v1 reads a name that is no local path from the hub
    return defaults


def translate_v1(raw: dict[str, Any], overridden: Collection[str] = ()) -> tuple[dict[str, Any], str]:
    """`raw` (a v1 config) as v0.9 flat keys, and the notice that says what was read. lmforge's own (v0.9) keys may
    stand beside v1's: they win over v1's defaults, and one that disagrees with a v1 key is an error, unless it
    came from the command line (`overridden`), where it wins, as an override does over any file's key."""
    _refuse_parallelism(raw)
    v1_names = V1_KEYS | set(SHARED) | {"flash_attn", "resume_from_checkpoint"}
    given = {key: raw[key] for key in sorted(set(raw) - v1_names)}
    if raw.get("model_class") not in (None, *V1_MODEL_CLASSES):
        given["model_class"] = raw["model_class"]  # lmforge's own key (an auto class)
    notes: list[str] = []
    explicit: dict[str, Any] = {key: raw[key] for key in SHARED if key in raw}
    explicit.update({RENAMED[key]: raw[key] for key in RENAMED if key in raw})
    explicit.update(_method(raw), **_engine(raw), **_quantization(raw), **_kernels(raw, notes), **_batching(raw, notes))
    if "peft_config" not in raw:
        explicit.pop("finetuning_type")  # full fine-tuning is v1's default, not something the config says
    if "flash_attn" in raw:
        explicit["flash_attn"] = ATTENTION.get(raw["flash_attn"], raw["flash_attn"])
    if "sample_backend" in raw:
        explicit["infer_backend"] = BACKENDS.get(raw["sample_backend"], raw["sample_backend"])
    if raw.get("resume_from_checkpoint") not in (None, "auto"):  # "auto": lmforge resumes from the last one anyway
        explicit["resume_from_checkpoint"] = raw["resume_from_checkpoint"]
    if raw.get("optim_config") is not None:
        optimizer = _plugin(raw, "optim_config", {"muon"})
        explicit["use_muon"] = True
        if optimizer and optimizer.get("wd") is not None:
            explicit["weight_decay"] = optimizer["wd"]
    if raw.get("init_config"):
        notes.append(f"init_config {raw['init_config'].get('name')} not needed (each process loads the weights; "
                     "DeepSpeed ZeRO-3 shards them as they load)")
    for key in sorted(set(given) & set(explicit)):
        if key in overridden:
            explicit[key] = given[key]
        elif given[key] != explicit[key]:
            raise ConfigError(f"`{key}: {given[key]}` disagrees with the LLaMA-Factory v1 key that sets it "
                              f"({key}: {explicit[key]}): keep one")
    out = {**_defaults(raw), **given, **explicit}
    trains = f"stage {out['stage']}, " if "train_dataset" in raw or "stage" in raw else ""  # not for merge / chat
    notes.insert(0, f"read as a LLaMA-Factory v1 config: {trains}{out['finetuning_type']}, template "
                    f"{out['template']}, lr scheduler {out['lr_scheduler_type']}")
    return out, "; ".join(notes)
