"""Multimodal SFT throughput on a tiny Qwen2.5-VL: the first epoch against the second, with and without the
processed-media cache (`src/lmforge/data/multimodal/media_cache.py`).

The job: `lmforge.testing.tiny_vlm`'s random Qwen2.5-VL with its real processor, `--rows` one-image SFT
examples (LLaMA-Factory's mllm_demo questions and answers on distinct variants of its three pictures,
written once to bench/.cache, so no image repeats within an epoch), lmforge's multimodal collator with the
default media options, batch 4, fp32, AdamW, two epochs. Each run is a fresh process with an empty cache
folder; the two settings alternate run by run; examples/s is the epoch's examples over its wall time
(collating and the training step both counted) and, apart, the collator's own rate; peak RSS comes from
the process itself.

`--llamafactory` runs the same rows through both frameworks' CLIs instead (LLaMA-Factory 0.9.5 in its own
venv, bench/common.py): the rows written as a sharegpt dataset registered like mllm_demo, the tiny Qwen2.5-VL's
folder, `template: qwen2_vl`, cutoff 2048, batch 4, one epoch, LoRA rank 8 on all linear layers (vision tower
and projector frozen: both defaults), lr 1e-4 cosine, fp32, no packing, dataloader workers 0, LLaMA-Factory
without gradient checkpointing (lmforge's CPU default). Each run is a fresh `lmforge train` /
`llamafactory-cli train` process with an empty lmforge home (so an empty media cache), the frameworks
alternating run by run. examples/s is the rows over each trainer's own train_runtime (collating, the
processor and the steps; not model loading or preprocessing, shown apart as the process's wall time); peak
RSS comes from wait4. `--threads 1` runs both single-threaded (OMP/MKL): on a shared machine two torch threads
wait on each other at every op of a model this small, which swamps the frameworks' own costs.

Usage: python bench/multimodal_sft.py [--runs 3] [--rows 64] [--record] [--llamafactory [--threads default|1]]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import (
    CACHE,
    ROOT,
    append_benchmark_row,
    llamafactory_python,
    machine,
    median_range,
    refdata,
    today,
    versions,
)
from bench.train_throughput import SINGLE_THREAD
from bench.train_throughput import run as run_cli

WORKER = """
import json, resource, sys, time
import torch
from lmforge.config import build_config
from lmforge.data.conversation import Conversation
from lmforge.data.multimodal.collator import multimodal_collator
from lmforge.data.multimodal.examples import to_row
from lmforge.data.templates import get_template
from lmforge.data.templates.template import Message
from lmforge.testing.tiny_vlm import model_auto_class
from transformers import AutoProcessor

folder, rows_file, cached = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
torch.manual_seed(0)
processor = AutoProcessor.from_pretrained(folder)
model = model_auto_class("qwen2_5_vl").from_pretrained(folder, dtype=torch.float32)
collator = multimodal_collator(build_config({"cutoff_len": 2048}).data, processor, get_template("qwen2_vl"),
                               model.config)
if not cached:
    collator.encoder.media_cache = None
rows = [to_row(Conversation([Message("user", r["question"]), Message("assistant", r["answer"])], None, f"row {i}",
                            media={"images": [r["image"]]})) for i, r in enumerate(json.load(open(rows_file)))]
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
rates, collating = [], []
for epoch in range(2):
    start, collate = time.perf_counter(), 0.0
    for first in range(0, len(rows), 4):
        before = time.perf_counter()
        batch = collator(rows[first:first + 4])
        collate += time.perf_counter() - before
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    rates.append(len(rows) / (time.perf_counter() - start))
    collating.append(len(rows) / collate)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"epoch1": rates[0], "epoch2": rates[1], "collate1": collating[0], "collate2": collating[1],
                  "peak_mib": peak}))
"""


# the demo pictures are 166 pixels high at least and row i crops 1 + i // 2 off each side
MAX_ROWS = 160


def prepare(rows: int) -> tuple[Path, Path]:
    """The tiny Qwen2.5-VL and `rows` examples, each on its own image (a flipped/cropped demo picture)."""
    from PIL import Image, ImageOps

    from lmforge.testing.tiny_vlm import build_tiny_vlm

    folder = CACHE / "tiny-qwen2_5_vl"
    if not (folder / "config.json").is_file():
        build_tiny_vlm(folder, "qwen2_5_vl")
    data = refdata("llamafactory_data")
    demo = json.loads((data / "mllm_demo.json").read_text())
    images = CACHE / "mm-images"
    images.mkdir(parents=True, exist_ok=True)
    out = []
    for index in range(rows):
        source = demo[index % len(demo)]
        path = images / f"{index}.jpg"
        if not path.is_file():
            picture = Image.open(data / source["images"][0]).convert("RGB")
            picture = ImageOps.mirror(picture) if index % 2 else picture
            crop = 1 + index // 2  # pixels off each side: every variant differs
            picture.crop((crop, crop, picture.width - crop, picture.height - crop)).save(path, quality=90)
        out.append({"question": "<image>" + source["messages"][0]["content"].replace("<image>", ""),
                    "answer": source["messages"][1]["content"], "image": str(path)})
    rows_file = CACHE / f"mm-rows-{rows}.json"
    rows_file.write_text(json.dumps(out))
    return folder, rows_file


def run(folder: Path, rows_file: Path, cached: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as home:  # an empty media cache for every run
        env = {**os.environ, "LMFORGE_HOME": home, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1"}
        out = subprocess.run([sys.executable, "-c", WORKER, str(folder), str(rows_file), "1" if cached else "0"],
                             capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def sharegpt_dataset(rows_file: Path) -> tuple[Path, str]:
    """The rows as a sharegpt file beside a dataset_info.json registering it as mllm_demo is registered: the
    dataset both frameworks read."""
    folder = CACHE / "mm-dataset"
    folder.mkdir(parents=True, exist_ok=True)
    name = rows_file.stem
    rows = [{"messages": [{"role": "user", "content": row["question"]},
                          {"role": "assistant", "content": row["answer"]}], "images": [row["image"]]}
            for row in json.loads(rows_file.read_text())]
    (folder / f"{name}.json").write_text(json.dumps(rows))
    registration = json.loads(refdata("llamafactory_data", "dataset_info.json").read_text())["mllm_demo"]
    (folder / "dataset_info.json").write_text(json.dumps({name: {**registration, "file_name": f"{name}.json"}}))
    return folder, name


def cli_job(model: Path, dataset_dir: Path, dataset: str, rows: int, out: Path, llamafactory: bool) -> dict:
    config = {
        "model_name_or_path": str(model), "stage": "sft", "do_train": True, "finetuning_type": "lora",
        "lora_target": "all", "lora_rank": 8, "dataset": dataset, "dataset_dir": str(dataset_dir),
        "template": "qwen2_vl", "cutoff_len": 2048, "max_samples": rows, "overwrite_cache": True,
        "output_dir": str(out), "per_device_train_batch_size": 4, "gradient_accumulation_steps": 1,
        "learning_rate": 1.0e-4, "num_train_epochs": 1, "lr_scheduler_type": "cosine", "warmup_ratio": 0.1,
        "logging_steps": 4, "save_strategy": "no", "report_to": "none", "bf16": False, "seed": 42,
        "dataloader_num_workers": 0,
    }
    if llamafactory:
        config["disable_gradient_checkpointing"] = True  # as lmforge on the CPU
        config["overwrite_output_dir"] = True
    return config


def compare_with_llamafactory(args: argparse.Namespace, folder: Path, rows_file: Path) -> None:
    """lmforge vs LLaMA-Factory on the same rows, each through its own CLI, alternating run by run."""
    lf_python = str(llamafactory_python())
    dataset_dir, dataset = sharegpt_dataset(rows_file)
    load_before = os.getloadavg()[0]
    figures: dict[str, dict[str, list[float]]] = {
        framework: {"speed": [], "rss": [], "wall": []} for framework in ("llamafactory", "lmforge")}
    for _ in range(args.runs):
        for framework in ("llamafactory", "lmforge"):
            with tempfile.TemporaryDirectory() as home, tempfile.TemporaryDirectory() as out:
                env = {**os.environ, "HF_HUB_OFFLINE": "1", "DISABLE_VERSION_CHECK": "1", "LMFORGE_HOME": home,
                       **(SINGLE_THREAD if args.threads == "1" else {})}
                if framework == "lmforge":
                    env["PYTHONPATH"] = str(ROOT / "src")
                config = cli_job(folder, dataset_dir, dataset, args.rows, Path(out), framework == "llamafactory")
                start = time.perf_counter()
                result = run_cli(framework, lf_python, config, env)
                figures[framework]["wall"].append(time.perf_counter() - start)
            figures[framework]["speed"].append(args.rows / result["runtime"])
            figures[framework]["rss"].append(result["peak_rss_mib"])
    load_after = os.getloadavg()[0]
    ours, theirs = figures["lmforge"], figures["llamafactory"]
    ratio = statistics.median(ours["speed"]) / statistics.median(theirs["speed"])
    rss_ratio = statistics.median(ours["rss"]) / statistics.median(theirs["rss"])
    print(f"{args.rows} rows, batch 4, 1 epoch, LoRA r8, fp32, threads {args.threads}; {machine()}; load "
          f"{load_before:.1f} -> "
          f"{load_after:.1f}")
    line = (f"{median_range(ours['speed'])} | {median_range(theirs['speed'])} | {ratio:.2f}x | "
            f"{median_range(ours['rss'])} / {median_range(theirs['rss'])} ({rss_ratio:.2f}x) | "
            f"{median_range(ours['wall'])} / {median_range(theirs['wall'])}")
    print("| lmforge ex/s | LLaMA-Factory ex/s | ratio | peak RSS MiB (lmforge / LF) | process wall s (lmforge / LF) |")
    print(f"| {line} |")
    if not args.record:
        return
    ours_v = versions(sys.executable, ["torch", "transformers", "peft"])
    lf_v = versions(lf_python, ["llamafactory", "transformers", "peft"])
    append_benchmark_row(
        "Multimodal SFT: lmforge vs LLaMA-Factory (tiny Qwen2.5-VL, same rows, CPU)",
        "| date | job | lmforge ex/s | LLaMA-Factory ex/s | ratio | peak RSS MiB (lmforge / LF) | process wall s "
        "(lmforge / LF) | machine, load | versions | command |\n|---|---|---|---|---|---|---|---|---|---|",
        f"| {today()} | {args.rows} one-image rows, qwen2_vl, cutoff 2048, batch 4, 1 epoch, LoRA r8, fp32, threads "
        f"{args.threads} | {line} | "
        f"{machine()}, load {load_before:.1f} -> {load_after:.1f} | lmforge: torch {ours_v['torch']}, transformers "
        f"{ours_v['transformers']}, peft {ours_v['peft']}; LLaMA-Factory {lf_v['llamafactory']} (transformers "
        f"{lf_v['transformers']}, peft {lf_v['peft']}) | "
        f"`python bench/multimodal_sft.py --llamafactory --runs {args.runs} --rows {args.rows} "
        f"--threads {args.threads} --record` |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--record", action="store_true", help="append the figures to BENCHMARKS.md")
    parser.add_argument("--llamafactory", action="store_true",
                        help="lmforge vs LLaMA-Factory 0.9.5 on the same rows, each through its CLI")
    parser.add_argument("--threads", choices=("default", "1"), default="default",
                        help="with --llamafactory: torch's default threads, or one (both frameworks)")
    args = parser.parse_args()
    if not 0 < args.rows <= MAX_ROWS:
        parser.error(f"--rows: 1 to {MAX_ROWS} (each row crops its demo picture further)")
    folder, rows_file = prepare(args.rows)
    if args.llamafactory:
        return compare_with_llamafactory(args, folder, rows_file)
    results: dict[bool, list[dict[str, float]]] = {True: [], False: []}
    for _ in range(args.runs):
        for cached in (False, True):
            results[cached].append(run(folder, rows_file, cached))
    print(f"machine: {machine()}; load {os.getloadavg()[0]:.1f}")
    print("| media cache | epoch 1 ex/s | epoch 2 ex/s | collator alone, epoch 1 / 2 ex/s | peak RSS MiB |")
    print("|---|---|---|---|---|")
    lines = []
    for cached in (False, True):
        runs = results[cached]
        figures = [median_range([r[key] for r in runs]) for key in ("epoch1", "epoch2", "collate1", "collate2",
                                                                    "peak_mib")]
        line = (f"| {'on' if cached else 'off'} | {figures[0]} | {figures[1]} | {figures[2]} / {figures[3]} | "
                f"{figures[4]} |")
        print(line)
        lines.append(line)
    if args.record:
        found = versions(sys.executable, ["torch", "transformers"])
        command = f"python bench/multimodal_sft.py --runs {args.runs} --rows {args.rows}"
        header = ("| date | media cache | epoch 1 ex/s | epoch 2 ex/s | collator alone, epoch 1 / 2 ex/s "
                  "| peak RSS MiB | command | machine, load | versions |\n|---|---|---|---|---|---|---|---|---|")
        for line in lines:
            append_benchmark_row(
                "Multimodal SFT: processed-media cache, epoch 1 vs epoch 2 (tiny Qwen2.5-VL, CPU)", header,
                f"| {today()} |{line[1:]} `{command}` | {machine()}, load {os.getloadavg()[0]:.1f} | "
                f"torch {found['torch']}, transformers {found['transformers']} |")


if __name__ == "__main__":
    main()
