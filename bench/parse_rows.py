"""Row parsing: dataset rows -> checked conversations (before any template or tokenizer), this tree vs another.

Times `lmforge.data.formats.converter` over LLaMA-Factory's demo files in fresh processes, the two trees
alternating: glaive_toolcall_en_demo (sharegpt with function calls and tools, registered), alpaca_en_demo
(registered) and an OpenAI chat fine-tuning file made from glaive's rows (`tool_calls`, `tool` results, a
`tools` column; given directly). Medians with min-max of `--runs` processes, each the median of 7 passes.
Parsing is a small part of preprocessing (the template and the tokenizer dominate: bench/preprocess.py); this
keeps the data layer's own checks from growing unnoticed.

Usage: python bench/parse_rows.py --baseline-src /tmp/base/src [--runs 3] [--no-record]
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
from bench.common import ROOT, append_benchmark_row, machine, median_range, refdata, today

WORKER = """
import json, statistics, sys, time
sys.path.insert(0, sys.argv[1])
from lmforge.data.formats import converter
from lmforge.data.registry import resolve_dataset
spec = resolve_dataset(sys.argv[2], sys.argv[3])
rows = [json.loads(line) for line in open(spec.path)] if spec.path.suffix == ".jsonl" else json.load(open(spec.path))
convert = converter(spec)
passes = []
for _ in range(7):
    start = time.perf_counter()
    for index, row in enumerate(rows):
        convert(row, f"row {index}")
    passes.append(time.perf_counter() - start)
print(len(rows) / statistics.median(passes))
"""


def openai_file(folder: Path) -> Path:
    """glaive_toolcall_en_demo's rows in OpenAI's chat fine-tuning shape."""
    rows = json.loads(refdata("llamafactory_data", "glaive_toolcall_en_demo.json").read_text())
    roles = {"human": "user", "gpt": "assistant", "observation": "tool"}
    out = []
    for row in rows:
        messages = []
        for turn in row["conversations"]:
            if turn["from"] == "function_call":
                call = json.loads(turn["value"])
                messages.append({"role": "assistant", "content": None, "tool_calls": [
                    {"id": f"call_{len(messages)}", "type": "function",
                     "function": {"name": call["name"], "arguments": json.dumps(call["arguments"])}}]})
            else:
                messages.append({"role": roles[turn["from"]], "content": turn["value"]})
        out.append({"messages": messages, "tools": json.loads(row["tools"])})
    path = folder / "glaive_openai.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in out))
    return path


def rate(src: str, name: str, folder: str) -> float | None:
    """Rows per second, or None where that tree refuses the rows."""
    out = subprocess.run([sys.executable, "-c", WORKER, src, name, folder], capture_output=True, text=True,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return float(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline-src", required=True, help="the other tree's src folder")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-record", action="store_true", help="print only; do not add rows to BENCHMARKS.md")
    options = parser.parse_args()
    demo = str(refdata("llamafactory_data"))
    with tempfile.TemporaryDirectory() as folder:
        jobs = {"glaive_toolcall_en_demo": ("glaive_toolcall_en_demo", demo),
                "alpaca_en_demo": ("alpaca_en_demo", demo),
                "glaive as OpenAI rows (direct file)": (str(openai_file(Path(folder))), folder)}
        load = os.getloadavg()[0]
        print(f"{'rows':40} {'this tree (rows/s)':>22} {'baseline (rows/s)':>22} {'ratio':>7}")
        for label, (name, where) in jobs.items():
            here, there = [], []
            for _ in range(options.runs):
                here.append(rate(str(ROOT / "src"), name, where))
                there.append(rate(options.baseline_src, name, where))
            if None in here:
                sys.exit(f"this tree refuses the rows of {label}")
            base = "refuses the rows" if None in there else median_range(there)
            ratio = "-" if None in there else f"{statistics.median(here) / statistics.median(there):.2f}x"
            print(f"{label:40} {median_range(here):>22} {base:>22} {ratio:>7}")
            if not options.no_record:
                append_benchmark_row(
                    "Row parsing: this tree vs a baseline tree (same run)",
                    "| date | rows | this tree (rows/s) | baseline (rows/s) | ratio | machine | command |\n"
                    "|---|---|---|---|---|---|---|",
                    f"| {today()} | {label} | {median_range(here)} | {base} | {ratio} | "
                    f"{machine()}, load {load:.1f} | `python bench/parse_rows.py --baseline-src "
                    f"{options.baseline_src} --runs {options.runs}` |")


if __name__ == "__main__":
    main()
