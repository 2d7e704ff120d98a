import json

import pytest

from lmforge.config import build_config
from lmforge.data.preference_rows import convert_preference
from lmforge.data.registry import resolve_dataset
from lmforge.data.templates import get_template
from lmforge.errors import DataError
from tests.refdata import refdata
from tests.stage_data import build_stage_datasets


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMFORGE_HOME", str(tmp_path / "home"))


def build(tokenizer, stage, **options):
    cfg = build_config({"cutoff_len": 256, "stage": stage, **options})
    return build_stage_datasets(cfg, tokenizer, get_template("chatml"))


def test_dpo_demo_becomes_prompt_chosen_rejected_ids(tiny_tokenizer):
    prepared = build(tiny_tokenizer, "dpo", dataset="dpo_en_demo",
                     dataset_dir=str(refdata("llamafactory_data")), max_samples=20)
    row = prepared.train[0]
    assert set(prepared.train.column_names) == {"prompt_ids", "chosen_ids", "rejected_ids"}
    prompt = tiny_tokenizer.decode(row["prompt_ids"])
    assert prompt.startswith("<|im_start|>user\n") and prompt.endswith("<|im_start|>assistant\n")
    end = tiny_tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert all(r["chosen_ids"][-1] == end for r in prepared.train if len(r["prompt_ids"]) + len(r["chosen_ids"]) < 256)
    assert all(len(r["prompt_ids"]) + max(len(r["chosen_ids"]), len(r["rejected_ids"])) <= 256 for r in prepared.train)
    assert prepared.report.truncated > 0  # some demo answers are longer than 256 tokens


def test_kto_demo_has_labels_and_mismatched_kl_pairs(tiny_tokenizer):
    prepared = build(tiny_tokenizer, "kto", dataset="kto_en_demo",
                     dataset_dir=str(refdata("llamafactory_data")), max_samples=10)
    train = prepared.train
    assert set(train["label"]) == {True, False}
    assert train[0]["KL_completion_ids"] == train[1]["completion_ids"][: 256 - len(train[0]["prompt_ids"])]


def test_alpaca_ranking_rows_and_errors(tmp_path, tiny_tokenizer):
    rows = [{"instruction": "Pick", "input": "", "output": ["good", "bad"]}]
    (tmp_path / "r.json").write_text(json.dumps(rows))
    (tmp_path / "dataset_info.json").write_text(json.dumps({"r": {"file_name": "r.json", "ranking": True}}))
    spec = resolve_dataset("r", tmp_path)
    pref = convert_preference(rows[0], spec, "r.json:row 1")
    assert (pref.chosen, pref.rejected, pref.prompt[-1].content) == ("good", "bad", "Pick")
    with pytest.raises(DataError, match="must be \\[chosen, rejected\\]"):
        convert_preference({"instruction": "x", "output": "only one"}, spec, "r.json:row 2")
    with pytest.raises(DataError, match="`stage: sft` needs non-ranking rows"):
        build(tiny_tokenizer, "sft", dataset="r", dataset_dir=str(tmp_path))
    with pytest.raises(DataError, match="`stage: dpo` needs a ranking dataset"):
        build(tiny_tokenizer, "dpo", dataset="identity", dataset_dir="examples/data")

