"""DFT, EAFT and ASFT: the token weights are the papers' (and LLaMA-Factory's), the chunked path equals the whole-logits
path, and each trains end to end."""

import json

import pytest
import torch
import torch.nn.functional as F
from rich.console import Console
from transformers import AutoModelForCausalLM

from lmforge.config import build_config
from lmforge.errors import ConfigError
from lmforge.train.loss import chunked_causal_lm_loss, plain_head_parts
from lmforge.train.runner import run_training
from lmforge.train.stages import configured_stage
from lmforge.train.token_losses import TokenLoss, token_loss_sum
from tests.conftest import ROOT

LOGITS = torch.randn(6, 50, generator=torch.Generator().manual_seed(0)) * 3
TARGETS = torch.tensor([3, 7, -100, 11, 0, 49])


def _by_hand(weight_of) -> tuple[torch.Tensor, torch.Tensor]:
    logits = LOGITS.clone().requires_grad_(True)
    ce = F.cross_entropy(logits, TARGETS, reduction="none", ignore_index=-100)
    loss = (ce * weight_of(logits.detach(), ce.detach()) * (TARGETS != -100)).sum()
    loss.backward()
    return loss.detach(), logits.grad


def _ours(token_loss: TokenLoss, reference=None) -> tuple[torch.Tensor, torch.Tensor]:
    logits = LOGITS.clone().requires_grad_(True)
    loss = token_loss_sum(token_loss, logits, TARGETS, reference)
    loss.backward()
    return loss.detach(), logits.grad


def test_dft_weights_each_token_by_its_probability_without_gradient_through_it():
    expected = _by_hand(lambda logits, ce: torch.exp(-ce))
    for got, want in zip(_ours(TokenLoss("dft")), expected, strict=True):
        assert torch.allclose(got, want, atol=1e-6)


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_eaft_weights_by_top20_entropy(alpha):
    def weight(logits, ce):
        top = logits.topk(20, dim=-1).values.log_softmax(dim=-1)
        return (-(top.exp() * top).sum(-1) / 3.0) ** alpha

    for got, want in zip(_ours(TokenLoss("eaft", alpha)), _by_hand(weight), strict=True):
        assert torch.allclose(got, want, atol=1e-6)


def test_asft_adds_the_kl_to_the_reference():
    dft_loss, _ = _ours(TokenLoss("dft"))
    same, _ = _ours(TokenLoss("asft", 0.3), reference=LOGITS)
    assert torch.allclose(same, dft_loss, atol=1e-5)  # the model is its reference: no KL
    reference = LOGITS.flip(0)
    kl = F.kl_div(LOGITS.log_softmax(-1), reference.softmax(-1), reduction="none").sum(-1)
    moved, _ = _ours(TokenLoss("asft", 0.3), reference=reference)
    assert torch.allclose(moved, dft_loss + 0.3 * kl[TARGETS != -100].sum(), atol=1e-4)


@pytest.mark.parametrize("kind", ["dft", "eaft"])
def test_chunked_path_equals_whole_logits(tiny_llama_path, kind):
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_path)
    ids = torch.randint(3, 1000, (2, 12), generator=torch.Generator().manual_seed(1))
    labels = ids.clone()
    labels[:, :5] = -100
    decoder, head = plain_head_parts(model)
    chunked = chunked_causal_lm_loss(decoder, head, {"input_ids": ids}, labels, 14, TokenLoss(kind))
    logits = model(input_ids=ids).logits
    whole = token_loss_sum(TokenLoss(kind), logits[:, :-1].reshape(-1, 1024), labels[:, 1:].reshape(-1)) / 14
    assert torch.allclose(chunked, whole, atol=1e-5)


TRAIN = {"model_name_or_path": "builtin:tiny-llama", "template": "chatml", "dataset": "identity",
         "dataset_dir": str(ROOT / "examples" / "data"), "max_samples": 8, "cutoff_len": 64, "max_steps": 3,
         "per_device_train_batch_size": 4, "learning_rate": 5e-2, "logging_steps": 1, "report_to": "none",
         "overwrite_output_dir": True, "save_strategy": "no"}


def _losses(tmp_path, name, **keys) -> list[float]:
    out = tmp_path / name
    run_training(build_config({**TRAIN, "output_dir": str(out), **keys}), Console(quiet=True))
    lines = [json.loads(line) for line in (out / "trainer_log.jsonl").read_text().splitlines()]
    return [line["loss"] for line in lines if "loss" in line]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["lora", "full"])
def test_asft_starts_as_dft_then_pays_for_leaving_the_reference(tmp_path, method):
    """At the first step the model is its reference (LoRA: the adapter-disabled base; full: a frozen copy), so
    ASFT's loss is DFT's; once the model moves, the KL term adds to it."""
    plain = _losses(tmp_path, "plain", finetuning_type=method)
    dft = _losses(tmp_path, "dft", finetuning_type=method, use_dft_loss=True)
    asft = _losses(tmp_path, "asft", finetuning_type=method, use_asft_loss=True, asft_alpha=1.0)
    assert dft[0] < plain[0]  # every token's loss weighted by a probability below 1
    assert asft[0] == pytest.approx(dft[0], rel=1e-4)
    assert asft[1] > dft[1]


@pytest.mark.slow
def test_eaft_trains(tmp_path):
    losses = _losses(tmp_path, "eaft", use_eaft_loss=True, eaft_alpha=0.5)
    assert len(losses) == 3 and all(loss > 0 for loss in losses)


def test_token_losses_are_checked_before_loading():
    with pytest.raises(ConfigError, match="keep one"):
        build_config({"use_dft_loss": True, "use_eaft_loss": True})
    with pytest.raises(ConfigError, match=r"`stage: (pt|sft)` or `stage: (pt|sft)` trains \(got `dpo`\)"):
        configured_stage(build_config({"use_dft_loss": True, "stage": "dpo"}))
