"""Peak memory of the preference stages: this tree vs another lmforge source tree (`--baseline-src`), vs
LLaMA-Factory 0.9.5 (`--llamafactory`, its own venv, created on first use: bench/common.py), or vs a baseline
figure recorded before on the same job (`--baseline-mib`: only this tree runs).

The job is LLaMA-Factory's v0.9.3 example `train_lora/llama3_lora_dpo.yaml` with only the paths and
length changed: the model (`--model`: `qwen-151k`, the one-layer Qwen2 with the real 151,643-token
vocabulary, where the logits are most of the memory; or `smollm2`, builtin:smollm2-135m-instruct),
dpo_en_demo from ../shared/refdata, `max_steps` (`--steps`) instead of 3 epochs, no saving, and
`dataloader_num_workers: 0` (worker processes would blur the peak). LoRA rank 8 on all linear layers,
cutoff 2048, batch 1 x accumulation 8, bf16 as in the example (`--finetuning-type full`, `--cutoff`: the same job
with full fine-tuning, whose reference is a frozen copy, or another length). `--losses` picks `pref_loss` values
(sigmoid is trl's DPOTrainer; orpo and simpo lmforge's reference-free trainer); `kto` runs the kto
stage on kto_en_demo. Each run is a fresh CLI process; trees alternate run by run; peak RSS comes from
wait4 (the process and its children). LLaMA-Factory gets `use_cpu: true` beside `bf16: true` (transformers
refuses bf16 without a GPU otherwise) and runs sigmoid (DPO), orpo, simpo and kto through its own trainers.

Usage: python bench/dpo_memory.py (--baseline-src /tmp/before/src | --llamafactory | --baseline-mib MIB)
                                  [--model qwen-151k|smollm2]
                                  [--losses sigmoid,orpo,simpo,kto] [--steps 4] [--runs 1]
                                  [--finetuning-type lora|full] [--cutoff 2048]
"""

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import llamafactory_python, machine, refdata
from bench.train_throughput import large_vocabulary_model, run


def model_and_template(name: str) -> tuple[str, str]:
    if name == "smollm2":
        return "builtin:smollm2-135m-instruct", "smollm2"
    return str(large_vocabulary_model()), "qwen"


def job_config(model: str, template: str, loss: str, steps: int, out: Path, llamafactory: bool = False,
               finetuning_type: str = "lora", cutoff: int = 2048) -> dict:
    config = {
        "model_name_or_path": model, "stage": "dpo", "do_train": True, "finetuning_type": finetuning_type,
        "pref_beta": 0.1, "pref_loss": loss, "dataset": "dpo_en_demo",
        "dataset_dir": str(refdata("llamafactory_data")), "template": template, "cutoff_len": cutoff,
        "max_samples": 1000, "overwrite_cache": True, "dataloader_num_workers": 0, "output_dir": str(out),
        "logging_steps": 1, "save_strategy": "no", "overwrite_output_dir": True, "report_to": "none",
        "per_device_train_batch_size": 1, "gradient_accumulation_steps": 8, "learning_rate": 5.0e-6,
        "max_steps": steps, "lr_scheduler_type": "cosine", "warmup_ratio": 0.1, "bf16": True,
    }
    if finetuning_type == "lora":
        config.update(lora_rank=8, lora_target="all")
    if loss == "kto":  # the kto stage on its own demo data; KTOTrainer needs two rows a batch
        del config["pref_loss"]
        config.update(stage="kto", dataset="kto_en_demo", per_device_train_batch_size=2,
                      gradient_accumulation_steps=4)
    if llamafactory:
        config["use_cpu"] = True
        if model.startswith("builtin:"):  # LLaMA-Factory reads a folder: the same files lmforge prepared
            from lmforge.hub.builtin import builtin_path

            config["model_name_or_path"] = str(builtin_path(model))
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    baseline_choice = parser.add_mutually_exclusive_group(required=True)
    baseline_choice.add_argument("--baseline-src", type=Path,
                                 help="lmforge's src folder of another checkout (e.g. the commit before a change)")
    baseline_choice.add_argument("--llamafactory", action="store_true", help="LLaMA-Factory 0.9.5 as the baseline")
    baseline_choice.add_argument("--baseline-mib", type=float,
                                 help="a baseline's peak RSS measured before on the same job (e.g. LLaMA-Factory's "
                                      "recorded figure, when there is no time to run it again): this tree only")
    parser.add_argument("--model", choices=("qwen-151k", "smollm2"), default="qwen-151k")
    parser.add_argument("--losses", default="sigmoid,orpo,simpo,kto")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--finetuning-type", choices=("lora", "full"), default="lora",
                        help="full: the reference is a frozen copy of the model (sigmoid and kto)")
    parser.add_argument("--cutoff", type=int, default=2048)
    options = parser.parse_args()
    if options.llamafactory:
        baseline, lf_python = "llamafactory", str(llamafactory_python())
    elif options.baseline_mib:
        baseline, lf_python = f"recorded {options.baseline_mib:.0f} MiB", ""
    else:
        baseline, lf_python = str(options.baseline_src.resolve()), ""
        if not (options.baseline_src / "lmforge" / "__init__.py").is_file():
            sys.exit(f"--baseline-src {baseline}: no lmforge package there (give the checkout's src folder)")
    model, template = model_and_template(options.model)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "LMFORGE_HOME": os.environ.get("LMFORGE_HOME", str(
        Path.home() / ".cache" / "lmforge"))}
    method = "LoRA r8" if options.finetuning_type == "lora" else "full fine-tuning"
    print(f"model {options.model}, cutoff {options.cutoff}, batch 1 x 8, {options.steps} steps, {method}, bf16; "
          f"baseline {baseline}; {machine()}; load {os.getloadavg()[0]:.1f}")
    print(f"{'loss':<8} {'this tree RSS MiB':>18} {'baseline RSS MiB':>17} {'ratio':>6} {'this s':>7} {'base s':>7}")
    for loss in options.losses.split(","):
        rss: dict[str, list[float]] = {"lmforge": [], baseline: []}
        seconds: dict[str, list[float]] = {"lmforge": [], baseline: []}
        for _ in range(options.runs):
            for framework in (baseline, "lmforge"):
                if options.baseline_mib and framework == baseline:
                    rss[framework].append(options.baseline_mib)
                    seconds[framework].append(float("nan"))
                    continue
                out = Path(tempfile.mkdtemp(prefix="dpo-mem-"))
                config = job_config(model, template, loss, options.steps, out, framework == "llamafactory",
                                    options.finetuning_type, options.cutoff)
                result = run(framework, lf_python, config, env)
                rss[framework].append(result["peak_rss_mib"])
                seconds[framework].append(result["runtime"])
        ours, theirs = statistics.median(rss["lmforge"]), statistics.median(rss[baseline])
        print(f"{loss:<8} {ours:>18.0f} {theirs:>17.0f} {ours / theirs:>5.2f}x "
              f"{statistics.median(seconds['lmforge']):>7.1f} {statistics.median(seconds[baseline]):>7.1f}")


if __name__ == "__main__":
    main()
