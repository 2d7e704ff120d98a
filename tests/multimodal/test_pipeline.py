"""The data pipeline with a multimodal processor, end to end: LLaMA-Factory's demo data (and a
multimodal pretraining corpus with text-only documents mixed in) -> build_datasets -> the plugin
collator -> LmforgeTrainer on a tiny Qwen2-VL."""

import json

import pytest
import torch
from transformers import TrainingArguments

from lmforge.config import build_config
from lmforge.data.multimodal.examples import ROW_COLUMN
from lmforge.data.templates import get_template
from lmforge.errors import DataError
from lmforge.train.trainer import LmforgeTrainer
from tests.multimodal.conftest import load_vlm
from tests.refdata import refdata
from tests.stage_data import build_stage_datasets


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMFORGE_HOME", str(tmp_path / "home"))


def train_two_steps(cfg, processor, model, tmp_path):
    template = get_template("chatml")
    prepared = build_stage_datasets(cfg, processor.tokenizer, template, processor, model_config=model.config)
    assert prepared.train.column_names == [ROW_COLUMN]
    args = TrainingArguments(output_dir=str(tmp_path / "out"), max_steps=2, per_device_train_batch_size=4,
                             learning_rate=1e-3, report_to=[], remove_unused_columns=False, save_strategy="no",
                             dataloader_pin_memory=False, use_cpu=True)
    trainer = LmforgeTrainer(model=model, args=args, train_dataset=prepared.train,
                             data_collator=prepared.collator)
    result = trainer.train()
    assert torch.isfinite(torch.tensor(result.training_loss))
    assert trainer.token_counts.supervised_tokens > 0
    return prepared, trainer


@pytest.mark.slow
def test_sft_on_mllm_demo_mixed_with_text_rows(tiny_vlm, tmp_path):
    data = refdata("llamafactory_data")
    processor, model = load_vlm(tiny_vlm("qwen2_vl"), "qwen2_vl")
    cfg = build_config({"stage": "sft", "dataset": "mllm_demo,identity", "dataset_dir": str(data),
                        "cutoff_len": 1024, "max_samples": 4, "image_max_pixels": 64 * 64})
    prepared, trainer = train_two_steps(cfg, processor, model, tmp_path)
    assert prepared.report.rows_per_dataset == {"mllm_demo": 4, "identity": 4}
    assert trainer.token_counts.samples == 8


@pytest.mark.slow
def test_pt_with_images_and_text_only_documents_packs(tiny_vlm, tmp_path):
    images = refdata("llamafactory_data", "mllm_demo_data")
    rows = [{"text": f"Picture {i}: <image> shows a football match.", "images": [str(images / f"{i}.jpg")]}
            for i in (1, 2, 3)] + [{"text": "Football is played by two teams of eleven players."}] * 3
    (tmp_path / "docs.jsonl").write_text("\n".join(map(json.dumps, rows)))
    (tmp_path / "dataset_info.json").write_text(json.dumps(
        {"docs": {"file_name": "docs.jsonl", "columns": {"prompt": "text", "images": "images"}}}))
    processor, model = load_vlm(tiny_vlm("qwen2_vl"), "qwen2_vl")
    cfg = build_config({"stage": "pt", "dataset": "docs", "dataset_dir": str(tmp_path), "cutoff_len": 256,
                        "image_max_pixels": 64 * 64})
    prepared = build_stage_datasets(cfg, processor.tokenizer, get_template("chatml"), processor,
                                    model_config=model.config)  # whether packing keeps examples apart
    assert prepared.collator.packing  # packing is on by default for pt
    batch = prepared.collator([prepared.train[i] for i in range(6)])
    assert batch["input_ids"].shape[0] == 1 and batch["position_ids"].shape[:2] == (4, 1)
    assert int(batch["num_examples"]) == 6 and batch["image_grid_thw"].shape[0] == 3
    train_two_steps(cfg, processor, model, tmp_path)


def test_media_rows_without_a_multimodal_processor_fail_clearly(tiny_tokenizer):
    cfg = build_config({"dataset": "mllm_demo", "dataset_dir": str(refdata("llamafactory_data")), "max_samples": 2})
    with pytest.raises(DataError, match=r"mllm_demo\.json:row 1: has images"):
        build_stage_datasets(cfg, tiny_tokenizer, get_template("chatml"))


def test_placeholder_mismatch_is_a_bad_row(tiny_vlm, tmp_path):
    image = str(refdata("llamafactory_data", "mllm_demo_data", "1.jpg"))
    rows = [{"messages": [{"role": "user", "content": "<image>Who?"}, {"role": "assistant", "content": "Kane."}],
             "images": [image]},
            {"messages": [{"role": "user", "content": "Who?"}, {"role": "assistant", "content": "Kane."}],
             "images": [image]}]
    (tmp_path / "mm.json").write_text(json.dumps(rows))
    (tmp_path / "dataset_info.json").write_text(json.dumps({"mm": {
        "file_name": "mm.json", "formatting": "sharegpt", "columns": {"messages": "messages", "images": "images"},
        "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}}}))
    processor, _ = load_vlm(tiny_vlm("qwen2_vl"), "qwen2_vl")
    options = {"dataset": "mm", "dataset_dir": str(tmp_path)}
    with pytest.raises(DataError, match=r"mm\.json:row 2: 0 `<image>` placeholder\(s\) in the messages but 1 images"):
        build_stage_datasets(build_config(options), processor.tokenizer, get_template("chatml"), processor)
    prepared = build_stage_datasets(build_config({**options, "on_bad_row": "skip"}), processor.tokenizer,
                              get_template("chatml"), processor)
    assert len(prepared.train) == 1 and prepared.report.skipped[0].startswith(f"{tmp_path / 'mm.json'}:row 2")


def test_streaming_yields_rows_the_collator_encodes(tiny_vlm):
    processor, _ = load_vlm(tiny_vlm("qwen2_vl"), "qwen2_vl")
    cfg = build_config({"stage": "sft", "dataset": "mllm_demo", "dataset_dir": str(refdata("llamafactory_data")),
                        "streaming": True, "max_steps": 2, "image_max_pixels": 64 * 64})
    template = get_template("chatml")
    prepared = build_stage_datasets(cfg, processor.tokenizer, template, processor)
    rows = list(prepared.train.take(3))
    batch = prepared.collator(rows)
    assert batch["input_ids"].shape[0] == 3 and batch["image_grid_thw"].shape[0] == 4  # row 1 has two images


@pytest.mark.parametrize(("family", "dataset"), [("qwen2_audio", "mllm_audio_demo"), ("qwen2_vl", "mllm_video_demo")])
def test_audio_and_video_demo_datasets_through_the_pipeline(family, dataset, tiny_vlm):
    processor, model = load_vlm(tiny_vlm(family), family)
    cfg = build_config({"stage": "sft", "dataset": dataset, "dataset_dir": str(refdata("llamafactory_data")),
                        "cutoff_len": 2048, "video_max_pixels": 32 * 32, "video_maxlen": 4})
    template = get_template("chatml")
    prepared = build_stage_datasets(cfg, processor.tokenizer, template, processor)
    batch = prepared.collator([prepared.train[i] for i in range(2)])
    assert {"input_features", "pixel_values_videos"} & set(batch)
    assert torch.isfinite(model(**batch).loss)


def test_report_counts_the_text_tokens_and_media_of_multimodal_rows(tiny_vlm):
    processor, _ = load_vlm(tiny_vlm("qwen2_vl"), "qwen2_vl")
    options = {"stage": "sft", "dataset_dir": str(refdata("llamafactory_data")), "max_samples": 4}
    template = get_template("chatml")
    report = build_stage_datasets(build_config({**options, "dataset": "mllm_demo,identity"}), processor.tokenizer,
                                  template, processor).report
    text_only = build_stage_datasets(build_config({**options, "dataset": "identity"}), processor.tokenizer,
                                     template).report
    assert report.multimodal and report.media_items == {"images": 6}
    assert report.tokens > text_only.tokens > 0 and report.supervised_tokens > text_only.supervised_tokens > 0
    lines = [text for _, text in report.lines()]
    assert lines[2].startswith(f"text tokens: {report.tokens:,}, supervised: {report.supervised_tokens:,}")
    assert lines[3].startswith("media: 6 images; text tokens count each placeholder as written")


def test_the_templates_plugin_must_be_the_processors(tiny_vlm):
    from lmforge.data.multimodal.plugin import plugin_for_template
    from lmforge.errors import TemplateError

    processor, _ = load_vlm(tiny_vlm("qwen2_vl"), "qwen2_vl")
    assert plugin_for_template(processor, get_template("qwen2_vl")).name == "qwen2_vl"
    assert plugin_for_template(processor, get_template("chatml")).name == "qwen2_vl"  # a text template names none
    with pytest.raises(TemplateError, match="template `gemma3` is made for `gemma3` models"):
        plugin_for_template(processor, get_template("gemma3"))


def test_a_stage_without_media_reads_a_multimodal_models_rows_as_text(tiny_vlm):
    """Every builtin stage takes media now; a stage whose data part takes none (here the online stages' prompt
    rows without their media) reads a multimodal model's rows as text and says so."""
    from dataclasses import replace

    from lmforge.data.dataset import build_datasets
    from lmforge.train.stages.online import ONLINE

    processor, _ = load_vlm(tiny_vlm("qwen2_vl"), "qwen2_vl")
    cfg = build_config({"stage": "grpo", "dataset": "alpaca_en_demo", "max_samples": 2,
                        "dataset_dir": str(refdata("llamafactory_data"))})
    text_prompts = replace(ONLINE, media=False, media_in_columns=False)
    prepared = build_datasets(cfg.data, processor.tokenizer, get_template("chatml"), processor, stage=text_prompts,
                              stage_name="prompts_only", seed=cfg.training.seed)
    assert prepared.collator is None
    assert ("warn", "`stage: prompts_only` takes no media: this run trains on text only") in prepared.report.lines()


@pytest.mark.parametrize(("stage", "dataset"), [("rm", "dpo_en_demo"), ("kto", "kto_en_demo")])
def test_rm_and_kto_keep_a_multimodal_models_rows_for_its_collator(stage, dataset, tiny_vlm):
    processor, _ = load_vlm(tiny_vlm("qwen2_vl"), "qwen2_vl")
    cfg = build_config({"stage": stage, "dataset": dataset, "dataset_dir": str(refdata("llamafactory_data")),
                        "max_samples": 2})
    prepared = build_stage_datasets(cfg, processor.tokenizer, get_template("chatml"), processor)
    assert prepared.collator is not None and prepared.report.text_only is None
    assert not [text for level, text in prepared.report.lines() if level == "warn"]


def test_mllm_demo_given_as_a_file_path_keeps_its_images_as_registered(tiny_vlm, tmp_path):
    data = refdata("llamafactory_data")
    processor, _ = load_vlm(tiny_vlm("qwen2_vl"), "qwen2_vl")
    options = {"stage": "sft", "cutoff_len": 1024, "image_max_pixels": 64 * 64}
    registered = build_stage_datasets(build_config({**options, "dataset": "mllm_demo", "dataset_dir": str(data)}),
                                      processor.tokenizer, get_template("chatml"), processor)
    # not registered: the file's path, with a dataset_dir that has no dataset_info.json
    direct = build_stage_datasets(build_config({**options, "dataset": str(data / "mllm_demo.json"),
                                                "dataset_dir": str(tmp_path)}),
                                  processor.tokenizer, get_template("chatml"), processor)
    assert direct.report.media_items == registered.report.media_items
    assert registered.report.media_items["images"] >= len(registered.train) > 0
    assert len(direct.train) == len(registered.train)
    first = direct.collator([direct.train[0]])
    assert first["pixel_values"].shape == registered.collator([registered.train[0]])["pixel_values"].shape
