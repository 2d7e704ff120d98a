"""Cost of constrained decoding (`response_format` json, xgrammar) per generated token, against free text.

    HF_HUB_OFFLINE=1 python bench/structured_output.py [--prompts 4] [--max-new-tokens 32]

One engine, the same prompts, greedy, one request at a time, in three modes: free text (the baseline),
`json_object` and a JSON schema. The schema's compilation (once per schema and tokenizer, cached) is
timed on its own before the runs.
"""

import argparse
import json
import time
from importlib.metadata import version

import torch
import transformers

from bench.common import machine
from lmforge.config import build_config
from lmforge.data.templates.template import Message
from lmforge.infer.factory import create_engine

SCHEMA = json.dumps({"type": "object", "properties": {
    "name": {"type": "string", "maxLength": 30}, "open": {"type": "boolean"},
    "rating": {"type": "integer", "minimum": 1, "maximum": 5}}, "required": ["name", "open", "rating"],
    "additionalProperties": False})
THINGS = ["coffee shop", "bookstore", "bakery", "bicycle repair shop", "tea house", "record store"]


def run(engine, count: int, schema: str | None) -> tuple[float, int, int]:
    """Seconds, generated tokens and answers that parse as JSON."""
    tokens = parsed = 0
    start = time.perf_counter()
    for i in range(count):
        ask = [Message("user", f"Invent a {THINGS[i % len(THINGS)]}. Answer in JSON with name, open and rating.")]
        [answer] = engine.candidates(ask, options=engine.options(json_schema=schema))
        tokens += len(answer.token_ids)
        try:
            json.loads(answer.text)
            parsed += 1
        except json.JSONDecodeError:
            pass
    return time.perf_counter() - start, tokens, parsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="builtin:smollm2-135m-instruct")
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    args = parser.parse_args()
    engine = create_engine(build_config({"model_name_or_path": args.model, "do_sample": False,
                                         "max_new_tokens": args.max_new_tokens}))
    run(engine, 1, None)  # warm-up
    start = time.perf_counter()
    engine.check_options(engine.options(json_schema=SCHEMA))  # compiles the schema (then cached)
    compile_s = time.perf_counter() - start
    modes = [("free text (baseline)", None), ("json_object", json.dumps({"type": "object"})),
             ("json_schema", SCHEMA)]
    results = [(name, *run(engine, args.prompts, schema)) for name, schema in modes]
    engine.close()

    print(f"model {args.model}, {args.prompts} prompts one at a time, max_new_tokens {args.max_new_tokens}, greedy")
    print(f"{machine()}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"transformers {transformers.__version__}, xgrammar {version('xgrammar')}")
    print(f"schema compilation (once per schema): {compile_s:.2f} s")
    print("| mode | wall s | generated tokens | tokens/s | answers that parse | tokens/s vs free text |")
    print("|---|---|---|---|---|---|")
    base = results[0][2] / results[0][1]
    for name, seconds, tokens, parsed in results:
        rate = tokens / seconds
        print(f"| {name} | {seconds:.1f} | {tokens} | {rate:.1f} | {parsed}/{args.prompts} | {rate / base:.2f}x |")


if __name__ == "__main__":
    main()
