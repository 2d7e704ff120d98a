"""Tiny random-init models with a byte-level BPE tokenizer trained on the bundled corpus.

Everything is deterministic (fixed seed, fixed corpus), so tests and examples see the same model on
every machine. Models are always written to a folder and used through `from_pretrained`.
"""

from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from lmforge.testing.families import TINY_FAMILIES

# Special tokens of the template families the tiny models are used with (ChatML, Llama 3).
SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>",
    "<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
    "<|eom_id|>",
]
TINY_VOCAB_SIZE = 1024


def corpus_lines() -> list[str]:
    text = resources.files("lmforge.testing").joinpath("corpus.txt").read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip()]


@cache
def _trained_tokenizer_json() -> str:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=TINY_VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus_lines(), trainer)
    return tokenizer.to_str()


def build_tiny_tokenizer(chat_template: str | None = None) -> Any:
    """A fast tokenizer (bos `<|begin_of_text|>`, eos `<|im_end|>`, pad `<|endoftext|>`)."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_trained_tokenizer_json()),
        bos_token="<|begin_of_text|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
    )
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    return tokenizer


def family_tokenizer(special_tokens: list[str], bos_token: str, eos_token: str) -> Any:
    """The tiny tokenizer plus a family's special tokens, with that family's bos and eos.

    Token-id parity tests use it where no real tokenizer of the family is at hand: encoding a
    conversation piece by piece must give the ids of encoding the whole rendering at once.
    """
    tokenizer = build_tiny_tokenizer()
    extra = [t for t in dict.fromkeys([bos_token, eos_token, *special_tokens]) if t and t not in tokenizer.get_vocab()]
    tokenizer.add_special_tokens({"additional_special_tokens": extra}, replace_extra_special_tokens=False)
    tokenizer.bos_token, tokenizer.eos_token = bos_token or None, eos_token or None
    return tokenizer


def build_tiny_model(out_dir: str | Path, family: str = "llama", chat_template: str | None = None) -> Path:
    """Write a tiny random model of `family` (see `TINY_FAMILIES`) plus its tokenizer to `out_dir`."""
    import torch
    import transformers

    out_dir = Path(out_dir)
    tokenizer = build_tiny_tokenizer(chat_template)
    config, auto_class = TINY_FAMILIES[family](tokenizer)
    torch.manual_seed(0)
    model = getattr(transformers, auto_class).from_config(config, dtype=torch.float32)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir
