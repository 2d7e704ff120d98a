"""Invariants of the training path, checked through LmforgeTrainer itself."""

import pytest
import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, TrainingArguments

from lmforge.data.collator import SftCollator
from lmforge.data.conversation import Conversation
from lmforge.data.packing import pack_examples
from lmforge.data.processors.sft import tokenize_sft
from lmforge.data.templates import Message, get_template
from lmforge.train.trainer import LmforgeTrainer


def sft_columns(tokenizer, count):
    conversations = [Conversation([Message("user", f"tell me about item {i} " * (1 + i % 3)),
                                   Message("assistant", f"item {i} is fine " * (1 + i % 4))], None, f"row {i}")
                     for i in range(count)]
    return tokenize_sft(conversations, get_template("chatml"), tokenizer, cutoff_len=256)[0]


def rows(columns):
    return [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def make_trainer(model, tmp_path, tokenizer, dataset=None, padding_free=False, **args):
    arguments = TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True, seed=7,
                                  dataloader_pin_memory=False, save_strategy="no", **args)
    return LmforgeTrainer(model=model, args=arguments, train_dataset=dataset,
                          data_collator=SftCollator(pad_token_id=tokenizer.pad_token_id, padding_free=padding_free))


def test_packed_and_unpacked_batches_give_the_same_training_loss(tiny_llama_path, tiny_tokenizer, tmp_path):
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_path, dtype=torch.float32)
    assert model.config.use_cache  # the default that would let packed examples attend to each other
    trainer = make_trainer(model, tmp_path, tiny_tokenizer)
    columns = sft_columns(tiny_tokenizer, 8)
    collate = SftCollator(pad_token_id=tiny_tokenizer.pad_token_id)
    packed_columns, report = pack_examples(columns, capacity=256)
    assert report.rows < 8
    model.train()
    with torch.no_grad():
        unpacked_loss = trainer.compute_loss(model, collate(rows(columns)))
        unpacked_pairs = trainer.token_counts.attention_pairs
        packed_loss = trainer.compute_loss(model, collate(rows(packed_columns)))
    # attention FLOPs: the same sequences, whether padded one a row or packed (padding tails left out)
    assert unpacked_pairs == sum(len(ids) ** 2 for ids in columns["input_ids"])
    assert trainer.token_counts.attention_pairs == 2 * unpacked_pairs
    assert packed_loss.item() == pytest.approx(unpacked_loss.item(), rel=1e-5)
    assert trainer.token_counts.samples == 16  # 8 examples counted twice, not 8 + packed rows
    assert trainer.token_counts.non_pad_tokens == 2 * sum(map(len, columns["input_ids"]))


@pytest.mark.parametrize("packing", [False, True], ids=["unpacked", "packed"])
def test_gradient_accumulation_equals_a_bigger_batch(tiny_llama_path, tiny_tokenizer, tmp_path, packing):
    """One optimizer step of 4 x batch 1 (accumulated) equals one step of batch 4."""
    columns = sft_columns(tiny_tokenizer, 4)
    if packing:
        columns, _ = pack_examples(columns, capacity=64)  # each example alone in a row here
        assert len(columns["input_ids"]) == 4
    dataset = Dataset.from_dict(columns)
    results = []
    for batch, accumulation in [(4, 1), (1, 4)]:
        model = AutoModelForCausalLM.from_pretrained(tiny_llama_path, dtype=torch.float32)
        trainer = make_trainer(model, tmp_path / f"{batch}x{accumulation}", tiny_tokenizer, dataset,
                               per_device_train_batch_size=batch, gradient_accumulation_steps=accumulation,
                               max_steps=1, optim="sgd", learning_rate=1.0, lr_scheduler_type="constant")
        trainer.train()
        results.append({name: p.detach().clone() for name, p in model.named_parameters()})
    base = AutoModelForCausalLM.from_pretrained(tiny_llama_path, dtype=torch.float32)
    moved = max((results[0][n] - p).abs().max().item() for n, p in base.named_parameters())
    assert moved > 1e-3  # the step really changed the weights
    for name in results[0]:
        torch.testing.assert_close(results[0][name], results[1][name], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("autocast", [False, True], ids=["fp32", "bf16-autocast"])
def test_a_padding_free_batch_trains_as_the_padded_batch(tiny_llama_path, tiny_tokenizer, tmp_path, autocast):
    """One step of batch 6 with the batch's examples in one row (`padding_free`) moves the weights as the padded
    batch does, and counts the same examples and real tokens with less padding computed."""
    columns = sft_columns(tiny_tokenizer, 6)
    assert len(set(map(len, columns["input_ids"]))) > 1  # the padded batch really pads
    dataset = Dataset.from_dict(columns)
    results, counts = [], []
    for padding_free in (False, True):
        model = AutoModelForCausalLM.from_pretrained(tiny_llama_path, dtype=torch.float32)
        trainer = make_trainer(model, tmp_path / str(padding_free), tiny_tokenizer, dataset, padding_free=padding_free,
                               per_device_train_batch_size=6, max_steps=1, optim="sgd", learning_rate=1.0,
                               lr_scheduler_type="constant", bf16=autocast, logging_steps=1)
        trainer.train()
        results.append({name: p.detach().clone() for name, p in model.named_parameters()})
        results[-1]["loss"] = torch.tensor(trainer.state.log_history[0]["loss"])
        counts.append(trainer.token_counts)
    base = dict(AutoModelForCausalLM.from_pretrained(tiny_llama_path, dtype=torch.float32).named_parameters())
    for name, padded in results[0].items():  # the updates, not the weights, which they barely change
        step = padded - base[name].detach() if name in base else padded
        free_step = results[1][name] - base[name].detach() if name in base else results[1][name]
        if autocast:
            assert (free_step - step).norm() <= 0.03 * step.norm() + 1e-6, name
        else:
            torch.testing.assert_close(free_step, step, rtol=1e-4, atol=1e-6)
    padded, free = counts
    assert (free.samples, free.non_pad_tokens, free.supervised_tokens, free.attention_pairs) == (
        padded.samples, padded.non_pad_tokens, padded.supervised_tokens, padded.attention_pairs)
    assert free.input_tokens < padded.input_tokens
