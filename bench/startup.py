"""Start-up: whole `lmforge` commands in fresh processes, as a user runs them, this tree vs another tree.

Each command runs `--runs` times per tree, the two trees alternating (`PYTHONPATH=<tree>/src python -m
lmforge.cli.main ...`), and is timed whole: the wall time and the CPU time of the process and its children
(torchrun and its worker, where a tree starts them). Medians with min-max. The commands:
- chat: one answer of the builtin SmolLM2-135M-Instruct without an adapter (`lmforge chat --prompt`);
- check-error: `lmforge check` of a config with an unknown key (answered before torch loads);
- train-zero3: one LoRA step of the builtin tiny Llama under `examples/deepspeed/ds_z3_config.json` in one
  process (DeepSpeed needs a process group even of one).
Both trees must print the same final line (the answer; the error; the saved folder).

Usage: python bench/startup.py --baseline-src /tmp/base/src [--runs 3] [--jobs chat,train-zero3] [--no-record]
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import ROOT, append_benchmark_row, machine, median_range, today, versions

SECTION = "Start-up: whole commands, this tree vs a baseline tree (same run)"
HEADER = ("| date | command | this tree s (CPU s) | baseline s (CPU s) | ratio | this tree, baseline | machine "
          "| versions | bench command |\n|---|---|---|---|---|---|---|---|---|")


def commands(folder: Path) -> dict[str, list[str]]:
    """Each job's `lmforge` arguments; the files they read are written into `folder`."""
    bad = folder / "bad_key.yaml"
    bad.write_text("model_name_or_path: builtin:tiny-llama\ntemplat: chatml\n")
    zero3 = folder / "zero3.yaml"
    deepspeed = ROOT / "examples" / "deepspeed" / "ds_z3_config.json"
    zero3.write_text(f"stage: sft\nmodel_name_or_path: builtin:tiny-llama\ntemplate: chatml\ndataset: identity\n"
                     f"dataset_dir: {ROOT / 'examples' / 'data'}\nmax_steps: 1\noutput_dir: {folder / 'out'}\n"
                     f"overwrite_output_dir: true\ndeepspeed: {deepspeed}\n")
    return {"chat": ["chat", str(ROOT / "examples" / "quickstart" / "chat.yaml"), "adapter_name_or_path=null",
                     "--prompt", "Hi"],
            "check-error": ["check", str(bad)],
            "train-zero3": ["train", str(zero3)]}


def revision(src: str) -> str:
    """The short commit of the git tree `src` lies in, or the folder where it is none."""
    out = subprocess.run(["git", "-C", src, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else src


def timed(src: str, args: list[str]) -> tuple[float, float, str]:
    """(wall s, CPU s of the process and its children, last line on stdout) of one fresh `lmforge ARGS`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "lmforge.cli.main", *args], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": src, "HF_HUB_OFFLINE": "1"}, cwd=ROOT)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = (out.stdout or out.stderr).strip().splitlines()  # an error goes to stderr alone
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), lines[-1] if lines else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline-src", required=True, help="the other tree's src folder")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", default="chat,check-error,train-zero3")
    parser.add_argument("--no-record", action="store_true", help="print only; do not add rows to BENCHMARKS.md")
    options = parser.parse_args()
    trees = {"this tree": str(ROOT / "src"), "baseline": options.baseline_src}
    if not (Path(options.baseline_src) / "lmforge").is_dir():
        sys.exit(f"{options.baseline_src} has no lmforge package: give the baseline tree's src folder")
    stack = versions(sys.executable, ["torch", "transformers", "peft", "deepspeed", "accelerate"])
    stack_text = ", ".join(f"{name} {version}" for name, version in stack.items())
    with tempfile.TemporaryDirectory() as folder:
        jobs = commands(Path(folder))
        print(f"{'command':14} {'this tree s (CPU s)':>24} {'baseline s (CPU s)':>24} {'ratio':>7}")
        for job in options.jobs.split(","):
            walls: dict[str, list[float]] = {name: [] for name in trees}
            cpus: dict[str, list[float]] = {name: [] for name in trees}
            last: dict[str, str] = {}
            load = os.getloadavg()[0]
            for _ in range(options.runs):
                for name, src in trees.items():
                    wall, cpu, last[name] = timed(src, jobs[job])
                    walls[name].append(wall)
                    cpus[name].append(cpu)
            if last["this tree"] != last["baseline"]:
                sys.exit(f"{job}: the trees end differently:\n  {last['this tree']}\n  {last['baseline']}")
            cells = {name: f"{median_range(walls[name])} ({statistics.median(cpus[name]):.1f})" for name in trees}
            ratio = f"{statistics.median(walls['this tree']) / statistics.median(walls['baseline']):.2f}x"
            print(f"{job:14} {cells['this tree']:>24} {cells['baseline']:>24} {ratio:>7}")
            if not options.no_record:
                trees_text = f"{revision(trees['this tree'])}, {revision(options.baseline_src)}"
                append_benchmark_row(SECTION, HEADER, f"| {today()} | `lmforge {jobs[job][0]}` ({job}) | "
                                     f"{cells['this tree']} | {cells['baseline']} | {ratio} | {trees_text} | "
                                     f"{machine()}, load {load:.1f} | {stack_text} | `python bench/startup.py "
                                     f"--baseline-src {options.baseline_src} --runs {options.runs} --jobs {job}` |")


if __name__ == "__main__":
    main()
