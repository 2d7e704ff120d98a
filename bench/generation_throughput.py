"""Throughput of the transformers backend: concurrent prompts batched vs answered one at a time.

    HF_HUB_OFFLINE=1 python bench/generation_throughput.py [--prompts 32] [--max-new-tokens 32]

Both runs use the same engine, prompts and greedy decoding; "one at a time" sends the next prompt
when the previous answer is back (LLaMA-Factory's HF engine serves prompts this way), "batched"
sends all prompts at once from concurrent threads and lets the worker group them.
"""

import argparse
import platform
import threading
import time

import torch
import transformers

from lmforge.config import build_config
from lmforge.data.templates.template import Message
from lmforge.infer.factory import create_engine

TOPICS = ["the sea", "a red bicycle", "winter mornings", "bread", "the moon", "a quiet library", "rain", "coffee"]


def prompts(count: int) -> list[list[Message]]:
    return [[Message("user", f"Write one sentence about {TOPICS[i % len(TOPICS)]} (#{i}).")] for i in range(count)]


def run(engine, conversations, concurrent: bool) -> tuple[float, int]:
    answers: list = [None] * len(conversations)

    def ask(i: int) -> None:
        answers[i] = engine.candidates(conversations[i])[0]

    start = time.perf_counter()
    if concurrent:
        threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(conversations))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    else:
        for i in range(len(conversations)):
            ask(i)
    return time.perf_counter() - start, sum(len(answer.token_ids) for answer in answers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="builtin:smollm2-135m-instruct")
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    cfg = build_config({"model_name_or_path": args.model, "do_sample": False, "max_new_tokens": args.max_new_tokens,
                        "infer_batch_size": args.batch_size})
    engine = create_engine(cfg)
    conversations = prompts(args.prompts)
    run(engine, conversations[:2], concurrent=False)  # warm-up
    one_s, one_tokens = run(engine, conversations, concurrent=False)
    engine.worker.batch_sizes.clear()
    batched_s, batched_tokens = run(engine, conversations, concurrent=True)
    sizes = list(engine.worker.batch_sizes)
    engine.close()

    print(f"model {args.model}, {args.prompts} prompts, max_new_tokens {args.max_new_tokens}, greedy")
    print(f"python {platform.python_version()}, torch {torch.__version__}, transformers {transformers.__version__}, "
          f"{torch.get_num_threads()} torch threads, {platform.processor() or platform.machine()}")
    print("| mode | wall s | generated tokens | tokens/s | requests/s |")
    print("|---|---|---|---|---|")
    for name, seconds, tokens in (("one at a time", one_s, one_tokens), ("batched", batched_s, batched_tokens)):
        print(f"| {name} | {seconds:.1f} | {tokens} | {tokens / seconds:.1f} | {args.prompts / seconds:.2f} |")
    print(f"batched / one at a time (tokens/s): {(batched_tokens / batched_s) / (one_tokens / one_s):.2f}x; "
          f"decoding calls in the batched run: {sizes}")


if __name__ == "__main__":
    main()
