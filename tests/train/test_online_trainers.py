"""The online RL stages add data, not math: one training step of the stage's trainer equals one step of trl's
own trainer, built as trl documents it, on the same prompts, model and seed (loss, KL, rewards, weights);
with LoRA the reference is the adapter-disabled base. And the stage learns: a few GRPO steps on a rule
reward raise the mean reward."""

import copy
import inspect
import json

import pytest
import torch
from datasets import Dataset
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, set_seed

from lmforge.config import build_config
from lmforge.data.templates import get_template
from lmforge.data.templates.encoding import stop_token_ids
from lmforge.train.runner import training_kwargs
from lmforge.train.stages import STAGES
from tests.stage_data import build_stage_datasets

LORA = dict(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "up_proj"], lora_dropout=0.0)


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMFORGE_HOME", str(tmp_path / "home"))


def prompts_file(tmp_path, count=8):
    rows = [{"instruction": f"Count to {n}.", "output": " ".join(map(str, range(1, n + 1)))} for n in range(count)]
    path = tmp_path / "count.json"
    path.write_text(json.dumps(rows))
    return path


def short_answers(completions, **kwargs):
    """A rule reward: 1 for an answer of at most 3 words, falling to 0 at 9."""
    return [max(0.0, min(1.0, (9 - len(text.split())) / 6)) for text in completions]


def run_config(tmp_path, stage, method, **keys):
    rewards = tmp_path / "rewards.py"
    rewards.write_text(inspect.getsource(short_answers))
    return build_config({
        "model_name_or_path": "builtin:tiny-llama", "template": "chatml", "stage": stage, "finetuning_type": method,
        "dataset": str(prompts_file(tmp_path)), "reward_funcs": f"{rewards}:short_answers", "num_generations": 4,
        "per_device_train_batch_size": 4, "gradient_accumulation_steps": 2, "max_completion_length": 12,
        "beta": 0.1, "learning_rate": 1e-2, "max_steps": 1, "logging_steps": 1, "save_strategy": "no",
        "report_to": "none", "seed": 7, "output_dir": str(tmp_path / "out"), **keys})


def trl_trainer(algorithm, cfg, model, tokenizer, prompts, peft):
    """trl's trainer as its documentation builds it: a text `prompt` column, a reward function, a config."""
    from trl import GRPOConfig, GRPOTrainer, RLOOConfig, RLOOTrainer

    kwargs = training_kwargs(cfg)
    common = dict(num_generations=4, max_completion_length=12, beta=0.1, log_completions=False)
    if algorithm == "grpo":
        args, trainer = GRPOConfig(**kwargs, **common), GRPOTrainer
    else:
        args, trainer = RLOOConfig(**kwargs, **common), RLOOTrainer
    return trainer(model=model, reward_funcs=short_answers, args=args, processing_class=tokenizer,
                   train_dataset=Dataset.from_dict({"prompt": prompts}),
                   peft_config=LoraConfig(**LORA) if peft else None)


@pytest.mark.parametrize(("stage", "method"), [("grpo", "lora"), ("grpo", "full"), ("rloo", "lora")])
def test_one_step_equals_trls_own_trainer(tmp_path, tiny_llama_path, tiny_tokenizer, stage, method):
    cfg = run_config(tmp_path, stage, method)
    prepared = build_stage_datasets(cfg, tiny_tokenizer, get_template("chatml"))
    base = AutoModelForCausalLM.from_pretrained(tiny_llama_path, dtype=torch.float32)
    base.generation_config.eos_token_id = stop_token_ids(get_template("chatml"), tiny_tokenizer)
    theirs_base = copy.deepcopy(base)
    ours = base
    if method == "lora":
        ours = get_peft_model(base, LoraConfig(**LORA))
        with torch.no_grad():  # a policy away from the base, so that the KL term is not zero
            for name, param in ours.named_parameters():
                if "lora_B" in name:
                    param.normal_(0, 0.05)
    ours_trainer = STAGES.get(stage).build_trainer(cfg, ours, tiny_tokenizer, prepared, training_kwargs(cfg))
    theirs_trainer = trl_trainer(stage, cfg, theirs_base, tiny_tokenizer, prepared.train["prompt"],
                                 peft=method == "lora")
    if method == "lora":  # the same adapter in both; trl's reference is then its adapter-disabled base
        assert "ref" not in ours_trainer.model.peft_config and "ref" not in theirs_trainer.model.peft_config
        adapter = {n: p for n, p in ours_trainer.model.named_parameters() if "lora_" in n}
        with torch.no_grad():
            for name, param in theirs_trainer.model.named_parameters():
                if "lora_" in name:
                    param.copy_(adapter[name])
    results = []
    for trainer in (ours_trainer, theirs_trainer):
        set_seed(7)
        trainer.train()
        results.append((trainer.state.log_history[0], {n: p.detach().clone() for n, p in
                                                       trainer.model.named_parameters() if p.requires_grad}))
    (our_log, our_weights), (their_log, their_weights) = results
    assert our_log["reward"] > 0 and (our_log["kl"] != 0 or method == "full")  # full: it starts as its reference
    for key in ("loss", "kl", "reward", "reward_std", "completions/mean_length", "entropy"):
        assert our_log[key] == pytest.approx(their_log[key], rel=1e-5, abs=1e-7), key
    assert our_weights.keys() == their_weights.keys()
    for name, weight in our_weights.items():
        torch.testing.assert_close(weight, their_weights[name], rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.slow
def test_a_few_grpo_steps_raise_the_reward(tmp_path):
    """A tiny model taught by SFT to answer yes or no (half each), then rewarded for answering yes: ten GRPO
    steps (one prompt of 16 completions each) raise the mean reward of the last two steps over the first two
    by at least 0.25 (from about 0.4 to about 0.85; by 0.41-0.59 over seeds 0-4, where 8 completions a step
    rose by 0.06-0.56: a rounding-level change of the gradients could fail it)."""
    from lmforge.train.runner import run_training

    rows = [{"instruction": f"Question {n}: is it so?", "output": "yes" if n % 2 else "no", "answer": "yes"}
            for n in range(32)]
    (tmp_path / "yesno.json").write_text(json.dumps(rows))
    common = {"template": "chatml", "finetuning_type": "full", "dataset": str(tmp_path / "yesno.json"),
              "logging_steps": 1, "save_strategy": "no", "report_to": "none", "seed": 0, "cutoff_len": 64,
              "per_device_train_batch_size": 16}
    run_training(build_config({**common, "model_name_or_path": "builtin:tiny-llama", "stage": "sft",
                               "learning_rate": 2e-2, "max_steps": 20, "output_dir": str(tmp_path / "sft")}))
    run_training(build_config({**common, "model_name_or_path": str(tmp_path / "sft"), "stage": "grpo",
                               "reward_funcs": "accuracy_normalized", "num_generations": 16,
                               "max_completion_length": 4, "learning_rate": 3e-3, "max_steps": 10,
                               "output_dir": str(tmp_path / "grpo")}))
    logs = [json.loads(line) for line in (tmp_path / "grpo" / "trainer_log.jsonl").read_text().splitlines()]
    rewards = [log["rewards/accuracy_normalized/mean"] for log in logs if "reward" in log]
    assert len(rewards) == 10
    start, end = sum(rewards[:2]) / 2, sum(rewards[-2:]) / 2
    assert end >= start + 0.25, rewards
    samples = [json.loads(line) for line in (tmp_path / "grpo" / "rollout_samples.jsonl").read_text().splitlines()]
    assert samples[0]["step"] == 1 and set(samples[0]["rewards"]) == {"accuracy_normalized"}
    assert (tmp_path / "grpo" / "training_reward.png").is_file()
