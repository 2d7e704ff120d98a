"""The suite's models and data, built on the machine: nothing is downloaded.

Models are random-weight Qwen2 decoders with the shapes of Qwen2.5-0.5B and -1.5B (their published
config.json: same layers, widths, heads and 151,936-token vocabulary), written with `save_pretrained`
in bf16 beside lmforge's tiny byte-level tokenizer (`lmforge.testing`): only the first ~1,000 rows of
the vocabulary ever occur, which changes no matrix shape. `tiny` is the CPU dry run's model.
The data is an alpaca-format file of generated instructions (10-60 words) and answers (20-450), so that
rows packed to the cutoff hold several sequences of mixed lengths.
"""

import json
import random
from pathlib import Path
from typing import Any

SHAPES: dict[str, dict[str, int]] = {
    "qwen2.5-0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                         num_key_value_heads=2, vocab_size=151936),
    "qwen2.5-1.5b": dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                         num_key_value_heads=2, vocab_size=151936),
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=2048),
}
PUBLISHED_PARAMS = {"qwen2.5-0.5b": 494_032_768, "qwen2.5-1.5b": 1_543_714_304}  # Qwen's model cards
DATASET = "bench_sft"
TEMPLATE = "chatml"  # the tiny tokenizer carries ChatML's special tokens


def model_config(name: str, tokenizer: Any) -> Any:
    from transformers import Qwen2Config

    return Qwen2Config(**SHAPES[name], tie_word_embeddings=True, max_position_embeddings=4096,
                       bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                       pad_token_id=tokenizer.pad_token_id)


def parameter_count(config: Any) -> int:
    """Parameters of the model the config describes, counted on the meta device (no memory)."""
    import torch
    from transformers import Qwen2ForCausalLM

    with torch.device("meta"):
        return sum(p.numel() for p in Qwen2ForCausalLM(config).parameters())


def write_model(name: str, folder: Path, *, weights: bool = True) -> Path:
    """`folder` with config.json and the tokenizer, and (with `weights`) random bf16 weights, built on the
    GPU when there is one (seconds instead of a minute of CPU initialisation for 1.5B parameters)."""
    import torch
    from transformers import Qwen2ForCausalLM

    from lmforge.testing.tiny import build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer()
    config = model_config(name, tokenizer)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(folder)
    if not weights:
        config.save_pretrained(folder)
        return folder
    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device):
        model = Qwen2ForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(folder)
    return folder


def _words(rng: random.Random, vocabulary: list[str], count: int) -> str:
    return " ".join(rng.choice(vocabulary) for _ in range(count))


def write_dataset(folder: Path, rows: int, *, seed: int = 0, scale: float = 1.0) -> Path:
    """An alpaca-format dataset registered as `bench_sft` in `folder/dataset_info.json`; `scale` shrinks
    every length (the dry run's cutoff is 256)."""
    from lmforge.testing.tiny import corpus_lines

    rng = random.Random(seed)
    vocabulary = sorted({word for line in corpus_lines() for word in line.split()})
    records = []
    for _ in range(rows):
        instruction, answer = rng.randint(10, 60), rng.randint(20, 450)
        records.append({"instruction": _words(rng, vocabulary, max(1, round(scale * instruction))), "input": "",
                        "output": _words(rng, vocabulary, max(1, round(scale * answer)))})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{DATASET}.json").write_text(json.dumps(records))
    (folder / "dataset_info.json").write_text(json.dumps({DATASET: {"file_name": f"{DATASET}.json"}}))
    return folder


def tokenized(data_folder: Path, tokenizer: Any, cutoff: int, limit: int | None = None) -> dict[str, list[Any]]:
    """The first `limit` examples' columns as lmforge tokenizes them for training (template, truncation)."""
    from lmforge.data.conversation import Conversation
    from lmforge.data.processors.sft import tokenize_sft
    from lmforge.data.templates import Message, get_template

    records = json.loads((data_folder / f"{DATASET}.json").read_text())[:limit]
    conversations = [Conversation([Message("user", r["instruction"]), Message("assistant", r["output"])], None,
                                  f"row {i}") for i, r in enumerate(records)]
    return tokenize_sft(conversations, get_template(TEMPLATE), tokenizer, cutoff_len=cutoff)[0]
