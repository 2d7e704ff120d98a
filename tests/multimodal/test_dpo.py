"""Multimodal DPO data: ranking rows with images -> chosen and rejected rows sharing one decoding of
the media; a DPO step on a tiny Qwen2-VL moves the policy towards the chosen answers."""

import copy
import json

import pytest
import torch
import torch.nn.functional as F

from lmforge.config import build_config
from lmforge.data.labels import IGNORE_INDEX
from lmforge.data.templates import get_template
from tests.multimodal.conftest import load_vlm
from tests.refdata import refdata
from tests.stage_data import build_stage_datasets


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMFORGE_HOME", str(tmp_path / "home"))


def ranking_dataset(folder):
    """mllm_demo's first turns as ranking rows: the real answer is chosen, another row's is rejected."""
    data = refdata("llamafactory_data")
    rows = json.loads((data / "mllm_demo.json").read_text())[:4]
    ranked = [{"conversations": [{"from": "human", "value": row["messages"][0]["content"]}],
               "chosen": {"from": "gpt", "value": row["messages"][1]["content"]},
               "rejected": {"from": "gpt", "value": rows[(i + 1) % len(rows)]["messages"][1]["content"]},
               "images": [str(data / row["images"][0])]} for i, row in enumerate(rows)]
    (folder / "mm_dpo.json").write_text(json.dumps(ranked))
    (folder / "dataset_info.json").write_text(json.dumps({"mm_dpo": {
        "file_name": "mm_dpo.json", "ranking": True, "formatting": "sharegpt",
        "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected", "images": "images"}}}))


def sequence_logps(model, batch):
    logits = model(**batch).logits[:, :-1]
    labels = batch["labels"][:, 1:]
    mask = labels != IGNORE_INDEX
    per_token = torch.gather(logits.log_softmax(-1), 2, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (per_token * mask).sum(-1)


def test_dpo_rows_pair_chosen_and_rejected_with_shared_images(tiny_vlm, tmp_path):
    ranking_dataset(tmp_path)
    processor, policy = load_vlm(tiny_vlm("qwen2_vl"), "qwen2_vl")
    reference = copy.deepcopy(policy).eval()
    cfg = build_config({"stage": "dpo", "dataset": "mm_dpo", "dataset_dir": str(tmp_path), "cutoff_len": 512,
                        "image_max_pixels": 64 * 64})
    template = get_template("chatml")
    prepared = build_stage_datasets(cfg, processor.tokenizer, template, processor)
    batch = prepared.collator([prepared.train[i] for i in range(4)])
    assert batch["input_ids"].shape[0] == 8 and batch["image_grid_thw"].shape[0] == 8
    torch.testing.assert_close(batch["image_grid_thw"][:4], batch["image_grid_thw"][4:])
    chosen_prompt = batch["input_ids"][0][batch["labels"][0] == IGNORE_INDEX]
    rejected_prompt = batch["input_ids"][4][batch["labels"][4] == IGNORE_INDEX]
    assert torch.equal(chosen_prompt[:20], rejected_prompt[:20])  # the same prompt, image tokens included

    optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-3)
    with torch.no_grad():
        ref = sequence_logps(reference, batch)
    losses = []
    for _ in range(3):
        logps = sequence_logps(policy, batch)
        margin = (logps[:4] - ref[:4]) - (logps[4:] - ref[4:])
        loss = -F.logsigmoid(0.1 * margin).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert abs(losses[0] - torch.log(torch.tensor(2.0)).item()) < 1e-4  # policy == reference at the start
    assert losses[-1] < losses[0]
