"""lmforge's chunked log-probabilities behind trl's fused-LM-head call (`train/trl_head.py`): the same
per-token outputs and gradients as trl's own head, and, inside trl's DPO and KTO trainers, trl's own loss,
gradients and logged metrics (entropy, mean logits, accuracies...), with several chunks per batch."""

import contextlib

import pytest
import torch
from transformers import AutoModelForCausalLM

import lmforge.train.loss as loss_module
from lmforge.train.trl_head import _install
from tests.train.test_preference_trainers import config, stage_trainer


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMFORGE_HOME", str(tmp_path / "home"))


def small_chunks(monkeypatch, model):
    vocabulary = model.get_output_embeddings().out_features
    monkeypatch.setattr(loss_module, "TOKEN_OUTPUTS_PER_CHUNK", 64 * vocabulary)  # 64-row chunks: several a batch


def test_chunked_head_answers_trls_fused_call_as_trl_does(tiny_llama_path, monkeypatch):
    from trl.trainer.utils import add_fused_lm_head

    heads = []
    for ours in (False, True):
        model = AutoModelForCausalLM.from_pretrained(tiny_llama_path, dtype=torch.float32)
        add_fused_lm_head(model, outputs=("log_probs", "entropy", "log_sum_sq_probs", "mean_logits", "is_top1"))
        if ours:
            small_chunks(monkeypatch, model)
            assert _install(model, contextlib.nullcontext)  # no trainer: no mixed precision to enter
        heads.append(model)
    torch.manual_seed(0)
    input_ids = torch.randint(3, 200, (3, 90))
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 70:] = 0  # a padded row
    labels = input_ids.masked_fill(attention_mask == 0, -100)
    labels[:, :20] = -100  # prompts
    labels[2] = -100  # a row with nothing supervised
    results = []
    for model in heads:
        model.zero_grad()
        out = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels, fused_lm_head=True)
        (out.log_probs * torch.linspace(0.5, 1.5, 89)).sum().backward()
        results.append((out, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
        with torch.no_grad():  # the reference pass
            assert torch.equal(model(input_ids=input_ids, attention_mask=attention_mask, labels=labels,
                                     fused_lm_head=True).log_probs, out.log_probs.detach())
    (expected, expected_grads), (out, grads) = results
    assert int((labels[:, 1:] != -100).sum()) > 64  # two chunks
    for field in ("log_probs", "entropy", "log_sum_sq_probs", "mean_logits", "loss"):
        torch.testing.assert_close(getattr(out, field).detach(), getattr(expected, field).detach(),
                                   rtol=1e-5, atol=1e-5, msg=field)
    assert torch.equal(out.is_top1, expected.is_top1) and torch.equal(out.label_mask, expected.label_mask)
    assert grads.keys() == expected_grads.keys() and len(grads) > 0
    for name in grads:
        torch.testing.assert_close(grads[name], expected_grads[name], rtol=1e-4, atol=1e-6)
    plain = heads[1](input_ids=input_ids, attention_mask=attention_mask)  # without `fused_lm_head`: logits
    assert plain.logits.shape == (3, 90, heads[1].config.vocab_size)


def loss_grads_metrics(trainer, batch):
    model = trainer.model
    model.train()
    model.zero_grad()
    loss = trainer.compute_loss(model, dict(batch))
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    metrics = {key: values[-1] for key, values in trainer._metrics["train"].items()}
    return loss.item(), grads, metrics


@pytest.mark.parametrize("stage,dataset,options", [
    ("dpo", "dpo_en_demo", {"pref_loss": "sigmoid"}),
    ("dpo", "dpo_en_demo", {"pref_loss": "ipo", "pref_ftx": 0.5}),
    ("kto", "kto_en_demo", {}),
], ids=["dpo", "ipo+sft", "kto"])
def test_trainers_with_the_chunked_head_give_trls_loss_gradients_and_metrics(
        stage, dataset, options, tmp_path, tiny_llama_path, tiny_tokenizer, monkeypatch):
    """LoRA: the reference is the policy with its adapter disabled, through the same head."""
    results = []
    for chunked in (False, True):
        # float32 (not the bf16 autocast a bf16 CPU would pick): trl's head is called here without the trainer's
        # autocast wrapper (prepared only by `train()`), while ours enters the trainer's autocast itself
        cfg = config(tmp_path, stage, dataset, chunked_loss=chunked, cutoff_len=160, bf16=False, **options)
        torch.manual_seed(0)  # the same LoRA initialisation in both
        trainer, _ = stage_trainer(cfg, tiny_llama_path, tiny_tokenizer, ["q_proj", "v_proj"])
        torch.manual_seed(0)
        for name, parameter in trainer.model.named_parameters():
            if "lora_B" in name:  # a policy that differs from the reference
                parameter.data.normal_(0, 0.05)
        small_chunks(monkeypatch, trainer.model)
        if not chunked:
            batch = next(iter(trainer.get_train_dataloader()))
            assert int(batch["completion_mask"].sum()) > 2 * 64  # more than two chunks
        results.append(loss_grads_metrics(trainer, batch))
    (expected, expected_grads, expected_metrics), (value, grads, metrics) = results
    # trl's own head, inside its trainers' reference pass, is off the exact (float64, whole-logits) reference
    # log-probabilities by up to ~1e-5 of a 550-nat sum; ours is not (below). x beta, that moves the loss ~2e-4.
    assert value == pytest.approx(expected, abs=1e-3)
    assert grads.keys() == expected_grads.keys() and len(grads) > 0
    for name in grads:
        torch.testing.assert_close(grads[name], expected_grads[name], rtol=1e-2, atol=1e-6)
    assert metrics.keys() == expected_metrics.keys() and {"entropy", "logits/chosen"} <= set(metrics)
    for key in metrics:  # the policy's own figures as trl's; those against the reference within its offset
        tolerance = {"abs": 2e-3} if key.startswith(("rewards/", "kl")) else {"rel": 1e-5, "abs": 1e-6}
        assert metrics[key] == pytest.approx(expected_metrics[key], **tolerance), key
    if stage == "dpo":  # ours: the reference log-probabilities of the whole float64 logits
        model, beta = trainer.model, cfg.finetuning.pref_beta
        with torch.no_grad(), model.disable_adapter():
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.double()
        labels = batch["input_ids"].masked_fill(batch["completion_mask"] == 0, -100)[:, 1:]
        per_token = logits[:, :-1].log_softmax(-1).gather(2, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        reference = (per_token * (labels != -100)).sum(-1)
        half = reference.shape[0] // 2
        for side, rows in (("chosen", reference[:half]), ("rejected", reference[half:])):
            ours = metrics[f"logps/{side}"] - metrics[f"rewards/{side}"] / beta
            assert ours == pytest.approx(rows.mean().item(), rel=1e-6), side
