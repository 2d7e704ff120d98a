"""`stage: ppo`'s arithmetic (LLaMA-Factory's PPO, trl's PPOTrainer of the 0.8 line) against hand computations:
masked whitening, per-token rewards, GAE, `ppo_whiten_rewards`, the clipped losses, `ppo_score_norm`."""

import statistics

import pytest
import torch

from lmforge.train import ppo_math
from lmforge.train.ppo_trainer import cut_at_stop, sequence_rows


def test_masked_whiten_without_shifting_the_mean_keeps_it():
    values, mask = torch.tensor([[1.0, 3.0, 5.0, 100.0]]), torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    # masked entries 1, 3, 5: mean 3, unbiased std 2 -> (v - 3) / 2 + 3
    assert ppo_math.masked_whiten(values, mask, shift_mean=False)[0, :3].tolist() == pytest.approx([2.0, 3.0, 4.0])
    assert ppo_math.masked_whiten(values, mask)[0, :3].tolist() == pytest.approx([-1.0, 0.0, 1.0])


def test_token_rewards_are_the_kl_penalty_with_the_score_on_the_last_response_token():
    logprobs, reference = torch.tensor([[-1.0, -1.0, -2.0, 0.0]]), torch.tensor([[-1.5, -1.0, -1.0, -3.0]])
    rewards, kl = ppo_math.token_rewards(torch.tensor([2.0]), logprobs, reference,
                                         torch.tensor([[1.0, 1.0, 1.0, 0.0]]), kl_coef=0.1)
    assert kl[0].tolist() == pytest.approx([0.5, 0.0, -1.0, 0.0])
    assert rewards[0].tolist() == pytest.approx([-0.05, 0.0, 0.1 + 2.0, 0.0])


def gae_by_hand(rewards, values, lam=0.95):
    advantages, running = [], 0.0
    for t in reversed(range(len(rewards))):
        following = values[t + 1] if t + 1 < len(values) else 0.0
        running = rewards[t] + following - values[t] + lam * running
        advantages.insert(0, running)
    return advantages


def whitened(xs):
    mean, std = statistics.mean(xs), statistics.stdev(xs)
    return [(x - mean) / std for x in xs]


def test_gae_returns_and_whitened_advantages():
    rewards, values = [0.0, 0.0, 1.0], [0.5, 0.2, 0.1]
    # t=2: 1 - 0.1 = 0.9; t=1: (0.1 - 0.2) + 0.95 * 0.9 = 0.755; t=0: (0.2 - 0.5) + 0.95 * 0.755 = 0.41725
    assert gae_by_hand(rewards, values) == pytest.approx([0.41725, 0.755, 0.9])
    advantages, returns = ppo_math.advantages_and_returns(torch.tensor([rewards]), torch.tensor([values]),
                                                          torch.ones(1, 3))
    assert returns[0].tolist() == pytest.approx([0.91725, 0.955, 1.0])
    assert advantages[0].tolist() == pytest.approx(whitened([0.41725, 0.755, 0.9]), abs=1e-5)


def test_padding_outside_the_mask_does_not_change_the_advantages():
    mask = torch.tensor([[0.0, 1.0, 1.0, 0.0]])  # a prompt position, two response tokens, a pad
    advantages, returns = ppo_math.advantages_and_returns(torch.tensor([[9.0, 0.0, 1.0, 9.0]]),
                                                          torch.tensor([[9.0, 0.3, 0.1, 9.0]]), mask)
    assert advantages[0, 1:3].tolist() == pytest.approx(whitened(gae_by_hand([0.0, 1.0], [0.3, 0.1])), abs=1e-5)
    assert returns[0, 1:3].tolist() == pytest.approx([a + v for a, v in zip(gae_by_hand([0.0, 1.0], [0.3, 0.1]),
                                                                            [0.3, 0.1], strict=True)])


def test_whitening_the_rewards_changes_the_advantages_as_computed_by_hand():
    rewards, values, mask = [1.0, 0.0, 0.0, 0.0, -2.0], [0.5, 0.4, 0.3, 0.2, 0.1], torch.ones(1, 5)
    plain, _ = ppo_math.advantages_and_returns(torch.tensor([rewards]), torch.tensor([values]), mask)
    white, _ = ppo_math.advantages_and_returns(torch.tensor([rewards]), torch.tensor([values]), mask,
                                               whiten_rewards=True)
    mean, std = statistics.mean(rewards), statistics.stdev(rewards)
    rescaled = [(r - mean) / std + mean for r in rewards]  # spread normalised, mean kept
    assert plain[0].tolist() == pytest.approx(whitened(gae_by_hand(rewards, values)), abs=1e-5)
    assert white[0].tolist() == pytest.approx(whitened(gae_by_hand(rescaled, values)), abs=1e-5)
    assert max(abs(a - b) for a, b in zip(white[0].tolist(), plain[0].tolist(), strict=True)) > 0.05


def test_clipped_policy_loss():
    old = torch.zeros(1, 3)
    logprobs = torch.tensor([[0.5, -0.5, 0.0]])  # ratios e^0.5, e^-0.5, 1
    advantages = torch.tensor([[1.0, 1.0, -1.0]])
    loss, clipped, ratio = ppo_math.policy_loss(logprobs, old, advantages, torch.ones(1, 3))
    # max(-A r, -A clip(r)): max(-1.6487, -1.2) = -1.2 (clipped); max(-0.6065, -0.8) = -0.6065; max(1, 1) = 1
    assert loss.item() == pytest.approx((-1.2 - 0.60653066 + 1.0) / 3)
    assert clipped.item() == pytest.approx(1 / 3)
    assert ratio.item() == pytest.approx((1.64872127 + 0.60653066 + 1.0) / 3)


def test_clipped_value_loss():
    predicted, old, returns = torch.tensor([[0.5, 1.0]]), torch.tensor([[0.0, 0.9]]), torch.tensor([[1.0, 1.0]])
    # first: the clipped prediction 0.2 is further from 1 (0.64 > 0.25); second: both exact -> 0.5 * mean(0.64, 0)
    assert ppo_math.value_loss(predicted, old, returns, torch.ones(1, 2)).item() == pytest.approx(0.16)


def test_score_norm_uses_the_running_moments_of_every_score_so_far():
    moments = ppo_math.RunningMoments()
    first = moments.normalise(torch.tensor([1.0, 2.0, 3.0]))
    assert first.tolist() == pytest.approx([-1.0, 0.0, 1.0])  # mean 2, unbiased std 1
    second = moments.normalise(torch.tensor([4.0, 5.0]))
    mean, std = statistics.mean([1, 2, 3, 4, 5]), statistics.stdev([1, 2, 3, 4, 5])
    assert second.tolist() == pytest.approx([(4 - mean) / std, (5 - mean) / std], rel=1e-5)


def test_responses_end_at_their_first_stop_token_and_the_mask_reads_them():
    assert cut_at_stop(torch.tensor([[5, 2, 0, 0], [5, 6, 7, 8]]), {2}) == [[5, 2], [5, 6, 7, 8]]
    ids, attention, mask = sequence_rows([[1, 9], [1]], [[5, 2], [5, 6, 7]], pad_id=0)
    assert ids.tolist() == [[1, 9, 5, 2], [1, 5, 6, 7]] and attention.tolist() == [[1, 1, 1, 1], [1, 1, 1, 1]]
    # position i predicts token i + 1: the response tokens are predicted from positions 1-2 and 0-2
    assert mask.tolist() == [[0, 1, 1], [1, 1, 1]]


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMFORGE_HOME", str(tmp_path / "home"))


@pytest.mark.slow
def test_full_ppo_saves_the_value_head_beside_the_model_and_a_resumed_run_restores_it(tmp_path, isolated_cache):
    """Full fine-tuning (the reference a frozen copy): the model file holds the policy alone and each checkpoint
    has its value head; a run resumed from checkpoint-1 ends where the uninterrupted run ends (a fresh value head
    would differ by its first step's update, about 1e-3)."""
    import json
    import shutil

    from safetensors.torch import load_file

    from lmforge.config import build_config
    from lmforge.train.runner import run_training

    (tmp_path / "prompts.json").write_text(json.dumps([{"instruction": f"Say {n}."} for n in range(16)]))
    keys = {"model_name_or_path": "builtin:tiny-llama", "template": "chatml", "stage": "ppo",
            "finetuning_type": "full", "reward_funcs": "length", "reward_length_target": 2,
            "dataset": str(tmp_path / "prompts.json"), "per_device_train_batch_size": 2, "max_new_tokens": 4,
            "max_steps": 2, "logging_steps": 1, "ppo_epochs": 1, "save_steps": 1, "report_to": "none",
            "learning_rate": 1e-3}
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    run_training(build_config({**keys, "output_dir": str(straight)}))
    assert not any("v_head" in name for name in load_file(straight / "model.safetensors"))
    assert (straight / "checkpoint-1" / "value_head.safetensors").is_file()
    shutil.copytree(straight / "checkpoint-1", resumed / "checkpoint-1")
    assert run_training(build_config({**keys, "output_dir": str(resumed)}))["steps_this_run"] == 1
    first = load_file(straight / "checkpoint-1" / "value_head.safetensors")
    heads = [load_file(folder / "value_head.safetensors") for folder in (straight, resumed)]
    assert (heads[0]["v_head.summary.weight"] - first["v_head.summary.weight"]).abs().max() > 1e-4  # trained
    for name in first:
        assert torch.allclose(heads[0][name], heads[1][name], atol=1e-6)
