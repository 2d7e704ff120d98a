"""Cross-field rules: combinations of keys that are each valid alone but not together.

Rules that depend on what a stage is (packing, prediction) belong to the stage (`lmforge.train.stages`)
and run in preflight: the config layer knows stage names only as strings.
"""

import json
from collections.abc import Callable
from pathlib import Path

from lmforge.config.generation_rules import candidates_fit, diverse_beam_on_transformers, generation_config_file
from lmforge.config.groups import FLASH_ATTN_MEANS, LmforgeConfig
from lmforge.config.training_rules import (
    batch_finder_without_zero3,
    best_checkpoint_evaluates,
    early_stopping_evaluates,
    evaluation_has_data,
    global_batch_size_divides,
    one_name_per_setting,
    one_optimizer_method,
    one_sharding_plan,
    prefetch_needs_workers,
    report_to_known,
    schedule_evaluates,
    whole_step_counts,
)
from lmforge.errors import ConfigError

LORA_ONLY_KEYS = ("lora_task_type", "use_dora", "use_rslora", "pissa_init", "pissa_iter", "loraplus_lr_ratio",
                  "loraplus_lr_embedding", "additional_target", "create_new_adapter")
FREEZE_ONLY_KEYS = ("freeze_trainable_layers", "freeze_trainable_modules", "freeze_extra_modules")
OFT_ONLY_KEYS = ("oft_rank", "oft_block_size", "oft_target", "module_dropout")
ADAPTER_KEYS = ("additional_target", "create_new_adapter")  # LoRA's, which OFT adapters take too


def _method_keys_match(cfg: LmforgeConfig) -> str | None:
    """A LoRA or freeze option set for another method would be silently ignored: say so instead."""
    ft = cfg.finetuning
    own = {"lora": LORA_ONLY_KEYS, "freeze": FREEZE_ONLY_KEYS, "oft": OFT_ONLY_KEYS}
    for method, keys in own.items():
        stray = [key for key in keys if key in ft.model_fields_set
                 and not (ft.use_llama_pro and key == "freeze_trainable_layers")  # LLaMA-Pro's block count
                 and not (ft.finetuning_type == "oft" and key in ADAPTER_KEYS)]
        if stray and ft.finetuning_type != method:
            return (f"{', '.join(f'`{k}`' for k in stray)} only apply to `finetuning_type: {method}` "
                    f"(got `{ft.finetuning_type}`): remove them or switch the method")
    return None


def _llama_pro_method(cfg: LmforgeConfig) -> str | None:
    ft = cfg.finetuning
    if ft.use_llama_pro and ft.finetuning_type not in ("freeze", "lora"):
        return (f"`use_llama_pro` trains the expanded blocks with `finetuning_type: freeze` or `lora` "
                f"(got `{ft.finetuning_type}`)")
    if ft.use_llama_pro and ft.freeze_trainable_layers <= 0:
        return (f"`use_llama_pro`: `freeze_trainable_layers` is the number of expanded blocks, a positive count "
                f"(got {ft.freeze_trainable_layers})")
    return None


def _oft_block_or_rank(cfg: LmforgeConfig) -> str | None:
    ft = cfg.finetuning
    if ft.finetuning_type == "oft" and ft.oft_rank and "oft_block_size" in ft.model_fields_set and ft.oft_block_size:
        return (f"OFT takes `oft_rank` or `oft_block_size` (rank x block size = the layer's input size), "
                f"got both ({ft.oft_rank}, {ft.oft_block_size}): remove one")
    if ft.finetuning_type == "oft" and not ft.oft_rank and not ft.oft_block_size:
        return "OFT needs `oft_block_size` (or `oft_rank`) above 0"
    return None


def _quantization_needs_lora(cfg: LmforgeConfig) -> str | None:
    bits = cfg.model.quantization_bit
    if bits and cfg.finetuning.finetuning_type not in ("lora", "oft"):
        return (f"`quantization_bit: {bits}` (QLoRA) trains LoRA or OFT adapters on frozen quantized "
                f"weights: set `finetuning_type: lora` or `oft` (got `{cfg.finetuning.finetuning_type}`)")
    if bits and cfg.finetuning.pissa_init:
        # peft would take a 4-bit weight's packed storage (float32 here) for the weight itself
        return (f"`pissa_init` splits full-precision weights into the adapter and a residual; with "
                f"`quantization_bit: {bits}` there are none: remove `quantization_bit` for PiSSA")
    return None


def _quantized_base_takes_one_adapter(cfg: LmforgeConfig) -> str | None:
    """A quantized base keeps its adapter unmerged (merging rounds it into the 4/8-bit weights): one adapter, to
    train on or chat with, and no new adapter on top of it."""
    bits, adapters = cfg.model.quantization_bit, cfg.model.adapter_name_or_path or []
    merge_first = ("merge them with `lmforge export` (it merges onto the full-precision base) and train or chat on "
                   "the merged model, or remove `quantization_bit`")
    if bits and len(adapters) > 1:
        return f"`quantization_bit: {bits}` takes one adapter, kept unmerged; got {len(adapters)}: {merge_first}"
    if bits and adapters and cfg.finetuning.create_new_adapter:
        return (f"`create_new_adapter` with `quantization_bit: {bits}` would merge the given adapter into the "
                f"quantized weights: {merge_first}")
    ref_bits, ref_adapters = cfg.finetuning.ref_model_quantization_bit, cfg.finetuning.ref_model_adapters or []
    if ref_bits and len(ref_adapters) > 1:
        return (f"`ref_model_quantization_bit: {ref_bits}` takes one of `ref_model_adapters`, kept unmerged; got "
                f"{len(ref_adapters)}: merge them into `ref_model` with `lmforge export`, or remove the key")
    return None


def _pissa_converted(cfg: LmforgeConfig) -> str | None:
    if cfg.finetuning.pissa_init and not cfg.finetuning.pissa_convert:
        return ("`pissa_convert: false` would save an adapter that only works on PiSSA's residual base model, "
                "which is not saved: remove the key (lmforge saves a plain LoRA that fits the original model)")
    return None


def _one_attention_choice(cfg: LmforgeConfig) -> str | None:
    flash, attn = cfg.model.flash_attn, cfg.model.attn_implementation
    if flash and attn != "auto" and FLASH_ATTN_MEANS[flash] != attn:
        return (f"`flash_attn: {flash}` and `attn_implementation: {attn}` disagree: set only one "
                "(flash_attn is LLaMA-Factory's name for the same choice)")
    if cfg.model.shift_attn and cfg.model.attention not in ("auto", "sdpa"):
        return (f"`shift_attn` runs on SDPA, and the attention chosen is `{cfg.model.attention}`: set "
                "`attn_implementation: sdpa` (or auto), or remove `shift_attn`")
    return None


def _adapter_needs_lora(cfg: LmforgeConfig) -> str | None:
    if cfg.model.adapter_name_or_path and cfg.finetuning.finetuning_type != "lora":
        return (f"`adapter_name_or_path` is only valid with `finetuning_type: lora` "
                f"(got `{cfg.finetuning.finetuning_type}`): merge the adapter first with `lmforge export`")
    return None


def _adapter_folder_needs_adapters(cfg: LmforgeConfig) -> str | None:
    if cfg.model.adapter_folder and not cfg.model.adapter_name_or_path:
        return (f"`adapter_folder: {cfg.model.adapter_folder}` is the subfolder of each `adapter_name_or_path` "
                "folder that holds the adapter: set `adapter_name_or_path` (or remove `adapter_folder`)")
    return None


def _reference_and_reward_options(cfg: LmforgeConfig) -> str | None:
    """LLaMA-Factory's adapters and bits of the reference and reward models apply to those models only."""
    ft, rl = cfg.finetuning, cfg.rl
    stray = [key for key, value in (("ref_model_adapters", ft.ref_model_adapters),
                                    ("ref_model_quantization_bit", ft.ref_model_quantization_bit)) if value]
    if stray and not ft.ref_model:
        return f"{' and '.join(f'`{k}`' for k in stray)} shape `ref_model`: set `ref_model` (or remove them)"
    stray = [key for key, value in (("reward_model_adapters", rl.reward_model_adapters),
                                    ("reward_model_quantization_bit", rl.reward_model_quantization_bit)) if value]
    if stray and not rl.reward_model:
        return f"{' and '.join(f'`{k}`' for k in stray)} shape `reward_model`: set `reward_model` (or remove them)"
    return None


def _one_half_precision(cfg: LmforgeConfig) -> str | None:
    if cfg.training.bf16 and cfg.training.fp16:
        return "`bf16` and `fp16` cannot both be true: pick one"
    return None


def _special_token_init(cfg: LmforgeConfig) -> str | None:
    model = cfg.model
    described = model.special_token_descriptions or {}
    if empty := [token for token, text in described.items() if not text.strip()]:
        return f"the description of {', '.join(f'`{t}`' for t in empty)} is empty: say what the token marks"
    if stray := sorted(set(described) - set(model.add_special_tokens or [])):
        return (f"`special_token_descriptions` describes {', '.join(f'`{t}`' for t in stray)}, which "
                "`add_special_tokens` does not add: add it there (or give `add_special_tokens` as the mapping)")
    if model.init_special_tokens == "noise_init":
        return None
    if not model.add_special_tokens:
        return (f"`init_special_tokens: {model.init_special_tokens}` initialises new special tokens: set "
                "`add_special_tokens` (or remove the key)")
    if missing := [token for token in model.add_special_tokens if token not in described]:
        return (f"`init_special_tokens: {model.init_special_tokens}` starts each new special token at the average "
                f"embedding of its description; {', '.join(f'`{t}`' for t in missing)} has none: give "
                "`add_special_tokens` as a mapping (`\"<|tok|>\": what it marks`) or LLaMA-Factory's "
                "`new_special_tokens_config: FILE`")
    return None


def _pure_bf16(cfg: LmforgeConfig) -> str | None:
    if not cfg.finetuning.pure_bf16:
        return None
    if cfg.training.fp16:
        return "`pure_bf16: true` trains in bfloat16: remove `fp16: true`"
    if _deepspeed_stage(cfg) == 3:
        return ("`pure_bf16` with DeepSpeed ZeRO-3: ZeRO-3 manages the weights' precision itself; set `bf16: true` "
                "instead of `pure_bf16`")
    return None


def _one_eval_source(cfg: LmforgeConfig) -> str | None:
    if cfg.data.val_size and cfg.data.eval_dataset:
        return "`val_size` and `eval_dataset` cannot both be set: hold out a share or name an eval dataset"
    return None


def _eval_on_each_dataset(cfg: LmforgeConfig) -> str | None:
    if not cfg.data.eval_on_each_dataset:
        return None
    if not cfg.data.eval_dataset:
        return "`eval_on_each_dataset` evaluates each `eval_dataset` on its own: name them in `eval_dataset`"
    if cfg.finetuning.stage not in ("pt", "sft"):
        return (f"`eval_on_each_dataset` is built for `stage: pt` and `sft` (got `{cfg.finetuning.stage}`): remove "
                "it and the eval loss covers every eval dataset together")
    return None


def _val_size_is_share_or_count(cfg: LmforgeConfig) -> str | None:
    size = cfg.data.val_size
    if size >= 1 and size != int(size):
        return f"`val_size: {size}` must be a share below 1 or a whole row count"
    return None


def _gptq_export(cfg: LmforgeConfig) -> str | None:
    export = cfg.export
    if export.export_quantization_dataset and not export.export_quantization_bit:
        return "`export_quantization_dataset` calibrates a GPTQ export: set `export_quantization_bit` (2, 3, 4 or 8)"
    if export.export_quantization_bit in (2, 3) and not export.export_quantization_dataset:
        return (f"`export_quantization_bit: {export.export_quantization_bit}` is GPTQ only: set "
                "`export_quantization_dataset` to calibration texts, or use 4 or 8 bits (bitsandbytes)")
    return None


def _quantized_export_is_safetensors(cfg: LmforgeConfig) -> str | None:
    if cfg.export.export_quantization_bit and cfg.export.export_legacy_format:
        return ("`export_quantization_bit` with `export_legacy_format: true`: bitsandbytes exports are saved as "
                "safetensors only; remove one of the two keys")
    return None


def _streaming_needs_max_steps(cfg: LmforgeConfig) -> str | None:
    if cfg.data.streaming and not (cfg.training.max_steps and cfg.training.max_steps > 0):
        return "`streaming: true` needs `max_steps`: a stream has no length to count epochs by"
    return None


def _streaming_limits(cfg: LmforgeConfig) -> str | None:
    if cfg.data.streaming and cfg.data.val_size and cfg.data.val_size < 1:
        return "`streaming` takes `val_size` as a row count (the first rows), not a share"
    return None


def _interleave_probs(cfg: LmforgeConfig) -> str | None:
    probs, datasets = cfg.data.interleave_probs, cfg.data.dataset or []
    if probs is None:
        return None
    if cfg.data.mix_strategy == "concat":
        return "`interleave_probs` needs `mix_strategy: interleave_under`, `interleave_over` or `interleave_once`"
    if len(probs) != len(datasets):
        return f"`interleave_probs` has {len(probs)} values for {len(datasets)} datasets"
    if abs(sum(probs) - 1) > 1e-6 or min(probs) < 0:
        return f"`interleave_probs` must be non-negative and sum to 1, got {probs}"
    return None


def _deepspeed_config(cfg: LmforgeConfig) -> str | None:
    """A DeepSpeed config given as a path must exist, parse, and name a ZeRO stage DeepSpeed has."""
    source = cfg.training.deepspeed
    if source is None:
        return None
    if isinstance(source, str):
        path = Path(source)
        if not path.is_file():
            return f"`deepspeed: {source}`: no such file (see examples/deepspeed/ for ZeRO-2/3 configs)"
        try:
            source = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            return f"`deepspeed: {path}` is not valid JSON: line {err.lineno}: {err.msg}"
    stage = (source.get("zero_optimization") or {}).get("stage", 0) if isinstance(source, dict) else None
    if stage not in (0, 1, 2, 3):
        return f"`deepspeed` config: zero_optimization.stage must be 0, 1, 2 or 3, got {stage!r}"
    return None


def _deepspeed_stage(cfg: LmforgeConfig) -> int | None:
    """The ZeRO stage of the `deepspeed` config (None when absent or unreadable; `_deepspeed_config` reports that)."""
    settings = cfg.training.deepspeed_settings()
    return (settings.get("zero_optimization") or {}).get("stage", 0) if settings is not None else None


def _prediction(cfg: LmforgeConfig) -> str | None:
    """`do_predict` generates answers to eval_dataset's prompts and scores them (`train/predict.py`)."""
    training = cfg.training
    if not training.do_predict:
        if training.predict_with_generate:
            return ("`predict_with_generate: true` needs `do_predict: true` (generated answers scored into "
                    "predict_results.json); evaluation during training reports loss and token accuracy only")
        if not training.runs_training():
            return ("`do_train: false` without `do_predict: true` leaves nothing to run (evaluation-only runs are "
                    "not supported: use `do_predict`)")
        return None
    if training.predict_with_generate is False:
        return "`do_predict` in lmforge always generates: remove `predict_with_generate: false`"
    if not cfg.data.eval_dataset:
        return ("`do_predict: true` answers the prompts of `eval_dataset`: name one (`val_size` holds out "
                "tokenized rows, which prediction cannot use)")
    if training.runs_training() and (training.fsdp or _deepspeed_stage(cfg) == 3):
        return ("`do_predict` after training with FSDP or DeepSpeed ZeRO-3: the trained weights are sharded across "
                "processes; predict in a second run with `do_train: false` and the trained output as "
                "`adapter_name_or_path` (LoRA) or `model_name_or_path`")
    return None


def _dpo_options(cfg: LmforgeConfig) -> str | None:
    ft = cfg.finetuning
    if ft.dpo_label_smoothing and ft.pref_loss != "sigmoid":
        return f"`dpo_label_smoothing` (cDPO) smooths the sigmoid loss: set `pref_loss: sigmoid` (got `{ft.pref_loss}`)"
    extras = [key for key in ("pref_bco_weight", "ld_alpha") if getattr(ft, key)]
    if extras and ft.pref_loss in ("orpo", "simpo"):
        return (f"{' and '.join(f'`{k}`' for k in extras)} shape the reference-model DPO losses (sigmoid, hinge, "
                f"ipo), not `pref_loss: {ft.pref_loss}`")
    return None


def _one_token_loss(cfg: LmforgeConfig) -> str | None:
    ft = cfg.finetuning
    chosen = [key for key in ("use_dft_loss", "use_eaft_loss", "use_asft_loss") if getattr(ft, key)]
    if len(chosen) > 1:
        return f"{' and '.join(f'`{k}`' for k in chosen)} each replace the loss: keep one (ASFT includes DFT)"
    if cfg.training.chunked_loss and ft.use_asft_loss:
        return "`use_asft_loss` compares whole logits with the reference model's: remove `chunked_loss: true`"
    return None


RULES: list[Callable[[LmforgeConfig], str | None]] = [
    _method_keys_match,
    _llama_pro_method,
    _oft_block_or_rank,
    _quantization_needs_lora,
    _quantized_base_takes_one_adapter,
    _pissa_converted,
    _one_attention_choice,
    _adapter_needs_lora,
    _adapter_folder_needs_adapters,
    _reference_and_reward_options,
    _one_half_precision,
    _pure_bf16,
    _special_token_init,
    _one_eval_source,
    _eval_on_each_dataset,
    _val_size_is_share_or_count,
    _streaming_needs_max_steps,
    _streaming_limits,
    _interleave_probs,
    _deepspeed_config,
    _quantized_export_is_safetensors,
    _gptq_export,
    candidates_fit,
    diverse_beam_on_transformers,
    _prediction,
    generation_config_file,
    global_batch_size_divides,
    early_stopping_evaluates,
    evaluation_has_data,
    whole_step_counts,
    best_checkpoint_evaluates,
    schedule_evaluates,
    prefetch_needs_workers,
    one_sharding_plan,
    batch_finder_without_zero3,
    one_name_per_setting,
    _one_token_loss,
    _dpo_options,
    one_optimizer_method,
    report_to_known,
]


def check_rules(cfg: LmforgeConfig) -> None:
    where = cfg.source or "config"
    problems = [message for rule in RULES if (message := rule(cfg))]
    if problems:
        raise ConfigError(f"invalid configuration in {where}:\n  " + "\n  ".join(problems))
