"""KTO and reward-model (`stage: rm`) training on vision-language models: their rows keep their images
through the encoder DPO uses (one processing of a row's media for every answer built on it), exactly the
labeled / ranked answers are supervised or scored, and trl's trainers take two steps on the batches."""

import copy
import json
import math

import pytest
import torch
from transformers import AutoConfig

from lmforge.config import build_config
from lmforge.data.templates import get_template
from lmforge.data.templates.encoding import encode_conversation
from lmforge.data.templates.messages import message_from_record
from lmforge.data.templates.template import Message
from lmforge.model.kind import detect_kind
from lmforge.model.loading import load_reward_model
from lmforge.model.reward_head import reward_model_class
from lmforge.train.runner import training_kwargs
from lmforge.train.stages import STAGES
from lmforge.train.stages.kto import MultimodalLabeled
from lmforge.train.stages.rm import MultimodalScoredPairs
from tests.multimodal.conftest import load_vlm
from tests.multimodal.test_dpo import ranking_dataset
from tests.refdata import refdata
from tests.stage_data import build_stage_datasets

FAMILIES = ["qwen2_vl", "llava"]
TAGS = {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMFORGE_HOME", str(tmp_path / "home"))


def labeled_dataset(folder):
    """mllm_demo's first rows (multi-turn, one with two images) as KTO rows, desirable and not in turn."""
    data = refdata("llamafactory_data")
    rows = json.loads((data / "mllm_demo.json").read_text())[:4]
    labeled = [{"messages": row["messages"], "images": [str(data / path) for path in row["images"]],
                "label": index % 2 == 0} for index, row in enumerate(rows)]
    (folder / "mm_kto.json").write_text(json.dumps(labeled))
    (folder / "dataset_info.json").write_text(json.dumps({"mm_kto": {
        "file_name": "mm_kto.json", "formatting": "sharegpt", "tags": TAGS,
        "columns": {"messages": "messages", "images": "images", "kto_tag": "label"}}}))
    return labeled


def config(folder, stage, dataset, **options):
    return build_config({"model_name_or_path": str(folder), "stage": stage, "dataset": dataset,
                         "dataset_dir": str(options.pop("dataset_dir")), "cutoff_len": 1024,
                         "image_max_pixels": 64 * 64, "per_device_train_batch_size": 2, "max_steps": 2,
                         "logging_steps": 1, "save_strategy": "no", "finetuning_type": "full",
                         "learning_rate": 1e-3, "output_dir": str(options.pop("output_dir")), **options})


def answer_ids(tokenizer, messages):
    """The last answer's ids (with its end of turn) as the text template encodes them."""
    return encode_conversation(get_template("chatml"), tokenizer, messages).turns[-1][1]


def supervised(ids, mask):
    return [token for token, keep in zip(ids.tolist(), mask.tolist(), strict=True) if keep]


def image_tokens(processor, ids):
    return int((ids == processor.tokenizer.convert_tokens_to_ids(processor.image_token)).sum())


@pytest.mark.parametrize("family", FAMILIES)
def test_kto_rows_carry_their_images_and_supervise_only_the_labeled_answer(family, tiny_vlm, tmp_path):
    rows = labeled_dataset(tmp_path)
    folder = tiny_vlm(family)
    processor, model = load_vlm(folder, family)
    cfg = config(folder, "kto", "mm_kto", dataset_dir=tmp_path, output_dir=tmp_path / "out")
    prepared = build_stage_datasets(cfg, processor.tokenizer, get_template("chatml"), processor)
    assert prepared.report.media_items == {"images": sum(len(row["images"]) for row in rows)}
    assert prepared.report.text_only is None
    batch = MultimodalLabeled(prepared.collator)([prepared.train[i] for i in range(4)])
    assert batch["pixel_values"].shape[0] > 0 and batch["label"].tolist() == [True, False, True, False]
    assert batch["input_ids"].shape == batch["KL_input_ids"].shape  # one length: the media tensors serve both
    answers = [answer_ids(processor.tokenizer, [Message(m["role"], m["content"]) for m in row["messages"]])
               for row in rows]
    for index in range(4):
        # only the last answer: the earlier assistant turns of these multi-turn rows are prompt
        assert supervised(batch["input_ids"][index], batch["completion_mask"][index]) == answers[index]
        # KL pair: this row's prompt and media, the previous row's answer (trl's pairing within a batch)
        assert supervised(batch["KL_input_ids"][index], batch["KL_completion_mask"][index]) == answers[index - 1]
        assert image_tokens(processor, batch["input_ids"][index]) == image_tokens(
            processor, batch["KL_input_ids"][index]) > 0
    with torch.no_grad():
        assert torch.isfinite(model(**{key: value for key, value in batch.items()
                                       if not key.startswith("KL_") and key not in ("label", "completion_mask")}
                                    ).logits).all()


@pytest.mark.parametrize("family", FAMILIES)
def test_kto_on_a_vlm_takes_two_steps_with_the_images(family, tiny_vlm, tmp_path):
    labeled_dataset(tmp_path)
    folder = tiny_vlm(family)
    processor, model = load_vlm(folder, family)
    cfg = config(folder, "kto", "mm_kto", dataset_dir=tmp_path, output_dir=tmp_path / "out")
    prepared = build_stage_datasets(cfg, processor.tokenizer, get_template("chatml"), processor)
    reference = copy.deepcopy(model).eval()
    trainer = STAGES.get("kto").build_trainer(cfg, model, processor.tokenizer, prepared, training_kwargs(cfg),
                                              reference)
    batch = next(iter(trainer.get_train_dataloader()))
    assert "pixel_values" in batch and "KL_input_ids" in batch
    before = copy.deepcopy(model.state_dict())
    trainer.train()
    losses = [log["loss"] for log in trainer.state.log_history if "loss" in log]
    assert trainer.state.global_step == 2 and len(losses) == 2 and all(map(math.isfinite, losses))
    assert any(not torch.equal(before[key], value) for key, value in model.state_dict().items())


@pytest.mark.parametrize("family", FAMILIES)
def test_a_vlm_reward_model_scores_each_answer_with_its_images_and_trains(family, tiny_vlm, tmp_path):
    ranking_dataset(tmp_path)
    folder = tiny_vlm(family)
    processor, _ = load_vlm(folder, family)
    cfg = config(folder, "rm", "mm_dpo", dataset_dir=tmp_path, output_dir=tmp_path / "out")
    prepared = build_stage_datasets(cfg, processor.tokenizer, get_template("chatml"), processor)
    assert prepared.collator is not None and prepared.report.text_only is None
    kind = detect_kind(AutoConfig.from_pretrained(folder))
    model = load_reward_model(cfg.model, processor.tokenizer, dtype=torch.float32, kind=kind)
    assert type(model).__name__.endswith("ForSequenceClassification")
    trainer = STAGES.get("rm").build_trainer(cfg, model, processor.tokenizer, prepared, training_kwargs(cfg))
    features = [prepared.train[i] for i in range(2)]
    batch = MultimodalScoredPairs(prepared.collator)(features)
    assert set(batch) >= {"input_ids", "attention_mask", "pixel_values"} and "labels" not in batch
    rows = [json.loads(feature["mm_example"]) for feature in features]
    answers = [answer_ids(processor.tokenizer, [message_from_record(m) for m in row["prompt"]]
                          + [Message("assistant", row[key])]) for key in ("chosen", "rejected") for row in rows]
    for index, answer in enumerate(answers):  # the head reads the last token: the end of the answer it scores
        length = int(batch["attention_mask"][index].sum())
        assert batch["input_ids"][index, length - len(answer):length].tolist() == answer
        assert image_tokens(processor, batch["input_ids"][index]) > 0
    with torch.no_grad():
        scores = model(**batch).logits
    assert scores.shape == (4, 1)
    head = model.score.weight.detach().clone()
    trainer.train()
    losses = [log["loss"] for log in trainer.state.log_history if "loss" in log]
    assert trainer.state.global_step == 2 and all(map(math.isfinite, losses))
    assert not torch.equal(head, model.score.weight)
    model.save_pretrained(tmp_path / "saved")  # a full run's output, reloaded by the same class
    reloaded = reward_model_class(kind).from_pretrained(tmp_path / "saved").eval()
    with torch.no_grad():
        # to the kernels' rounding: the trained model's linear layers may run on oneDNN (`cpu_matmul`)
        torch.testing.assert_close(reloaded(**batch).logits, model.eval()(**batch).logits, rtol=1e-2, atol=2e-3)
