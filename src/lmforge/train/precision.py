"""Device-dependent training defaults: compute dtype and gradient checkpointing.

Compute dtype, when neither `bf16` nor `fp16` is set: bf16 on a GPU that supports it, else fp16 on a
GPU; on a CPU, bf16 where it has bf16 arithmetic in hardware (`cpu_has_fast_bf16`: Intel AMX or
AVX-512-BF16, AMD Zen 4 and later, Arm's BF16 extension), else fp32. `bf16: false` keeps fp32 anywhere.
`bf16: true` / `fp16: true` on a CPU without that arithmetic (LLaMA-Factory's GPU configs on an AVX2 machine)
train in fp32 instead, and say so (`emulated_half_precision`): torch emulates those products there, ~100x
slower than fp32 (AMD EPYC with AVX2 only, 1,024-square products, one thread: fp32 86 GFLOP/s, bf16 and fp16 0.9;
`bench/cpu_precision.py`, BENCHMARKS.md).

Weights: full fine-tuning keeps float32 master weights and lets the Trainer autocast. LoRA and freeze
load the frozen base in the compute dtype on a GPU (half the memory); on a CPU they keep float32 weights
under autocast too, which is faster there: SmolLM2-135M LoRA, 4 x 512 tokens a step, Intel Xeon with
AMX at 2 threads: 7.5 s fp32, 3.4 s bf16 autocast on fp32 weights, 5.0 s on bf16 weights (the norms,
activations and LoRA's own products run as slow bf16 elementwise kernels or casts). `pure_bf16: true`
still loads bf16 weights (half the memory, no autocast).

Gradient checkpointing, when neither `gradient_checkpointing` nor `activation_checkpointing` is
set: on for GPU training, where activation memory is what limits batch and sequence length. On CPU,
where activations live in host RAM and recomputing them costs about a fifth of the step time
(LLaMA-Factory keeps it on there: ~22% slower on our 2-core runs), on only when a micro-batch can hold
`CPU_CHECKPOINT_TOKENS` or more tokens (batch x the data's longest row, at most cutoff_len, x the stage's
sequences per row): the
activations of SmolLM2-135M's DPO pair of 2 x 1,910 tokens alone took 4.9 GB of RSS (BENCHMARKS.md); and on
for QLoRA (`quantization_bit`), chosen for memory: a random 1.2B Llama at 4 x 512 tokens peaked at 4.6 GB
with it vs 6.9 GB without, for about 0.7x the speed (BENCHMARKS.md, "QLoRA on the CPU").
"""

import functools
import platform
from pathlib import Path
from typing import Any, Literal

import torch

from lmforge.config import LmforgeConfig
from lmforge.errors import ConfigError
from lmforge.train.stages import STAGES

# /proc/cpuinfo flags of bf16 matrix arithmetic in hardware: x86 (`flags`: Intel Sapphire Rapids and later,
# Cooper Lake; AMD Zen 4 and later) and Arm (`Features`: Armv8.6 BF16, e.g. Neoverse V1/V2/N2, Graviton 3/4).
# Without them torch emulates bf16 products by conversion, slower than fp32 (AVX-512 alone is not enough).
FAST_BF16_FLAGS = frozenset({"amx_bf16", "avx512_bf16", "bf16"})
# ... and of fp16 (x86: Sapphire Rapids' AVX512-FP16, Granite Rapids' AMX-FP16); Arm's are not counted (not measured)
FAST_FP16_FLAGS = frozenset({"amx_fp16", "avx512_fp16"})
CPU_CHECKPOINT_TOKENS = 4096
# Weight copies recast in backward (model/recast_weights.py) from this many tokens a micro-batch: the extra casts
# cost the same at any length; the make-quickstart job (8 rows of <= 91 tokens) took 41.4 s with them, 38.7 s
# without (Intel AMX), for ~270 MiB it does not need; at 4 x 512 tokens they cost ~1% of the step for ~200 MiB.
# Below it, frozen weights' copies are kept from step to step instead (the same peak, fewer casts).
RECAST_MIN_TOKENS = 2048
TRAINER_BATCH_SIZE = 8  # transformers' `per_device_train_batch_size` when the config says nothing


def _accelerator() -> bool:
    return torch.cuda.is_available()


def listed_cpu_flags(cpuinfo: str, wanted: frozenset[str] = FAST_BF16_FLAGS) -> list[str]:
    """The flags of `wanted` (`FAST_BF16_FLAGS` by default, or `FAST_FP16_FLAGS`) that a /proc/cpuinfo text lists
    (first processor)."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return sorted(wanted.intersection(value.split()))
    return []


def read_cpuinfo() -> str:
    """/proc/cpuinfo's text on Linux, else "" (macOS and Windows are not probed)."""
    cpuinfo = Path("/proc/cpuinfo")
    if platform.system() != "Linux" or not cpuinfo.is_file():
        return ""
    return cpuinfo.read_text(errors="replace")


@functools.cache
def cpu_has_fast_bf16() -> bool:
    """Whether this machine's CPU computes bf16 products in hardware (Linux: /proc/cpuinfo; elsewhere no, which
    keeps fp32: macOS and Windows are not probed)."""
    return bool(listed_cpu_flags(read_cpuinfo()))


@functools.cache
def cpu_has_fast_fp16() -> bool:
    """Whether this machine's CPU computes fp16 products in hardware (x86 Linux only, as `cpu_has_fast_bf16`)."""
    return bool(listed_cpu_flags(read_cpuinfo(), FAST_FP16_FLAGS))


def cpu_name(cpuinfo: str | None = None) -> str:
    """The CPU's model name from a /proc/cpuinfo text (x86 "model name", Arm "Model", MIPS "cpu model"), else what
    the platform says."""
    for line in (read_cpuinfo() if cpuinfo is None else cpuinfo).splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "cpu model") and value.strip():
            return value.strip()
    return platform.processor() or platform.machine()


# Instruction sets that decide a CPU's float32 and bf16 speed, as benchmarks and `lmforge env` name them.
SPEED_FLAG_LABELS = (("avx512f", "AVX-512"), ("avx512_bf16", "AVX-512-BF16"), ("amx_bf16", "AMX"))


def cpu_description(cpuinfo: str | None = None) -> str:
    """The CPU's model name and its speed-deciding instruction sets ("AMD EPYC (AVX-512, AVX-512-BF16)"; "AVX2
    only" where it has no AVX-512): a speed figure means little without them."""
    info = read_cpuinfo() if cpuinfo is None else cpuinfo
    name = cpu_name(info)
    flags = set(listed_cpu_flags(info, frozenset({flag for flag, _ in SPEED_FLAG_LABELS} | {"avx2"})))
    features = [label for flag, label in SPEED_FLAG_LABELS if flag in flags]
    if not features and "avx2" in flags:
        features = ["AVX2 only"]
    return name + (f" ({', '.join(features)})" if features else "")


def _deepspeed_precision_is_the_trainers(cfg: LmforgeConfig, key: str) -> bool:
    """Whether the run's DeepSpeed config, if any, leaves `key` (bf16, fp16) to the Trainer's arguments: its section
    absent or `enabled: auto`, as in LLaMA-Factory's examples. One it cannot read counts as no (the rules report it)."""
    if cfg.training.deepspeed is None:
        return True
    settings = cfg.training.deepspeed_settings()
    section = settings.get(key) if settings is not None else False
    return section is None or (isinstance(section, dict) and section.get("enabled", "auto") == "auto")


def emulated_half_precision(cfg: LmforgeConfig) -> str | None:
    """The key (`bf16` or `fp16`) of mixed precision that the config asks for on a CPU without that arithmetic in
    hardware, which then trains in fp32; None where it is computed as asked. `pure_bf16` (bf16 weights, for their
    memory) and a DeepSpeed config that enables it itself are left as they are."""
    if _accelerator() or cfg.finetuning.pure_bf16:
        return None
    for key, fast in (("bf16", cpu_has_fast_bf16), ("fp16", cpu_has_fast_fp16)):
        if getattr(cfg.training, key) and not fast():
            return key if _deepspeed_precision_is_the_trainers(cfg, key) else None
    return None


def emulated_pure_bf16(cfg: LmforgeConfig) -> bool:
    """`pure_bf16` (bf16 weights and products) on a CPU without bf16 arithmetic: kept, since its weights' memory may
    be why it was asked for, but every product is emulated there (the run warns, naming the fp32 way out)."""
    return bool(cfg.finetuning.pure_bf16) and not _accelerator() and not cpu_has_fast_bf16()


def precision_summary(cfg: LmforgeConfig) -> str:
    """What the run's arithmetic will be on this machine (`lmforge check`): the device and the compute dtype, and
    why where a precision key was set aside."""
    device = (f"GPU ({torch.cuda.get_device_name()})" if _accelerator() else f"CPU ({cpu_description()})")
    if cfg.finetuning.pure_bf16:
        slow = "; emulated on this CPU, about 100x slower than fp32" if emulated_pure_bf16(cfg) else ""
        return f"{device}: bf16 weights and products (pure_bf16){slow}"
    dtype = compute_dtype(cfg)
    if dtype == torch.float32:
        emulated = emulated_half_precision(cfg)
        why = f" (`{emulated}: true` set aside: no {emulated} arithmetic on this CPU)" if emulated else ""
        return f"{device}: float32{why}"
    return f"{device}: {str(dtype).removeprefix('torch.')} mixed precision (autocast)"


def _default_dtype(cfg: LmforgeConfig) -> torch.dtype:
    """The compute dtype of a run that sets neither `bf16` nor `fp16`. DeepSpeed on a CPU keeps fp32: its engine
    manages precision itself, and its bf16 path on a CPU is not one lmforge has verified."""
    if _accelerator():
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_has_fast_bf16() and not cfg.training.deepspeed else torch.float32


def compute_dtype(cfg: LmforgeConfig) -> torch.dtype:
    if emulated_half_precision(cfg):
        return torch.float32
    if cfg.training.bf16 or cfg.finetuning.pure_bf16:
        return torch.bfloat16
    if cfg.training.fp16:
        return torch.float16
    if cfg.training.bf16 is None and cfg.training.fp16 is None:
        return _default_dtype(cfg)
    return torch.float32


def training_load_dtype(cfg: LmforgeConfig) -> torch.dtype:
    """The dtype the base weights are loaded in for training: float32 for full fine-tuning and on a CPU
    (autocast computes in the compute dtype), else the compute dtype; `pure_bf16`: bf16 throughout."""
    if cfg.finetuning.pure_bf16:
        return torch.bfloat16
    if cfg.finetuning.finetuning_type == "full" or not _accelerator():
        return torch.float32
    return compute_dtype(cfg)


def frozen_linears_in_bf16(cfg: LmforgeConfig) -> bool:
    """Whether LoRA-style training keeps its frozen linear weights in bf16 (model/frozen_linears.py): on a CPU
    training float32 weights under bf16 autocast, where those weights hold bf16 values anyway (checked per
    weight there). Not for quantized bases, DeepSpeed (its engine casts) or torch.compile."""
    ft = cfg.finetuning
    return (ft.finetuning_type in ("lora", "oft") and not cfg.model.quantization_bit and not _accelerator()
            and compute_dtype(cfg) == torch.bfloat16 and training_load_dtype(cfg) == torch.float32
            and not cfg.training.deepspeed and not cfg.training.torch_compile)


def frozen_linears_loaded_in_bf16(cfg: LmforgeConfig) -> bool:
    """Whether those frozen linear weights are loaded in bf16 from a bf16 checkpoint instead of loaded in float32
    and cast back (model/frozen_linears.py: a 1.2B model's load peaked at ~2x the RSS): where a fresh adapter
    starts with the plain initialisation, as on a GPU (its A matrices drawn in float32 and rounded to the base's
    bf16 by peft, then trained in float32), or an adapter is resumed (peft makes it float32 before loading its
    weights: exact). Not where the base weights are read or rewritten at full precision (DoRA's magnitudes, PiSSA,
    adapters merged into the base) or new rows and routers are drawn (new tokens, mixture-of-depths)."""
    ft, model = cfg.finetuning, cfg.model
    merged = len(model.adapter_paths()) - (0 if ft.create_new_adapter else 1)
    return (frozen_linears_in_bf16(cfg) and not ft.use_dora and not ft.pissa_init and merged <= 0
            and not (model.add_tokens or model.add_special_tokens or model.resize_vocab)
            and not model.mixture_of_depths)


def frozen_reference_in_bf16(cfg: LmforgeConfig) -> bool:
    """Whether a reference model loaded on its own (full fine-tuning's frozen copy, or `ref_model`) keeps its linear
    weights in bf16 as LoRA's frozen base does (model/frozen_linears.py, loaded so from a bf16 checkpoint): CPU
    training under bf16 autocast, whose products are bf16 whatever the weights' dtype (the same log-probabilities).
    Not for a quantized reference or one with adapters merged into it."""
    ft = cfg.finetuning
    return (not _accelerator() and compute_dtype(cfg) == torch.bfloat16 and training_load_dtype(cfg) == torch.float32
            and not cfg.training.deepspeed and not cfg.training.torch_compile
            and not (ft.ref_model and (ft.ref_model_quantization_bit or ft.ref_model_adapters)))


def cpu_activation_savings(cfg: LmforgeConfig) -> bool:
    """Whether CPU training keeps fewer tensors for its backward pass and makes fewer casts (runner's
    `keep_less_for_backward`: the gated MLP's activation recomputed, weight copies recast or kept, peft's input
    casts off): the same numbers in less memory and time. Not on GPUs (not yet measured there), with DeepSpeed
    (its engine owns the weights) or torch.compile (the hooks would break its graphs)."""
    return not _accelerator() and not cfg.training.deepspeed and not cfg.training.torch_compile


def weight_copies(cfg: LmforgeConfig, longest: int | None, checkpointing: bool) -> Literal["recast", "kept"] | None:
    """What CPU training does with the half-precision copies of its float32 weights (model/recast_weights.py):
    "recast" in backward for micro-batches of `RECAST_MIN_TOKENS` or more, "kept" from step to step (frozen
    weights) for shorter ones, neither under activation checkpointing (a checkpointed layer keeps no copy; the
    recast's hooks, the innermost, would keep what checkpointing drops, and kept copies would add memory)."""
    if checkpointing:
        return None
    return "recast" if micro_batch_tokens(cfg, longest) >= RECAST_MIN_TOKENS else "kept"


def global_batch_accumulation(global_batch_size: int, per_device: int, processes: int) -> int:
    """The accumulation steps that make `global_batch_size` examples per optimizer step over `processes`
    processes of `per_device` examples each (LLaMA-Factory v1 divides the same way)."""
    if global_batch_size % (per_device * processes):
        raise ConfigError(f"`global_batch_size: {global_batch_size}` is not a multiple of "
                          f"per_device_train_batch_size x processes = {per_device} x {processes}: choose a global "
                          "batch size that is, or another per-device batch size or process count")
    return global_batch_size // (per_device * processes)


def micro_batch_tokens(cfg: LmforgeConfig, longest: int | None = None) -> int:
    """The most tokens one micro-batch can put through the model with gradients: rows x the longest row x the
    stage's sequences per row (a preference pair is two). `longest`: the longest example of the prepared
    data when known (rows are padded to the longest of their batch, never past `cutoff_len`); else
    `cutoff_len` (packed rows, media rows, streamed data)."""
    stage = STAGES.get(cfg.finetuning.stage)
    rows = cfg.training.per_device_train_batch_size or TRAINER_BATCH_SIZE
    length = cfg.data.cutoff_len if longest is None else min(longest, cfg.data.cutoff_len)
    return rows * length * stage.sequences_per_row


def training_defaults(cfg: LmforgeConfig, longest: int | None = None) -> dict[str, Any]:
    """TrainingArguments lmforge fills in by device when the user set nothing (`longest`: see
    `micro_batch_tokens`)."""
    defaults: dict[str, Any] = {}
    dtype = compute_dtype(cfg)
    # pure_bf16 computes in the weights' own bf16: no mixed-precision autocast
    if cfg.training.bf16 is None and cfg.training.fp16 is None and dtype != torch.float32 \
            and not cfg.finetuning.pure_bf16:
        defaults["bf16" if dtype == torch.bfloat16 else "fp16"] = True
    # transformers 5 renamed gradient_checkpointing to activation_checkpointing; either name counts as set
    training = cfg.training
    if training.gradient_checkpointing is None and training.activation_checkpointing is None:
        long_batches = micro_batch_tokens(cfg, longest) >= CPU_CHECKPOINT_TOKENS
        defaults["activation_checkpointing"] = _accelerator() or long_batches or bool(cfg.model.quantization_bit)
    if training.gradient_checkpointing_kwargs is None and training.activation_checkpointing_kwargs is None:
        # non-reentrant checkpointing works with frozen inputs (LoRA, freeze) without extra hooks
        defaults["activation_checkpointing_kwargs"] = {"use_reentrant": False}
    return defaults
