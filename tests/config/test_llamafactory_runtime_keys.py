"""LLaMA-Factory keys of issue #20 that change what a run does, shown on tiny models with the real libraries."""

import json
import math
import re

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, GenerationConfig

from lmforge.config import build_config
from lmforge.data.templates.template import Message
from lmforge.errors import ConfigError, ModelError, RewardError
from lmforge.hub.builtin import builtin_path
from lmforge.infer.factory import create_engine
from lmforge.infer.options import GenerationOptions
from lmforge.infer.predict import run_predict
from lmforge.train.stages.online_checks import completion_limit
from tests.conftest import ROOT

TINY = "builtin:tiny-llama"


def _save_adapter(folder):
    """A LoRA adapter on tiny-llama whose B matrices are not zero, so merging it changes the weights."""
    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(builtin_path(TINY)),
                           LoraConfig(r=2, target_modules=["q_proj"], init_lora_weights=False))
    model.save_pretrained(folder)


def _q_proj(engine):
    return engine.model.model.layers[0].self_attn.q_proj.weight


def test_adapter_folder_loads_each_adapter_from_its_subfolder(tmp_path):
    _save_adapter(tmp_path / "run" / "checkpoint-2")
    base = create_engine(build_config({"model_name_or_path": TINY, "template": "chatml"}))
    merged = create_engine(build_config({"model_name_or_path": TINY, "template": "chatml",
                                         "adapter_name_or_path": str(tmp_path / "run"),
                                         "adapter_folder": "checkpoint-2"}))
    direct = create_engine(build_config({"model_name_or_path": TINY, "template": "chatml",
                                         "adapter_name_or_path": str(tmp_path / "run" / "checkpoint-2")}))
    try:
        assert not torch.equal(_q_proj(merged), _q_proj(base))
        assert torch.equal(_q_proj(merged), _q_proj(direct))
    finally:
        for engine in (base, merged, direct):
            engine.close()
    with pytest.raises(ModelError, match=r"without config\.json or adapter_config\.json"):  # the run folder itself
        create_engine(build_config({"model_name_or_path": TINY, "template": "chatml",
                                    "adapter_name_or_path": str(tmp_path / "run")}))
    with pytest.raises(ConfigError, match="set `adapter_name_or_path`"):
        build_config({"adapter_folder": "checkpoint-2"})


@pytest.fixture(scope="module")
def greedy_engine():
    engine = create_engine(build_config({"model_name_or_path": TINY, "template": "chatml", "do_sample": False,
                                         "max_new_tokens": 4}))
    yield engine
    engine.close()


def _ask(text):
    return [Message("user", text)]


def test_max_length_limits_prompt_and_answer_when_max_new_tokens_is_not_positive(greedy_engine):
    short, long = greedy_engine.prompt(_ask("Hi")), greedy_engine.prompt(_ask("Tell me all about the deep blue sea."))
    limit = len(long.ids) + 3
    options = GenerationOptions.from_config(build_config({"max_new_tokens": -1, "max_length": limit}).generation)
    for prompt in (short, long):
        (answer,) = greedy_engine.complete(prompt, options)
        assert len(answer.token_ids) == limit - len(prompt.ids) and answer.finish_reason == "length"
    together = greedy_engine.generate([(_ask("Hi"), None), (_ask("Tell me all about the deep blue sea."), None)],
                                      options)
    assert [len(found[0].token_ids) for found in together] == [limit - len(short.ids), 3]
    # a positive max_new_tokens overrides max_length (LLaMA-Factory's default pair: 1024 and 1024)
    overridden = GenerationOptions.from_config(build_config({"max_new_tokens": 5, "max_length": limit}).generation)
    assert len(greedy_engine.complete(long, overridden)[0].token_ids) == 5
    # rollouts (trl) limit the completion alone
    assert "set `max_completion_length`" in completion_limit(build_config({"stage": "grpo", "max_new_tokens": 0}))
    assert completion_limit(build_config({"stage": "grpo", "max_new_tokens": 0, "max_completion_length": 8})) is None


def _predict(cfg, engine):
    path = run_predict(cfg, engine).path
    return [json.loads(line)["predict"] for line in path.read_text().splitlines()]


def test_generation_config_file_decodes_predictions_and_generation_max_length_changes_nothing(tmp_path,
                                                                                               greedy_engine):
    data = tmp_path / "q.json"
    data.write_text(json.dumps([{"instruction": "Hi", "output": "x"}, {"instruction": "Name a color.", "output": "y"}]))
    raw = {"model_name_or_path": TINY, "template": "chatml", "do_sample": False, "max_new_tokens": 4,
           "eval_dataset": str(data), "output_dir": str(tmp_path / "plain")}
    plain = _predict(build_config(raw), greedy_engine)
    assert _predict(build_config({**raw, "generation_max_length": 1, "output_dir": str(tmp_path / "gml")}),
                    greedy_engine) == plain  # LLaMA-Factory's max_new_tokens overrides it: no effect there either
    answers = greedy_engine.generate([(_ask("Hi"), None), (_ask("Name a color."), None)])
    seen = sorted({token for found in answers for token in found[0].token_ids})
    GenerationConfig(suppress_tokens=seen).save_pretrained(tmp_path / "gen")
    suppressed = _predict(build_config({**raw, "generation_config": str(tmp_path / "gen"),
                                        "output_dir": str(tmp_path / "suppressed")}), greedy_engine)
    assert suppressed != plain
    again = greedy_engine.generate([(_ask("Hi"), None), (_ask("Name a color."), None)])
    assert not {token for found in again for token in found[0].token_ids} & set(seen)
    with pytest.raises(ConfigError, match="no such file"):
        build_config({"generation_config": str(tmp_path / "missing.json")})


def test_ref_model_adapters_are_merged_into_the_reference(tmp_path, tiny_llama_path):
    from lmforge.train.runner import _reference_model
    from lmforge.train.stages import STAGES

    _save_adapter(tmp_path / "ref_adapter")
    raw = {"model_name_or_path": TINY, "stage": "dpo", "finetuning_type": "lora", "ref_model": str(tiny_llama_path)}
    policy = AutoModelForCausalLM.from_pretrained(tiny_llama_path)
    plain = _reference_model(build_config(raw), STAGES.get("dpo"), policy)
    adapted = _reference_model(build_config({**raw, "ref_model_adapters": str(tmp_path / "ref_adapter")}),
                               STAGES.get("dpo"), policy)
    expected = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_llama_path),
                              LoraConfig(r=2, target_modules=["q_proj"]))
    expected.load_adapter(str(tmp_path / "ref_adapter"), adapter_name="default")
    merged = expected.merge_and_unload().model.layers[0].self_attn.q_proj.weight
    weight = adapted.model.layers[0].self_attn.q_proj.weight
    assert not torch.equal(weight, plain.model.layers[0].self_attn.q_proj.weight)
    assert torch.allclose(weight, merged)
    with pytest.raises(ConfigError, match="shape `ref_model`: set `ref_model`"):
        build_config({"ref_model_adapters": str(tmp_path / "ref_adapter")})


def test_reward_model_adapters_put_an_rm_adapter_on_the_reward_model(tmp_path, tiny_llama_path, tiny_tokenizer):
    from transformers import AutoModelForSequenceClassification

    from lmforge.train.rewards.model import reward_model_reward

    torch.manual_seed(0)
    rm = get_peft_model(AutoModelForSequenceClassification.from_pretrained(tiny_llama_path, num_labels=1),
                        LoraConfig(task_type="SEQ_CLS", r=2, target_modules=["q_proj"], init_lora_weights=False))
    rm.save_pretrained(tmp_path / "rm")  # the score head is saved with it, as `stage: rm` saves it
    prompts, completions = ["<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"] * 2, ["Hello", "x"]
    ids = [tiny_tokenizer(text, add_special_tokens=False)["input_ids"] for text in completions]

    def scores(path, adapters=()):
        reward = reward_model_reward(path, tiny_tokenizer, dtype=torch.float32, device="cpu", adapters=adapters)
        return reward.func(prompts=prompts, completions=completions, completion_ids=ids)

    # LLaMA-Factory's layout (reward_model: the base, reward_model_adapters: the rm adapter) scores as the adapter
    assert scores(str(tiny_llama_path), [str(tmp_path / "rm")]) == pytest.approx(scores(str(tmp_path / "rm")))
    _save_adapter(tmp_path / "causal")
    with pytest.raises(RewardError, match="adapter, not a reward model"):
        scores(str(tiny_llama_path), [str(tmp_path / "causal")])


@pytest.mark.parametrize("bits", [4, 8])
def test_quantized_reference_and_reward_models_load_in_their_bits(bits, tmp_path, tiny_llama_path, tiny_tokenizer):
    """`ref_model_quantization_bit` / `reward_model_quantization_bit` through bitsandbytes (its CPU backend here):
    the reference scores as the full-precision one to quantization error, and an rm adapter stays beside the
    quantized reward model's weights with its trained head."""
    from transformers import AutoModelForSequenceClassification

    from lmforge.preflight import preflight
    from lmforge.train.runner import _reference_model
    from lmforge.train.stages import STAGES
    from lmforge.train.stages.online import reward_model_of

    dpo = {"model_name_or_path": TINY, "stage": "dpo", "finetuning_type": "full", "ref_model": str(tiny_llama_path),
           "dataset": "rl_concise_pairs", "dataset_dir": str(ROOT / "examples" / "data"),
           "output_dir": str(tmp_path / "out"), "ref_model_quantization_bit": bits}
    preflight(build_config(dpo), "train")
    policy = AutoModelForCausalLM.from_pretrained(tiny_llama_path)
    reference = _reference_model(build_config(dpo), STAGES.get("dpo"), policy)
    assert type(reference.model.layers[0].self_attn.q_proj).__module__.startswith("bitsandbytes.")
    ids = torch.tensor([[1, 5, 9, 14, 3]])
    with torch.no_grad():
        quantized, full = reference(ids).logits, policy(ids).logits
    assert torch.corrcoef(torch.stack([quantized.flatten(), full.flatten()]))[0, 1] > 0.9
    torch.manual_seed(0)
    rm = get_peft_model(AutoModelForSequenceClassification.from_pretrained(tiny_llama_path, num_labels=1),
                        LoraConfig(task_type="SEQ_CLS", r=2, target_modules=["q_proj"], init_lora_weights=False))
    rm.save_pretrained(tmp_path / "rm")
    ppo = build_config({"model_name_or_path": TINY, "stage": "ppo", "reward_model": str(tmp_path / "rm"),
                        "dataset": "identity", "dataset_dir": str(ROOT / "examples" / "data"),
                        "output_dir": str(tmp_path / "out"), "reward_model_quantization_bit": bits})
    preflight(ppo, "train")
    reward = reward_model_of(ppo, tiny_tokenizer, "cpu")
    prompts, completions = ["<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"] * 2, ["Hello", "x"]
    ids = [tiny_tokenizer(text, add_special_tokens=False)["input_ids"] for text in completions]
    scores = reward.func(prompts=prompts, completions=completions, completion_ids=ids)
    assert len(scores) == 2 and all(math.isfinite(score) for score in scores) and scores[0] != scores[1]


def test_low_cpu_mem_usage_false_loads_the_same_model_as_transformers_ignores_it(tiny_llama_path):
    """Why the key is accepted with both values: transformers 5 drops `low_cpu_mem_usage` and always loads the
    weights straight into place, so LLaMA-Factory's `false` (a full random init first) has nothing to switch."""
    assert build_config({"low_cpu_mem_usage": False}).model.low_cpu_mem_usage is False
    plain = AutoModelForCausalLM.from_pretrained(tiny_llama_path)
    switched = AutoModelForCausalLM.from_pretrained(tiny_llama_path, low_cpu_mem_usage=False)
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), switched.state_dict().values(),
                                                 strict=True))


def test_profile_modules_prints_the_forward_and_backward_time_of_matched_modules(tmp_path, monkeypatch):
    from rich.console import Console

    from lmforge.train.runner import run_training

    monkeypatch.setenv("LMFORGE_HOME", str(tmp_path / "home"))
    console = Console(record=True, width=200)
    run_training(build_config({
        "model_name_or_path": TINY, "template": "chatml", "dataset": "identity",
        "dataset_dir": str(ROOT / "examples" / "data"), "max_samples": 8, "cutoff_len": 64, "max_steps": 2,
        "per_device_train_batch_size": 4, "logging_steps": 1, "save_strategy": "no",
        "output_dir": str(tmp_path / "out"), "profile_modules": "*.layers.0.self_attn,*.layers.*.mlp"}), console)
    lines = [line.strip() for line in console.export_text().splitlines()]
    assert sum(line.startswith("module times at step") for line in lines) == 2  # one per logging step
    timed = [line for line in lines if line.startswith("base_model.model.model.layers.")]
    assert sorted({line.split(":")[0] for line in timed}) == [
        "base_model.model.model.layers.0.mlp", "base_model.model.model.layers.0.self_attn",
        "base_model.model.model.layers.1.mlp"]
    phases = [dict(re.findall(r"(forward|backward) ([\d.]+)", line)) for line in timed]
    assert all(float(times["forward"]) > 0 for times in phases)
    assert any(float(times.get("backward", 0)) > 0 for times in phases)


def test_data_shared_file_system_chooses_which_processes_prepare_the_data(monkeypatch):
    from lmforge.train.launch import prepares_data

    monkeypatch.setenv("RANK", "2")  # the first process of the second node
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert prepares_data(shared_file_system=False) and not prepares_data(shared_file_system=True)
    monkeypatch.setenv("RANK", "0")
    assert prepares_data(shared_file_system=True)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert not prepares_data(shared_file_system=False)


def test_a_process_that_does_not_prepare_the_data_reads_the_preparers_result(tmp_path, monkeypatch, tiny_tokenizer):
    import threading
    import time

    from lmforge.data.templates.registry import get_template
    from tests.stage_data import build_stage_datasets

    monkeypatch.setenv("LMFORGE_HOME", str(tmp_path / "home"))
    cfg = build_config({"dataset": "identity", "dataset_dir": str(ROOT / "examples" / "data"), "cutoff_len": 64})
    results = {}

    def build(name, wait_s):
        results[name] = build_stage_datasets(cfg, tiny_tokenizer, get_template("chatml"), wait_s=wait_s).report

    waiter = threading.Thread(target=build, args=("waiter", 60))
    waiter.start()  # first, so without waiting it would find no cache and prepare the data itself
    time.sleep(1)
    build("preparer", 0)
    waiter.join()
    assert results["preparer"].from_cache is None  # prepared here
    assert str(tmp_path / "home" / "datasets") in results["waiter"].from_cache  # waited, then read the cache
    assert results["waiter"].examples == results["preparer"].examples
