"""The quickstart's training phase: this tree vs lmforge from another source tree (issue #21's "2x faster
than today with the same final answers", today being main before issue #21's work, 150152d).

The job is `make quickstart`'s own: its `lmforge train` config (read from the Makefile's quickstart target:
examples/quickstart/train.yaml, the builtin SmolLM2-135M-Instruct, an identity LoRA SFT) with only
`output_dir` moved to a temporary folder and `dataset_dir` made absolute (this tree's examples/data, so both
trees train on the same rows). After each training run, that run's adapter answers the Makefile's chat
prompts greedily through the same tree's `lmforge chat <chat config> --prompt ...`, one fresh process per
prompt, as `make quickstart` does. Trees alternate run by run (baseline first); each run is a fresh CLI
process. Reported per tree: train_runtime (train_summary.json's `train_runtime_s`, the trainer's own clock:
model loading, preprocessing and the chats are outside it), peak RSS of the training process (wait4), the
final logged loss, and whether both trees' answers are the same.

If the baseline tree's config loader refuses the config (a key that did not exist then), the script stops
before any run and names the problem: give that tree its own YAML with `--baseline-config FILE` (its
output_dir and dataset_dir are replaced the same way).

`--max-steps N` stops each training after N steps: a quick check that the script works end to end on a busy
machine (the answers are then not the identity answers), never recorded.

Usage:
    git worktree add --detach /tmp/qs-before 150152d
    python bench/quickstart.py --baseline-src /tmp/qs-before/src [--runs 3] [--record] [--max-steps N]
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import ROOT, append_benchmark_row, machine, median_range, today, versions
from bench.train_throughput import run

SECTION = "Quickstart training phase: this tree vs main before issue #21"
TABLE_HEADER = ("| date | this tree / baseline | train_runtime s (this / baseline) | speed-up | peak RSS MiB (this / "
                "baseline) | final loss (this / baseline) | same answers | machine, load | versions | command |\n"
                "|---|---|---|---|---|---|---|---|---|---|")


def quickstart_commands() -> tuple[Path, Path, list[str]]:
    """The train config, the (adapter) chat config and the distinct chat prompts of the Makefile's quickstart."""
    makefile = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    target = re.search(r"^quickstart:.*\n((?:\t.*\n?)+)", makefile, re.MULTILINE)
    if target is None:
        sys.exit("the Makefile has no quickstart target")
    recipe = target.group(1)
    train = re.search(r"lmforge train (\S+)", recipe)
    chat = re.search(r"lmforge chat (\S+)", recipe)
    prompts = list(dict.fromkeys(re.findall(r'--prompt "([^"]+)"', recipe)))
    if train is None or chat is None or not prompts:
        sys.exit("the Makefile's quickstart target no longer trains and chats with --prompt: update this script")
    return ROOT / train.group(1), ROOT / chat.group(1), prompts


def training_config(path: Path, out: Path, max_steps: int | None = None) -> dict:
    config = yaml.safe_load(path.read_text())
    config["output_dir"] = str(out)
    if max_steps is not None:
        config["max_steps"] = max_steps
    config["dataset_dir"] = str((ROOT / config.get("dataset_dir", "data")).resolve())
    return config


def check_config(src: str, config: dict, source: Path) -> None:
    """Stop before any run when the tree at `src` cannot read `config` (keys it does not know, ranges)."""
    code = "import json, sys; from lmforge.config import build_config; build_config(json.loads(sys.argv[1]))"
    checked = subprocess.run([sys.executable, "-c", code, json.dumps(config)], capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": src})
    if checked.returncode != 0:
        sys.exit(f"lmforge from {src} cannot read {source}:\n{checked.stderr[-2000:]}\n"
                 "give that tree a config it reads with --baseline-config FILE")


def answers(src: str, chat_config: Path, adapter: Path, prompts: list[str], env: dict[str, str]) -> list[str]:
    """The adapter's greedy answer to each prompt, from `src`'s `lmforge chat --prompt` (one process each)."""
    texts = []
    for prompt in prompts:
        command = [sys.executable, "-m", "lmforge.cli.main", "chat", str(chat_config),
                   f"adapter_name_or_path={adapter}", "--prompt", prompt]
        # a wide console: rich would otherwise wrap the answer at 80 columns
        done = subprocess.run(command, cwd=ROOT, env={**env, "PYTHONPATH": src, "COLUMNS": "10000"},
                              capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"lmforge chat from {src} failed:\n{(done.stdout + done.stderr)[-4000:]}")
        texts.append(done.stdout.strip())
    return texts


def commit(src: Path) -> str:
    """The checkout's commit, marked when its source (src/) differs from it; the benchmark's own edits
    (BENCHMARKS.md, bench/) do not count."""
    found = subprocess.run(["git", "-C", str(src), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "--untracked-files=no", "--", "."],
                           capture_output=True, text=True).stdout.strip()
    return (found.stdout.strip() or "?") + ("+changes" if dirty else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline-src", type=Path, required=True,
                        help="lmforge's src folder of the baseline checkout (e.g. /tmp/qs-before/src)")
    parser.add_argument("--baseline-config", type=Path, default=None,
                        help="the baseline's train YAML when it cannot read the quickstart's (default: the same)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--record", action="store_true", help=f"append a row to BENCHMARKS.md's '{SECTION}'")
    parser.add_argument("--max-steps", type=int, default=None,
                        help="smoke check of the script only: stop training after this many steps (not recorded)")
    options = parser.parse_args()
    if options.record and options.max_steps is not None:
        sys.exit("--max-steps shortens the quickstart's job: such a run is not recorded")

    baseline = str(options.baseline_src.resolve())
    if not (options.baseline_src / "lmforge" / "__init__.py").is_file():
        sys.exit(f"--baseline-src {baseline}: no lmforge package there (give the checkout's src folder)")
    ours = str(ROOT / "src")
    train_yaml, chat_yaml, prompts = quickstart_commands()
    config_files = {ours: train_yaml, baseline: options.baseline_config or train_yaml}
    check_config(baseline, training_config(config_files[baseline], Path(tempfile.gettempdir())),
                 config_files[baseline])
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}  # as the Makefile exports
    commits = {ours: commit(ROOT / "src"), baseline: commit(options.baseline_src)}
    load_before = os.getloadavg()
    shortened = f" stopped after {options.max_steps} steps (a smoke check, not the quickstart's figure)" \
        if options.max_steps is not None else ""
    print(f"make quickstart's training: {train_yaml.relative_to(ROOT)}{shortened}; chat prompts {prompts}; "
          f"this tree {commits[ours]} vs {baseline} ({commits[baseline]}); {machine()}; "
          f"load {load_before[0]:.1f} / {load_before[1]:.1f} / {load_before[2]:.1f}")
    results: dict[str, list[dict]] = {baseline: [], ours: []}
    for number in range(1, options.runs + 1):
        for src in (baseline, ours):
            out = Path(tempfile.mkdtemp(prefix="quickstart-"))
            result = run(src, "", training_config(config_files[src], out, options.max_steps), env)
            result["answers"] = answers(src, chat_yaml, out, prompts, env)
            results[src].append(result)
            name = "this tree" if src == ours else "baseline"
            print(f"run {number} {name:<9} train_runtime {result['runtime']:.1f} s, peak RSS "
                  f"{result['peak_rss_mib']:.0f} MiB, final loss {result['final_loss']:.4f}, "
                  f"answers {result['answers']}, load {os.getloadavg()[0]:.1f}", flush=True)
    load_after = os.getloadavg()

    runtime = {src: [result["runtime"] for result in runs] for src, runs in results.items()}
    rss = {src: statistics.median(result["peak_rss_mib"] for result in runs) for src, runs in results.items()}
    loss = {src: statistics.median(result["final_loss"] for result in runs) for src, runs in results.items()}
    speedup = statistics.median(runtime[baseline]) / statistics.median(runtime[ours])
    distinct = {src: {tuple(result["answers"]) for result in runs} for src, runs in results.items()}
    same = distinct[ours] == distinct[baseline] and len(distinct[ours]) == 1
    print(f"\n{'':<22} {'this tree':>24} {'baseline':>24}")
    print(f"{'train_runtime s':<22} {median_range(runtime[ours]):>24} {median_range(runtime[baseline]):>24}")
    print(f"{'peak RSS MiB':<22} {rss[ours]:>24.0f} {rss[baseline]:>24.0f}")
    print(f"{'final loss':<22} {loss[ours]:>24.4f} {loss[baseline]:>24.4f}")
    print(f"speed-up (baseline / this tree train_runtime): {speedup:.2f}x; same answers: {'yes' if same else 'NO'}")
    for index, prompt in enumerate(prompts):
        for src, label in ((ours, "this tree"), (baseline, "baseline")):
            texts = sorted({answer[index] for answer in distinct[src]})
            print(f"  {prompt!r} {label}: {' | '.join(texts)}")
    load_text = (f"load {load_before[0]:.1f} -> {load_after[0]:.1f} (5-min {load_before[1]:.1f} -> "
                 f"{load_after[1]:.1f})")
    print(f"{machine()}; {load_text}")
    if not options.record:
        return
    ours_v = versions(sys.executable, ["torch", "transformers", "peft"])
    answer_text = "yes" if same else "no: " + "; ".join(
        f"{label} {sorted(distinct[src])}" for src, label in ((ours, "this tree"), (baseline, "baseline")))
    answer_text = answer_text.replace("|", "\\|").replace("\n", " ")  # one table cell
    append_benchmark_row(
        SECTION, TABLE_HEADER,
        f"| {today()} | {commits[ours]} / {commits[baseline]} | {median_range(runtime[ours])} / "
        f"{median_range(runtime[baseline])} | {speedup:.2f}x | {rss[ours]:.0f} / {rss[baseline]:.0f} | "
        f"{loss[ours]:.4f} / {loss[baseline]:.4f} | {answer_text} | {machine()}, {load_text} | torch "
        f"{ours_v['torch']}, transformers {ours_v['transformers']}, peft {ours_v['peft']} | "
        f"`python bench/quickstart.py --baseline-src {options.baseline_src} --runs {options.runs}"
        f"{' --baseline-config ' + str(options.baseline_config) if options.baseline_config else ''} --record` |")


if __name__ == "__main__":
    main()
