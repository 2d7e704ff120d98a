"""The prompts of the online RL stages: any dataset lmforge reads, rendered exactly as SFT renders the prompt
of the answer it trains (the same ids), with the row's other columns kept for the rewards; and the checks
preflight runs on them before any model loads."""

import json

import pytest
import torch

from lmforge.config import build_config
from lmforge.data.templates import get_template
from lmforge.errors import ConfigError
from lmforge.preflight import preflight
from tests.refdata import refdata
from tests.stage_data import build_stage_datasets


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMFORGE_HOME", str(tmp_path / "home"))


def online_config(tmp_path, **keys):
    return build_config({"model_name_or_path": "builtin:tiny-llama", "template": "chatml", "stage": "grpo",
                         "reward_funcs": "accuracy", "num_generations": 4, "per_device_train_batch_size": 4,
                         "output_dir": str(tmp_path / "out"), **keys})


@pytest.mark.parametrize(("dataset", "template"), [("alpaca_en_demo", "chatml"),
                                                   ("glaive_toolcall_en_demo", "qwen")])
def test_prompts_are_the_ids_sft_trains_the_last_answer_after(tmp_path, tiny_tokenizer, dataset, template):
    keys = {"dataset": dataset, "dataset_dir": str(refdata("llamafactory_data")), "max_samples": 40,
            "cutoff_len": 4096, "template": template}
    template = get_template(template)
    prompts = build_stage_datasets(online_config(tmp_path, **keys), tiny_tokenizer, template).train
    sft_config = online_config(tmp_path, **keys, stage="sft", mask_history=True)
    sft = build_stage_datasets(sft_config, tiny_tokenizer, template).train
    assert len(prompts) == len(sft) == 40
    for prompt, example in zip(prompts, sft, strict=True):
        answer_start = next(i for i, label in enumerate(example["labels"]) if label != -100)
        assert prompt["prompt_ids"] == example["input_ids"][:answer_start], prompt["prompt_source"]
        assert tiny_tokenizer(prompt["prompt"], add_special_tokens=False)["input_ids"] == prompt["prompt_ids"]
        assert prompt["answer"]  # the final assistant message, kept as the reference


def test_other_columns_reach_the_rewards(tmp_path, tiny_tokenizer):
    rows = [{"instruction": "What is 2 + 2?", "output": "Let me see... 4", "answer": "4", "level": 1},
            {"instruction": "Name a colour.", "level": 2},
            {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"},
                          {"role": "assistant", "content": "Paris"}], "level": 3}]
    (tmp_path / "mixed.jsonl").write_text("\n".join(json.dumps(row) for row in rows))
    cfg = online_config(tmp_path, dataset=str(tmp_path / "mixed.jsonl"))
    data = build_stage_datasets(cfg, tiny_tokenizer, get_template("chatml")).train
    assert data["answer"] == ["4", None, "Paris"]  # the row's own column first, else its final answer
    assert data["level"] == [1, 2, 3]
    assert data["prompt_source"] == [f"{tmp_path / 'mixed.jsonl'}:line {n}" for n in (1, 2, 3)]
    assert data["prompt"][2] == ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nCapital of France?"
                                 "<|im_end|>\n<|im_start|>assistant\n")


def test_a_dataset_without_the_column_a_reward_reads_fails_in_preflight(tmp_path):
    (tmp_path / "rewards.py").write_text("def uses_tests(completions, test_cases, **kwargs):\n    return [0.0]\n")
    (tmp_path / "prompts.json").write_text(json.dumps([{"instruction": "Write a function."}]))
    cfg = online_config(tmp_path, dataset=str(tmp_path / "prompts.json"),
                        reward_funcs=f"accuracy,{tmp_path / 'rewards.py'}:uses_tests")
    with pytest.raises(ConfigError) as err:
        preflight(cfg, "train")  # what `lmforge train` runs before it reads data or loads the model
    message = " ".join(str(err.value).split())
    source = tmp_path / "prompts.json"
    assert f"{source}:row 1) has no column `answer`, which builtin reward `accuracy` reads" in message
    assert f"no column `test_cases`, which {tmp_path / 'rewards.py'}:uses_tests reads" in message


@pytest.mark.parametrize(("keys", "expected"), [
    ({"per_device_train_batch_size": 6}, "= 6 completions per step, not a multiple of `num_generations: 4`"),
    ({"reward_funcs": None}, "`stage: grpo` learns from rewards: set `reward_funcs`"),
    ({"temperature": 0}, "`temperature: 0` decodes greedily, so a prompt's `num_generations: 4` completions would "
                         "be the same"),
    ({"auto_find_batch_size": True}, "`auto_find_batch_size` halves the batch on out-of-memory, which would split the "
                                     "groups of `num_generations: 4` completions `stage: grpo` scores together"),
    ({"ref_model": "builtin:tiny-llama"}, "remove `ref_model`"),
    ({"stage": "ppo", "reward_funcs": None}, "`stage: ppo` scores completions with a reward model"),
    ({"stage": "ppo", "val_size": 0.1}, "`stage: ppo` trains on rollouts and has no evaluation"),
    ({"lora_target": "q_proj,lm_head"}, "cannot put LoRA on `lm_head`"),
])
def test_what_trl_would_refuse_is_found_before_anything_loads(tmp_path, keys, expected):
    (tmp_path / "p.json").write_text(json.dumps([{"instruction": "q", "output": "a"}]))
    with pytest.raises(ConfigError) as err:
        preflight(online_config(tmp_path, dataset=str(tmp_path / "p.json"), **keys), "train")
    assert expected in " ".join(str(err.value).split())


def test_llamafactory_ppo_example_validates(tmp_path):
    import yaml

    raw = yaml.safe_load(refdata("llamafactory_examples_v0.9.3", "train_lora", "llama3_lora_ppo.yaml").read_text())
    cfg = build_config({**raw, "reward_model": str(tmp_path), "ppo_epochs": 2})
    assert cfg.finetuning.stage == "ppo" and cfg.rl.reward_model == str(tmp_path) and cfg.rl.ppo_epochs == 2


def test_llamafactory_ppo_keys_are_the_ppo_trainers_settings(tmp_path):
    """The buffer is ppo_buffer_size x per_device x accumulation prompts, one Trainer step; the rest as named."""
    from rich.console import Console

    from lmforge.model.loading import load_model
    from lmforge.train.prepare import prepare_data
    from lmforge.train.runner import training_kwargs
    from lmforge.train.stages import STAGES

    (tmp_path / "p.json").write_text(json.dumps([{"instruction": f"q{n}"} for n in range(4)]))
    cfg = online_config(tmp_path, stage="ppo", dataset=str(tmp_path / "p.json"), ppo_buffer_size=2, ppo_epochs=3,
                        ppo_score_norm=True, ppo_whiten_rewards=True, ppo_target=3.0, gradient_accumulation_steps=3,
                        per_device_train_batch_size=1, beta=0.1, reward_funcs="length", reward_length_target=2)
    kind = preflight(cfg, "train")
    stage = STAGES.get("ppo")
    _, tokenizer, _, prepared = prepare_data(cfg, stage.data, kind, Console(quiet=True))
    model = load_model(cfg.model, dtype=None, cutoff_len=cfg.data.cutoff_len, tokenizer=tokenizer)
    trainer = stage.build_trainer(cfg, model, tokenizer, prepared, training_kwargs(cfg))
    settings = trainer.settings
    assert (settings.mini_batch, settings.accumulation, settings.epochs, settings.kl_coef, settings.kl_target,
            settings.score_norm, settings.whiten_rewards) == (1, 3, 3, 0.1, 3.0, True, True)
    assert trainer.args.per_device_train_batch_size == 6 and trainer.args.gradient_accumulation_steps == 1


def test_llamafactory_ppo_defaults_are_its_own(tmp_path):
    from lmforge.train.stages.ppo import DEFAULT_TARGET, kl_coefficient

    cfg = online_config(tmp_path, stage="ppo")
    assert (cfg.rl.ppo_epochs, cfg.rl.ppo_buffer_size, cfg.rl.ppo_score_norm, cfg.rl.ppo_whiten_rewards) == (
        4, 1, False, False)
    assert kl_coefficient(cfg) == 0.2 and cfg.rl.ppo_target is None and DEFAULT_TARGET == 6.0


def test_llamafactory_api_reward_model_is_refused_with_the_replacement(tmp_path):
    with pytest.raises(ConfigError) as err:
        online_config(tmp_path, stage="ppo", reward_model_type="api")
    message = " ".join(str(err.value).split())
    assert "write a reward function that calls the API (`reward_funcs: my_rewards.py" in message


def test_reward_model_type_must_say_what_the_folder_holds(tmp_path):
    (tmp_path / "p.json").write_text(json.dumps([{"instruction": "q", "output": "a"}]))
    adapter = tmp_path / "rm"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    cfg = online_config(tmp_path, dataset=str(tmp_path / "p.json"), stage="ppo", reward_funcs=None,
                        reward_model=str(adapter), reward_model_type="full")
    with pytest.raises(ConfigError, match=r"holds a LoRA adapter \(adapter_config.json\): set `reward_model_type: lo"):
        preflight(cfg, "train")
    preflight(online_config(tmp_path, dataset=str(tmp_path / "p.json"), stage="ppo", reward_funcs=None,
                            reward_model=str(adapter), reward_model_type="lora"), "train")


CPU_ARGS = {"per_device_train_batch_size": 4, "report_to": "none", "bf16": False}


@pytest.mark.parametrize(("algorithm", "keys", "share"), [("grpo", {}, 0.3), ("rloo", {"vllm_gpu_util": 0.45}, 0.45)])
def test_vllm_rollouts_are_trls_colocate_mode(tmp_path, algorithm, keys, share):
    from lmforge.train.stages.online import trainer_args

    cfg = online_config(tmp_path, use_vllm=True, **keys)
    args = trainer_args(cfg, algorithm, {"output_dir": str(tmp_path / "out"), **CPU_ARGS}, [1.0])
    assert args.use_vllm and args.vllm_mode == "colocate" and args.vllm_gpu_memory_utilization == share
    plain = trainer_args(online_config(tmp_path), algorithm, {"output_dir": str(tmp_path / "out"), **CPU_ARGS}, [1.0])
    assert not plain.use_vllm


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal of a machine without CUDA")
def test_vllm_rollouts_without_cuda_are_refused_before_loading(tmp_path):
    (tmp_path / "p.json").write_text(json.dumps([{"instruction": "q", "output": "a"}]))
    with pytest.raises(ConfigError) as err:
        preflight(online_config(tmp_path, dataset=str(tmp_path / "p.json"), use_vllm=True), "train")
    assert "this machine has no CUDA device: remove `use_vllm` (rollouts then use transformers' generate)" in " ".join(
        str(err.value).split())
