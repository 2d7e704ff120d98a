"""Preprocessing throughput: lmforge vs LLaMA-Factory on alpaca_en_demo with the real Qwen vocabulary.

Each measurement is a fresh process timing only the preprocessing call (JSON -> checked rows ->
template -> token ids with loss masks), after imports and tokenizer loading. First runs start from
empty caches on both sides (LLaMA-Factory: a fresh HF datasets cache and overwrite_cache; lmforge:
overwrite_cache). The frameworks alternate run by run; medians with min-max are reported, at the
machine's default threads and single-threaded. Usage: python bench/preprocess.py [--runs 5]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import (
    ROOT,
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

LMFORGE_WORKER = """
import json, sys, time
from transformers import AutoTokenizer
from lmforge.config import build_config
from lmforge.data.dataset import build_datasets
from lmforge.data.stage_data import SFT
from lmforge.data.templates import get_template
model_dir, data_dir, fresh = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
tokenizer = AutoTokenizer.from_pretrained(model_dir)
cfg = build_config({"dataset": "alpaca_en_demo", "dataset_dir": data_dir, "cutoff_len": 2048,
                    "template": "qwen", "overwrite_cache": fresh})
start = time.perf_counter()
prepared = build_datasets(cfg.data, tokenizer, get_template("qwen"), stage=SFT, stage_name="sft", seed=None)
print(json.dumps({"seconds": time.perf_counter() - start, "rows": len(prepared.train),
                  "cached": bool(prepared.report.from_cache)}))
"""

LLAMAFACTORY_WORKER = """
import json, sys, tempfile, time
from llamafactory.data import get_dataset, get_template_and_fix_tokenizer
from llamafactory.hparams import get_train_args
from llamafactory.model import load_tokenizer
model_dir, data_dir = sys.argv[1], sys.argv[2]
args = dict(model_name_or_path=model_dir, stage="sft", do_train=True, finetuning_type="lora",
            dataset="alpaca_en_demo", dataset_dir=data_dir, template="qwen", cutoff_len=2048,
            output_dir=tempfile.mkdtemp(), overwrite_cache=True, report_to="none")
model_args, data_args, training_args, finetuning_args, _ = get_train_args(args)
tokenizer_module = load_tokenizer(model_args)
template = get_template_and_fix_tokenizer(tokenizer_module["tokenizer"], data_args)
start = time.perf_counter()
module = get_dataset(template, model_args, data_args, training_args, stage="sft", **tokenizer_module)
print(json.dumps({"seconds": time.perf_counter() - start, "rows": len(module["train_dataset"])}))
"""

SINGLE_THREAD = {"OMP_NUM_THREADS": "1", "RAYON_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
                 "MKL_NUM_THREADS": "1"}


def run(python: str, code: str, args: list[str], env: dict[str, str]) -> dict:
    result = subprocess.run([python, "-c", code, *args], capture_output=True, text=True, env=env, cwd=ROOT)
    if result.returncode != 0:
        sys.exit(f"worker failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-record", action="store_true", help="print only; do not append to BENCHMARKS.md")
    options = parser.parse_args()

    lf_python = str(llamafactory_python())
    model_dir = tiny_qwen2_dir(qwen_tokenizer_dir(), "tiny-qwen2-151k", hidden_size=64, intermediate_size=128,
                               num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=2)
    data_dir = str(refdata("llamafactory_data"))
    home = tempfile.mkdtemp(prefix="lmforge-bench-")
    base_env = {**os.environ, "HF_HUB_OFFLINE": "1", "LMFORGE_HOME": home, "DISABLE_VERSION_CHECK": "1"}
    results: dict[str, dict[str, list[float]]] = {}
    rows = {}
    for threads, extra in [("default", {}), ("1", SINGLE_THREAD)]:
        timings = results.setdefault(threads, {"lmforge": [], "llamafactory": [], "lmforge_cached": []})
        for _ in range(options.runs):  # alternate the frameworks run by run
            env = {**base_env, **extra}
            ours = run(sys.executable, LMFORGE_WORKER, [str(model_dir), data_dir, "1"], env)
            lf_env = {**env, "HF_DATASETS_CACHE": tempfile.mkdtemp(prefix="hf-datasets-")}
            theirs = run(lf_python, LLAMAFACTORY_WORKER, [str(model_dir), data_dir], lf_env)
            cached = run(sys.executable, LMFORGE_WORKER, [str(model_dir), data_dir, "0"], env)
            assert cached["cached"], "the second lmforge run did not hit its cache"
            rows = {"lmforge": ours["rows"], "llamafactory": theirs["rows"]}
            timings["lmforge"].append(ours["rows"] / ours["seconds"])
            timings["llamafactory"].append(theirs["rows"] / theirs["seconds"])
            timings["lmforge_cached"].append(cached["seconds"])

    ours_v = versions(sys.executable, ["transformers", "datasets", "tokenizers"])
    lf_v = versions(lf_python, ["llamafactory", "transformers", "datasets"])
    print(f"alpaca_en_demo, real Qwen vocabulary (151,643 + specials), cutoff_len 2048; rows: {rows}")
    print(f"{'threads':<8} {'lmforge rows/s':>22} {'LLaMA-Factory rows/s':>24} {'ratio':>7} {'lmforge cached s':>18}")
    import statistics

    for threads, timings in results.items():
        ratio = statistics.median(timings["lmforge"]) / statistics.median(timings["llamafactory"])
        cached = statistics.median(timings["lmforge_cached"])
        print(f"{threads:<8} {median_range(timings['lmforge']):>22} {median_range(timings['llamafactory']):>24} "
              f"{ratio:>6.1f}x {cached:>17.2f}")
        if not options.no_record:
            append_benchmark_row(
                "Preprocessing (alpaca_en_demo, real Qwen vocabulary): lmforge vs LLaMA-Factory",
                "| date | threads | lmforge rows/s | LLaMA-Factory rows/s | ratio | lmforge cached run | machine | "
                "versions | command |\n|---|---|---|---|---|---|---|---|---|",
                f"| {today()} | {threads} | {median_range(timings['lmforge'])} | "
                f"{median_range(timings['llamafactory'])} | {ratio:.1f}x | {cached:.2f} s | {machine()} | "
                f"lmforge: transformers {ours_v['transformers']}, datasets {ours_v['datasets']}; "
                f"LLaMA-Factory {lf_v['llamafactory']} (transformers {lf_v['transformers']}, datasets "
                f"{lf_v['datasets']}) | `python bench/preprocess.py --runs {options.runs}` |")


if __name__ == "__main__":
    main()
