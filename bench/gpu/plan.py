"""What the GPU suite runs, in which order, in how many seconds, and with which training settings.

The whole suite must end inside 8 minutes on an H200 (the device lends 15, start-up included, and a
rerun should still fit). `TOTAL_S` is counted from the start of run.sh, wheel install included. Every
step runs in its own process group under a time box; a step that cannot start in the time left, or
outlives its box, is recorded as such and the suite goes on. The core steps' boxes together fit in the
total, so they always get their chance; the optional ones (GRPO, QLoRA, Liger, ZeRO-3,
...) use what is left.
"""

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.gpu.models import DATASET, TEMPLATE

ROOT_DIR = Path(__file__).resolve().parents[2]
TOTAL_S = 480  # run.sh start to the last result written: 8 min
INSTALL_BOX_S = 45  # run.sh's wheel install (timeout 45 there)
MIN_START_S = 15  # a step with less time than this left is not started
DRY_RUN_BOX_S = 50  # the CPU dry run's own boxes (CI)


@dataclass(frozen=True)
class Step:
    name: str
    box_s: int
    what: str
    core: bool = True  # core steps' boxes must fit in TOTAL_S together
    dry_run: bool = False  # also runs (small, on the CPU) in the dry run


PLAN: tuple[Step, ...] = (
    Step("env", 40, "versions, device, lmforge imports", dry_run=True),
    Step("models", 55, "random-weight Qwen2.5-0.5B/1.5B-shaped models and the generated dataset", dry_run=True),
    Step("train-lora-0.5b", 45, "LoRA SFT, bf16, packed at 2048", dry_run=True),
    Step("train-full-0.5b", 50, "full SFT, bf16, packed at 2048"),
    Step("train-lora-1.5b", 50, "LoRA SFT, bf16, packed at 2048"),
    Step("train-full-1.5b", 70, "full SFT, bf16, packed at 2048"),
    Step("invariants", 40, "packed == unpacked loss and gradients; checkpointing on == off", dry_run=True),
    Step("generation", 40, "32 concurrent prompts through the engine", dry_run=True),
    Step("pytest-gpu", 45, "pytest -m gpu tests/gpu"),
    Step("grpo", 60, "GRPO LoRA steps, rollouts batched through transformers' generate", core=False, dry_run=True),
    Step("qlora", 60, "QLoRA (4-bit base) LoRA steps and a 4-bit export", core=False),
    Step("liger", 45, "LoRA SFT with Liger kernels", core=False),
    Step("zero3", 60, "full SFT under DeepSpeed ZeRO-3 on one GPU", core=False),
    Step("hub-kernels", 30, "transformers' default Hub kernels, offline (the other steps run without)", core=False,
         dry_run=True),
    Step("grpo-vllm", 90, "GRPO LoRA steps with vLLM colocated rollouts (`use_vllm`), when vllm is installed",
         core=False),
)
STEP_NAMES = tuple(step.name for step in PLAN)


@dataclass(frozen=True)
class Context:
    """Where a step reads and writes, and how big its work is (the dry run's is tiny and on the CPU)."""

    work: Path
    dry_run: bool

    @property
    def models(self) -> Path:
        return self.work / "models"

    @property
    def data(self) -> Path:
        return self.work / "data"

    @property
    def runs(self) -> Path:
        return self.work / "runs"

    @property
    def cutoff(self) -> int:
        return 256 if self.dry_run else 2048

    def model_name(self, size: str) -> str:
        return "tiny" if self.dry_run else f"qwen2.5-{size}"

    def model_dir(self, size: str) -> Path:
        return self.models / self.model_name(size)


def work_dir(dry_run: bool) -> Path:
    """RAM-backed /dev/shm on the GPU machine when it has room (checkpoints of 6 GB write in seconds)."""
    shm = Path("/dev/shm")
    if not dry_run and shm.is_dir() and shutil.disk_usage(shm).free > 24 * 2**30:
        return Path(tempfile.mkdtemp(prefix="lmforge-gpu-", dir=shm))
    return Path(tempfile.mkdtemp(prefix="lmforge-gpu-"))


@dataclass(frozen=True)
class TrainingRun:
    """One `lmforge train` run of the suite: the model size, LoRA or full, and keys beyond `train_config`'s."""

    folder: str
    size: str
    method: str
    extra: tuple[tuple[str, Any], ...] = ()


ZERO3_CONFIG = str(ROOT_DIR / "examples" / "deepspeed" / "ds_z3_config.json")
TRAINING_RUNS: dict[str, TrainingRun] = {  # by step name
    "train-lora-0.5b": TrainingRun("lora-0.5b", "0.5b", "lora"),
    "train-full-0.5b": TrainingRun("full-0.5b", "0.5b", "full"),
    "train-lora-1.5b": TrainingRun("lora-1.5b", "1.5b", "lora"),
    "train-full-1.5b": TrainingRun("full-1.5b", "1.5b", "full"),
    "qlora": TrainingRun("qlora-0.5b", "0.5b", "lora", (("quantization_bit", 4), ("max_steps", 10))),
    "liger": TrainingRun("liger-lora-0.5b", "0.5b", "lora", (("enable_liger_kernel", True),)),
    "zero3": TrainingRun("zero3-full-0.5b", "0.5b", "full", (("deepspeed", ZERO3_CONFIG), ("max_steps", 10))),
}


def train_config(ctx: Context, size: str, method: str, out: Path, **extra: Any) -> dict[str, Any]:
    """The `lmforge train` config of a training step: LoRA rank 16 on every linear layer (or full), bf16,
    rows packed to the cutoff, 20 steps of 4 rows (4 x 2,048 tokens), logged every 5 steps.
    Gradient checkpointing is left to lmforge's device default (on with a GPU)."""
    config: dict[str, Any] = {
        "model_name_or_path": str(ctx.model_dir(size)), "template": TEMPLATE, "stage": "sft",
        "finetuning_type": method, "dataset": DATASET, "dataset_dir": str(ctx.data), "cutoff_len": ctx.cutoff,
        "packing": True, "output_dir": str(out), "overwrite_output_dir": True,
        "per_device_train_batch_size": 2 if ctx.dry_run else 4, "gradient_accumulation_steps": 1,
        "max_steps": 4 if ctx.dry_run else 20, "logging_steps": 2 if ctx.dry_run else 5,
        "learning_rate": 1.0e-4, "save_strategy": "no", "report_to": "none", "seed": 0,
    }
    if method == "lora":
        config.update(lora_rank=16, lora_target="all")
    if not ctx.dry_run:
        config["bf16"] = True
    config.update(extra)
    return config


def qlora_export_config(ctx: Context, adapter: Path, export_dir: Path) -> dict[str, Any]:
    """`lmforge export` of the QLoRA run: the adapter merged into the base, re-quantized to 4 bits."""
    return {"model_name_or_path": str(ctx.model_dir("0.5b")), "template": TEMPLATE,
            "adapter_name_or_path": str(adapter), "export_dir": str(export_dir), "export_quantization_bit": 4,
            "export_modelfile": False}


def check_time_boxes() -> list[str]:
    """Problems of the plan's time boxes (run by the dry run, so the plan cannot outgrow the lease)."""
    problems = []
    core = sum(step.box_s for step in PLAN if step.core)
    if INSTALL_BOX_S + core > TOTAL_S:
        problems.append(f"core steps' boxes ({core} s) and the install ({INSTALL_BOX_S} s) exceed {TOTAL_S} s")
    if TOTAL_S > 8 * 60:
        problems.append(f"TOTAL_S {TOTAL_S} s is over the 8 minutes the suite may take")
    problems += [f"step {step.name}: box {step.box_s} s is under {MIN_START_S} s" for step in PLAN
                 if step.box_s < MIN_START_S]
    if len(set(STEP_NAMES)) != len(STEP_NAMES):
        problems.append("two steps share a name")
    return problems


def suite_environment(ctx: Context, absent: list[str]) -> dict[str, str]:
    """Environment of every step: offline, caches inside the work folder, and transformers' Hub kernels off
    (they are code downloaded from the Hub; the hub-kernels step checks what happens with them on, offline).
    The dry run also blocks the `absent` modules (image_sim/), as the GPU image would."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "USE_HUB_KERNELS": "0", "PYTHONUNBUFFERED": "1", "LMFORGE_HOME": str(ctx.work / "lmforge-home"),
           "HF_HOME": str(ctx.work / "hf-home"), "COLUMNS": "160"}
    if ctx.dry_run:
        image_sim = str(Path(__file__).resolve().parent / "image_sim")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [image_sim, env.get("PYTHONPATH")]))
        env["LMFORGE_GPU_ABSENT"] = ",".join(absent)
    return env
