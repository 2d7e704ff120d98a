"""The chunked loss equals the model's own loss, in value and in every gradient."""

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, TrainingArguments

import lmforge.train.loss as loss_module
from lmforge.data.collator import SftCollator
from lmforge.data.conversation import Conversation
from lmforge.data.labels import IGNORE_INDEX
from lmforge.data.packing import pack_examples
from lmforge.data.processors.sft import tokenize_sft
from lmforge.data.templates import Message, get_template
from lmforge.errors import ModelError
from lmforge.train.trainer import LmforgeTrainer


def batch(tokenizer, packed):
    conversations = [Conversation([Message("user", f"question {i} " * (2 + i)),
                                   Message("assistant", f"answer {i} " * (3 + i))], None, f"row {i}") for i in range(4)]
    columns, _ = tokenize_sft(conversations, get_template("chatml"), tokenizer, cutoff_len=256)
    if packed:
        columns, _ = pack_examples(columns, 256)
    rows = [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]
    return SftCollator(pad_token_id=tokenizer.pad_token_id)(rows)


def loss_and_grads(model, trainer, inputs):
    model.zero_grad()
    items = int((inputs["labels"][:, 1:] != IGNORE_INDEX).sum())
    loss = trainer.compute_loss(model, dict(inputs), num_items_in_batch=torch.tensor(items))
    loss.backward()
    return loss.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
@pytest.mark.parametrize("packed", [False, True], ids=["padded", "packed"])
def test_chunked_loss_equals_the_model_loss(tiny_llama_path, tiny_tokenizer, tmp_path, monkeypatch, lora, packed):
    monkeypatch.setattr(loss_module, "LOGITS_PER_CHUNK", 64 * 1024)  # 64-token chunks: several per batch
    monkeypatch.setattr(loss_module, "LOGITS_WHOLE", 64 * 1024)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_path, dtype=torch.float32)
    if lora:
        model = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    model.train()
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    plain = LmforgeTrainer(model=model, args=args, chunked_loss=False)
    chunked = LmforgeTrainer(model=model, args=args, chunked_loss=True)
    assert plain._head_parts is None and chunked._head_parts is not None
    inputs = batch(tiny_tokenizer, packed)
    expected_loss, expected_grads = loss_and_grads(model, plain, inputs)
    loss, grads = loss_and_grads(model, chunked, inputs)
    assert loss == pytest.approx(expected_loss, rel=1e-6)
    assert grads.keys() == expected_grads.keys() and len(grads) > 0
    for name in grads:
        torch.testing.assert_close(grads[name], expected_grads[name], rtol=1e-4, atol=1e-6)


def test_models_with_scaled_logits_keep_the_usual_loss(tmp_path):
    from transformers import Gemma2Config, Gemma2ForCausalLM

    config = Gemma2Config(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                          num_attention_heads=2, num_key_value_heads=1, head_dim=8, final_logit_softcapping=30.0)
    model = Gemma2ForCausalLM(config)
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    assert LmforgeTrainer(model=model, args=args)._head_parts is None  # auto: soft-capped logits stay as they are
    with pytest.raises(ModelError, match=r"needs a plain, unsharded output head.*capped logits"):
        LmforgeTrainer(model=model, args=args, chunked_loss=True)


def test_supervised_rows_are_padded_to_few_shapes_with_ignored_labels():
    hidden = torch.randn(2, 5, 3)
    labels = torch.tensor([[IGNORE_INDEX, IGNORE_INDEX, 7, 8, 9], [IGNORE_INDEX, 4, IGNORE_INDEX, 6, IGNORE_INDEX]])
    rows, goals = loss_module._supervised_rows(hidden, labels)
    assert rows.shape == (loss_module.ROWS_MULTIPLE, 3)  # 5 supervised positions, padded
    assert goals[:5].tolist() == [7, 8, 9, 4, 6] and (goals[5:] == IGNORE_INDEX).all()
    # each label is predicted by the position before it
    torch.testing.assert_close(rows[:5], torch.stack([hidden[0, 1], hidden[0, 2], hidden[0, 3], hidden[1, 0],
                                                      hidden[1, 2]]))


def test_chunked_loss_computes_in_the_runs_mixed_precision(tiny_llama_path, tiny_tokenizer, tmp_path):
    """The chunked loss calls the decoder itself, outside the forward accelerate wraps in autocast: with `bf16`
    it still computes in bf16 (the model's own loss under autocast), not silently in fp32."""
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_path, dtype=torch.float32).train()
    inputs = batch(tiny_tokenizer, packed=False)
    items = torch.tensor(int((inputs["labels"][:, 1:] != IGNORE_INDEX).sum()))
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True, bf16=True)
    chunked = LmforgeTrainer(model=model, args=args, chunked_loss=True)
    with torch.no_grad():
        loss = chunked.compute_loss(model, dict(inputs), num_items_in_batch=items).item()
        exact = model(**inputs).loss.item()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = model(**inputs).loss.item()
    assert mixed != exact
    assert loss == pytest.approx(mixed, rel=1e-3) and abs(loss - mixed) < abs(loss - exact)


@pytest.mark.parametrize("trains", [False, True], ids=["frozen-head-lora", "trained-head-full"])
def test_the_heads_half_precision_copy_is_made_once_for_all_chunks(tiny_llama_path, monkeypatch, trains):
    """Where the chunks are recomputed (token-weighted losses, evaluation), under autocast the head's bf16 weight is
    cast once for the chunks and their recomputation instead of in each head call: the same loss and gradients bit
    for bit (a trained head's included: its chunks' gradients still cast to float32 one by one and summed in
    float32), and the head module itself is never called."""
    monkeypatch.setattr(loss_module, "LOGITS_PER_CHUNK", 64 * 1024)  # 64-token chunks: several per batch
    monkeypatch.setattr(loss_module, "LOGITS_WHOLE", 64 * 1024)
    from lmforge.model.recast_weights import recast_weights_in_backward

    model = AutoModelForCausalLM.from_pretrained(tiny_llama_path, dtype=torch.float32)
    if trains:  # as the runner trains it: each call casts the weights itself (autocast's cache would hand all the
        # chunks one cast, their head gradients summed in bf16)
        assert recast_weights_in_backward(model) > 0
    head = model.get_output_embeddings().requires_grad_(trains)
    generator = torch.Generator().manual_seed(0)
    hidden = torch.randn(200, head.in_features, generator=generator)
    targets = torch.randint(0, head.out_features, (200,), generator=generator)
    targets[::9] = IGNORE_INDEX
    head_calls = []
    head.register_forward_hook(lambda *_: head_calls.append(1))

    def loss_and_grads():
        head.zero_grad()
        leaf = hidden.clone().requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = loss_module._recomputed_chunks_loss(leaf, targets, head, None)
        loss.backward()
        return loss.item(), [leaf.grad] + ([head.weight.grad.clone()] if trains else [])

    loss, grads = loss_and_grads()
    assert head_calls == []
    monkeypatch.setattr(loss_module, "_head_for_chunks", lambda head, device_type: head)  # a cast per head call
    expected_loss, expected_grads = loss_and_grads()
    assert len(head_calls) > 2 and loss == expected_loss
    assert len(grads) == 1 + trains and all(map(torch.equal, grads, expected_grads))
