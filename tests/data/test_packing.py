import random

import pytest
import torch
from transformers import AutoModelForCausalLM

from lmforge.data.collator import SftCollator
from lmforge.data.conversation import Conversation
from lmforge.data.packing import pack_examples, pack_lengths
from lmforge.data.processors.sft import tokenize_sft
from lmforge.data.templates import Message, get_template


@pytest.mark.parametrize("strategy", ["ffd", "bfd"])
def test_bins_respect_capacity_and_keep_every_item(strategy):
    rng = random.Random(0)
    lengths = [rng.randint(1, 100) for _ in range(300)]
    bins = pack_lengths(lengths, 128, strategy)
    assert sorted(i for b in bins for i in b) == list(range(300))
    assert all(sum(lengths[i] for i in b) <= 128 for b in bins)
    assert len(bins) <= 1.25 * sum(lengths) / 128 + 1  # decreasing heuristics are near-optimal here


def test_best_fit_prefers_the_fullest_bin():
    # 6 goes into the bin with 3 free rather than the empty-ish one: best fit, not first fit
    assert pack_lengths([7, 3, 2], 10, "bfd") == [[0, 1], [2]]
    assert pack_lengths([6, 5, 4, 3], 10, "ffd") == [[0, 2], [1, 3]]


def test_packed_rows_restart_positions_and_keep_labels():
    columns = {"input_ids": [[1, 2, 3], [4, 5], [6]], "labels": [[-100, 2, 3], [-100, 5], [6]]}
    packed, report = pack_examples(columns, capacity=4)
    rows = list(zip(packed["input_ids"], packed["labels"], packed["position_ids"], strict=True))
    assert ([1, 2, 3, 6], [-100, 2, 3, 6], [0, 1, 2, 0]) in rows
    assert ([4, 5], [-100, 5], [0, 1]) in rows
    assert report.rows == 2 and report.efficiency == pytest.approx(6 / 8)
    with pytest.raises(ValueError, match="exceeds the packing capacity"):
        pack_examples(columns, capacity=2)


def _examples(tokenizer, count=6):
    conversations = [Conversation([Message("user", f"question number {i} " * (1 + i % 3)),
                                   Message("assistant", f"answer {i} " * (2 + i % 4))], None, f"row {i}")
                     for i in range(count)]
    columns, _ = tokenize_sft(conversations, get_template("chatml"), tokenizer, cutoff_len=512)
    return columns


def _loss(model, batch):
    """The forward pass LmforgeTrainer runs: packed batches without a KV cache (see its compute_loss)."""
    batch = {k: v for k, v in batch.items() if not k.startswith("num_")}
    return model(**batch, use_cache="attention_mask" in batch).loss


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_loss_equals_unpacked_loss(tiny_llama_path, tiny_tokenizer, attn):
    """Contamination-free packing: same tokens, same loss, whatever shares a row."""
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_path, dtype=torch.float32, attn_implementation=attn)
    columns = _examples(tiny_tokenizer)
    unpacked = SftCollator(pad_token_id=tiny_tokenizer.pad_token_id)(
        [{"input_ids": i, "labels": lab} for i, lab in zip(columns["input_ids"], columns["labels"], strict=True)])
    packed_columns, report = pack_examples(columns, capacity=256)
    assert report.rows < len(columns["input_ids"])  # several examples really share rows
    features = [dict(zip(packed_columns, values, strict=True)) for values in zip(*packed_columns.values(), strict=True)]
    packed = SftCollator(pad_token_id=tiny_tokenizer.pad_token_id)(features)
    assert "attention_mask" not in packed
    with torch.no_grad():
        assert _loss(model, packed).item() == pytest.approx(_loss(model, unpacked).item(), rel=1e-5)
        # A naive concatenation (positions not restarted, attention crossing examples) differs.
        naive = {**packed, "position_ids": torch.arange(packed["input_ids"].shape[1]).expand_as(packed["input_ids"])}
        assert _loss(model, naive).item() != pytest.approx(_loss(model, unpacked).item(), rel=1e-5)
