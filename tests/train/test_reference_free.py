"""ORPO and SimPO from chunked log-probabilities equal the same losses from whole logits, value and gradients."""

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, TrainingArguments

import lmforge.train.loss as loss_module
from lmforge.train.reference_free import PairCollator, ReferenceFreeTrainer


def pairs(tokenizer):
    encode = lambda text: tokenizer.encode(text, add_special_tokens=False)  # noqa: E731
    return [{"prompt_ids": encode(f"question {i} " * (2 + i)), "chosen_ids": encode(f"good answer {i} " * (3 + i)),
             "rejected_ids": encode(f"bad {i} " * (1 + 2 * i))} for i in range(3)]


def loss_and_grads(trainer, model, batch):
    model.zero_grad()
    loss = trainer.compute_loss(model, dict(batch))
    loss.backward()
    return loss.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
@pytest.mark.parametrize("loss", ["orpo", "simpo"])
def test_chunked_preference_losses_equal_the_whole_logits_ones(tiny_llama_path, tiny_tokenizer, tmp_path,
                                                               monkeypatch, loss, lora):
    monkeypatch.setattr(loss_module, "LOGITS_PER_CHUNK", 64 * 1024)  # 64-token chunks: several per batch
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_path, dtype=torch.float32)
    if lora:
        model = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    model.train()
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    options = {"loss": loss, "beta": 0.2, "gamma": 0.5, "ftx": 0.3}
    whole = ReferenceFreeTrainer(model=model, args=args, chunked_loss=False, **options)
    chunked = ReferenceFreeTrainer(model=model, args=args, **options)
    assert whole._head_parts is None and chunked._head_parts is not None
    batch = PairCollator(pad_token_id=tiny_tokenizer.pad_token_id)(pairs(tiny_tokenizer))
    supervised = int((batch["labels"][:, 1:] != -100).sum())
    assert supervised > loss_module._rows_per_chunk(chunked._head_parts[1])  # more than one chunk
    expected, expected_grads = loss_and_grads(whole, model, batch)
    value, grads = loss_and_grads(chunked, model, batch)
    assert value == pytest.approx(expected, rel=1e-5)
    assert grads.keys() == expected_grads.keys() and len(grads) > 0
    for name in grads:
        torch.testing.assert_close(grads[name], expected_grads[name], rtol=1e-4, atol=1e-6)
    assert whole._metrics["rewards/margins"][-1] == pytest.approx(chunked._metrics["rewards/margins"][-1], rel=1e-4)
