"""Generation throughput for concurrent prompts: lmforge's transformers engine vs LLaMA-Factory's.

The job: the builtin SmolLM2-135M-Instruct (float32 safetensors folder), `template: smollm2`, 32
different prompts sent at once, greedy, max_new_tokens 32. LLaMA-Factory (its own venv, see
bench/common.py) serves them through `ChatModel.achat` with its `huggingface` engine, as its API
server does for concurrent requests (MAX_CONCURRENT left at its default); lmforge through
`Engine.candidates` from 32 threads, as its API server does. Each run is a fresh process timed
after the model is loaded; the frameworks alternate run by run; medians with min-max.

Usage: python bench/generation_vs_llamafactory.py [--runs 3] [--prompts 32] [--max-new-tokens 32]
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
from bench.common import ROOT, append_benchmark_row, llamafactory_python, machine, median_range, today, versions

TOPICS = ["the sea", "a red bicycle", "winter mornings", "bread", "the moon", "a quiet library", "rain", "coffee"]

LMFORGE_WORKER = """
import json, sys, threading, time
from lmforge.config import build_config
from lmforge.data.templates.template import Message
from lmforge.infer.factory import create_engine
model, prompts, max_new = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
cfg = build_config({"model_name_or_path": model, "template": "smollm2", "do_sample": False,
                    "max_new_tokens": max_new, "infer_dtype": "float32", "infer_batch_size": len(prompts)})
engine = create_engine(cfg)
engine.candidates([Message("user", "Hello")])  # warm-up, as the other side's
answers = [None] * len(prompts)
def ask(i):
    answers[i] = engine.candidates([Message("user", prompts[i])])[0]
start = time.perf_counter()
threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(prompts))]
for thread in threads: thread.start()
for thread in threads: thread.join()
seconds = time.perf_counter() - start
engine.close()
print(json.dumps({"seconds": seconds, "tokens": sum(len(a.token_ids) for a in answers)}))
"""

LLAMAFACTORY_WORKER = """
import asyncio, json, sys, time
from llamafactory.chat import ChatModel
model, prompts, max_new = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
chat = ChatModel(dict(model_name_or_path=model, template="smollm2", infer_backend="huggingface",
                      do_sample=False, max_new_tokens=max_new, infer_dtype="float32"))
chat.chat([{"role": "user", "content": "Hello"}])  # warm-up
async def ask_all():
    return await asyncio.gather(*(chat.achat([{"role": "user", "content": p}]) for p in prompts))
start = time.perf_counter()
answers = asyncio.run_coroutine_threadsafe(ask_all(), chat._loop).result()
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "tokens": sum(a[0].response_length for a in answers)}))
"""


def builtin_smollm2() -> str:
    from lmforge.hub.resolve import resolve_model_path

    return resolve_model_path("builtin:smollm2-135m-instruct")


def run(python: str, code: str, args: list[str], env: dict[str, str]) -> dict:
    result = subprocess.run([python, "-c", code, *args], capture_output=True, text=True, env=env, cwd=ROOT)
    if result.returncode != 0:
        sys.exit(f"{python} failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--no-record", action="store_true")
    options = parser.parse_args()

    lf_python = str(llamafactory_python())
    model = builtin_smollm2()
    prompts = json.dumps([f"Write one sentence about {TOPICS[i % len(TOPICS)]} (#{i})."
                          for i in range(options.prompts)])
    args = [model, prompts, str(options.max_new_tokens)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "DISABLE_VERSION_CHECK": "1",
           "LMFORGE_HOME": os.environ.get("LMFORGE_HOME", tempfile.mkdtemp(prefix="lmforge-bench-"))}
    speed: dict[str, list[float]] = {"lmforge": [], "llamafactory": []}
    for _ in range(options.runs):
        for name, python, code in (("llamafactory", lf_python, LLAMAFACTORY_WORKER),
                                   ("lmforge", sys.executable, LMFORGE_WORKER)):
            result = run(python, code, args, env)
            speed[name].append(result["tokens"] / result["seconds"])
    ratio = statistics.median(speed["lmforge"]) / statistics.median(speed["llamafactory"])
    print(f"SmolLM2-135M-Instruct fp32, {options.prompts} concurrent prompts, greedy, "
          f"max_new_tokens {options.max_new_tokens}")
    print(f"lmforge {median_range(speed['lmforge'])} tokens/s, LLaMA-Factory {median_range(speed['llamafactory'])} "
          f"tokens/s, ratio {ratio:.2f}x")
    if options.no_record:
        return
    ours_v = versions(sys.executable, ["transformers", "torch"])
    lf_v = versions(lf_python, ["llamafactory", "transformers"])
    append_benchmark_row(
        "Generation throughput, concurrent prompts: lmforge vs LLaMA-Factory",
        "| date | prompts | lmforge tokens/s | LLaMA-Factory tokens/s | ratio | machine | versions | command |\n"
        "|---|---|---|---|---|---|---|---|",
        f"| {today()} | {options.prompts} x {options.max_new_tokens} new tokens | {median_range(speed['lmforge'])} | "
        f"{median_range(speed['llamafactory'])} | {ratio:.2f}x | {machine()} | lmforge: torch {ours_v['torch']}, "
        f"transformers {ours_v['transformers']}; LLaMA-Factory {lf_v['llamafactory']} (transformers "
        f"{lf_v['transformers']}) | `python bench/generation_vs_llamafactory.py --runs {options.runs}` |")


if __name__ == "__main__":
    main()
