"""GRPO/RLOO on a vision-language model: prompts with images (LLaMA-Factory's mllm_demo) rendered by the run's
template and expanded by the model's processor exactly as SFT encodes the prompt of the answer it trains, handed
to trl's trainers in the form they take; and a couple of GRPO steps through the CLI."""

import json

import pytest
import torch
from trl.data_utils import apply_chat_template, prepare_multimodal_messages

from lmforge.config import build_config
from lmforge.data.templates import get_template
from lmforge.errors import DataError
from lmforge.train.media_prompts import media_prompts, prompt_text
from tests.conftest import run_cli
from tests.refdata import refdata
from tests.stage_data import build_stage_datasets


@pytest.fixture
def stage_keys() -> dict:
    """The GRPO keys over LLaMA-Factory's image demo (a fixture: the tests skip where ../shared/refdata is absent)."""
    return {"dataset": "mllm_demo", "dataset_dir": str(refdata("llamafactory_data")), "max_samples": 3,
            "cutoff_len": 2048, "image_max_pixels": 4096, "reward_funcs": "length", "reward_length_target": 4,
            "num_generations": 2, "per_device_train_batch_size": 2}


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMFORGE_HOME", str(tmp_path / "home"))


def test_image_prompts_are_what_sft_encodes_before_the_answer(tiny_vlm, stage_keys):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_vlm("qwen2_vl"))
    template = get_template("qwen2_vl")
    prepared = build_stage_datasets(build_config({"stage": "grpo", **stage_keys}), processor.tokenizer, template,
                                    processor)
    rows = [prepared.train[i] for i in range(3)]
    assert prepared.report.media_items == {"images": sum(len(row["prompt_images"]) for row in rows)}
    assert all(row["prompt"].count("<image>") == len(row["prompt_images"]) > 0 for row in rows)
    media = media_prompts(prepared.collator)
    converted = media.trl_rows(rows)
    # trl adds the image blocks itself (prepare_multimodal_messages), then asks for the generation inputs
    prompts = [prepare_multimodal_messages(row["prompt"], images=row["images"]) for row in converted]
    ids, images, fields = media.tokenize(prompts)
    assert [len(found) for found in images] == [len(row["prompt_images"]) for row in rows]

    sft = build_stage_datasets(build_config({"stage": "sft", "mask_history": True, **stage_keys}), processor.tokenizer,
                               template, processor)
    batch = sft.collator([sft.train[i] for i in range(3)])
    for row, prompt_ids, input_ids, labels in zip(rows, ids, batch["input_ids"], batch["labels"], strict=True):
        answer_start = next(i for i, label in enumerate(labels.tolist()) if label != -100)
        assert prompt_ids == input_ids[:answer_start].tolist(), row["prompt_source"]
    torch.testing.assert_close(torch.as_tensor(fields["pixel_values"]), batch["pixel_values"])
    torch.testing.assert_close(torch.as_tensor(fields["image_grid_thw"]), batch["image_grid_thw"])
    # the rewards read the rendered prompt text
    assert prompt_text(prompts[0]) == converted[0]["prompt"][0]["content"]


def test_gemma3_prompts_are_what_trls_processor_call_sees_with_a_bos_adding_tokenizer(tiny_vlm, stage_keys):
    """Gemma 3's tokenizer adds its BOS, which the rendered prompt already holds. trl's processor call for the
    pixel tensors and `token_type_ids` lets the tokenizer add it: the chat template lmforge gives that call leaves
    the rendered one out, so the call sees the ids generation saw (one BOS, image tokens where they are)."""
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_vlm("gemma3"))
    tokenizer = processor.tokenizer
    tokenizer.add_bos_token = True  # as Gemma 3's own tokenizer
    tokenizer.update_post_processor()
    assert tokenizer("a")["input_ids"][0] == tokenizer.bos_token_id
    prepared = build_stage_datasets(build_config({"stage": "grpo", **stage_keys}), tokenizer, get_template("gemma3"),
                                    processor)
    media = media_prompts(prepared.collator)
    rows = media.trl_rows([prepared.train[i] for i in range(3)])
    prompts = [prepare_multimodal_messages(row["prompt"], images=row["images"]) for row in rows]
    ids, images, fields = media.tokenize(prompts)  # rows of 1 and 2 images: each prompt with its own
    assert all(prompt_ids[0] == tokenizer.bos_token_id != prompt_ids[1] for prompt_ids in ids)

    # what GRPOTrainer._generate_and_score_completions asks the processor for the model's image inputs
    texts = [apply_chat_template({"prompt": prompt}, processor, chat_template=media.trl_chat_template())["prompt"]
             for prompt in prompts]
    trl_call = processor(images=images, text=texts)
    assert trl_call["input_ids"] == ids
    assert trl_call["token_type_ids"] == fields["token_type_ids"]
    assert [sum(types) for types in trl_call["token_type_ids"]] == [4 * len(found) for found in images]


def test_text_only_model_refuses_image_prompts_with_the_fix(tmp_path, tiny_tokenizer, stage_keys):
    cfg = build_config({"stage": "grpo", **stage_keys})
    with pytest.raises(DataError, match="the model is text-only: train a vision-language model"):
        build_stage_datasets(cfg, tiny_tokenizer, get_template("qwen2_vl"))


@pytest.mark.slow
def test_grpo_steps_on_image_prompts_through_the_cli(tiny_vlm, tmp_path, stage_keys):
    config = tmp_path / "run.yaml"
    config.write_text("finetuning_type: lora\nlora_target: all\n")
    out = tmp_path / "out"
    keys = {**stage_keys, "max_samples": 4}
    result = run_cli("train", str(config), f"model_name_or_path={tiny_vlm('qwen2_vl')}", "template=qwen2_vl",
                     "stage=grpo", *(f"{key}={value}" for key, value in keys.items()), "max_completion_length=8",
                     "max_steps=2", "logging_steps=1", "report_to=none", "rollout_log_steps=1", f"output_dir={out}")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "media: " in result.stdout and " images;" in result.stdout
    logs = [json.loads(line) for line in (out / "trainer_log.jsonl").read_text().splitlines()]
    assert [log["current_steps"] for log in logs if "reward" in log] == [1, 2]
    samples = [json.loads(line) for line in (out / "rollout_samples.jsonl").read_text().splitlines()]
    assert samples and all("<|vision_start|><|image_pad|><|vision_end|>" in sample["prompt"] for sample in samples)
    assert (out / "adapter_model.safetensors").is_file() and (out / "processor_config.json").is_file()
