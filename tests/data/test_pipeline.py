import json

import pytest

from lmforge.config import build_config
from lmforge.data.processors.pt import tokenize_pt
from lmforge.data.templates import get_template
from lmforge.errors import ConfigError, DataError
from tests.refdata import refdata
from tests.stage_data import build_stage_datasets


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMFORGE_HOME", str(tmp_path / "home"))


def make_data(folder, name, count, offset=0):
    rows = [{"instruction": f"{name} question {i}", "output": f"{name} answer {i}"} for i in range(offset, count)]
    (folder / f"{name}.json").write_text(json.dumps(rows))
    info_path = folder / "dataset_info.json"
    info = json.loads(info_path.read_text()) if info_path.exists() else {}
    info[name] = {"file_name": f"{name}.json"}
    info_path.write_text(json.dumps(info))


def build(tokenizer, **options):
    cfg = build_config({"cutoff_len": 64, **options})
    return build_stage_datasets(cfg, tokenizer, get_template("chatml"))


def test_cache_reuses_exact_inputs_and_rebuilds_on_any_change(tmp_path, tiny_tokenizer):
    make_data(tmp_path, "a", 10)
    first = build(tiny_tokenizer, dataset="a", dataset_dir=str(tmp_path))
    assert first.report.from_cache is None
    second = build(tiny_tokenizer, dataset="a", dataset_dir=str(tmp_path))
    assert second.report.from_cache and second.train["input_ids"] == first.train["input_ids"]
    assert build(tiny_tokenizer, dataset="a", dataset_dir=str(tmp_path), cutoff_len=32).report.from_cache is None
    make_data(tmp_path, "a", 11)  # the data changed on disk
    changed = build(tiny_tokenizer, dataset="a", dataset_dir=str(tmp_path))
    assert changed.report.from_cache is None and len(changed.train) == 11
    forced = build(tiny_tokenizer, dataset="a", dataset_dir=str(tmp_path), overwrite_cache=True)
    assert forced.report.from_cache is None


def test_tokenized_path_saves_then_loads(tmp_path, tiny_tokenizer):
    make_data(tmp_path, "a", 5)
    saved = tmp_path / "tokenized"
    first = build(tiny_tokenizer, dataset="a", dataset_dir=str(tmp_path), tokenized_path=str(saved))
    assert first.report.from_cache is None and (saved / "report.json").is_file()
    again = build(tiny_tokenizer, dataset="missing-is-fine-once-tokenized", tokenized_path=str(saved))
    assert again.report.from_cache == str(saved) and len(again.train) == 5


def test_mix_strategies(tmp_path, tiny_tokenizer):
    make_data(tmp_path, "a", 10)
    make_data(tmp_path, "b", 4)
    common = {"dataset": "a,b", "dataset_dir": str(tmp_path)}
    assert len(build(tiny_tokenizer, **common).train) == 14
    under = build(tiny_tokenizer, **common, mix_strategy="interleave_under", interleave_probs="0.5,0.5", seed=1)
    over = build(tiny_tokenizer, **common, mix_strategy="interleave_over", interleave_probs="0.5,0.5", seed=1)
    assert len(under.train) < 14 < len(over.train)
    again = build(tiny_tokenizer, **common, mix_strategy="interleave_under", interleave_probs="0.5,0.5", seed=1,
                  overwrite_cache=True)
    assert again.train["input_ids"] == under.train["input_ids"]  # deterministic by seed
    with pytest.raises(ConfigError, match="has 1 values for 2 datasets"):
        build_config({**common, "mix_strategy": "interleave_under", "interleave_probs": "1.0"})


def test_eval_dataset_and_max_samples(tmp_path, tiny_tokenizer):
    make_data(tmp_path, "a", 10)
    make_data(tmp_path, "b", 6)
    prepared = build(tiny_tokenizer, dataset="a", eval_dataset="b", dataset_dir=str(tmp_path), max_samples=4)
    assert (len(prepared.train), len(prepared.evaluation)) == (4, 4)
    assert prepared.report.rows_per_dataset == {"a": 4}


def test_packing_reports_efficiency_and_keeps_examples(tmp_path, tiny_tokenizer):
    make_data(tmp_path, "a", 40)
    prepared = build(tiny_tokenizer, dataset="a", dataset_dir=str(tmp_path), packing=True, cutoff_len=128)
    report = prepared.report
    assert report.examples == 40 and report.packed_rows < 40 and 0.5 < report.packing_efficiency <= 1
    assert sum(row.count(0) for row in prepared.train["position_ids"]) == 40
    assert build_config({"neat_packing": True}).data.packing_enabled(by_default=False)


def test_answers_cut_by_truncation_are_warned_about(tmp_path, tiny_tokenizer):
    rows = [{"instruction": "q", "output": "a very long answer " * 40}]
    (tmp_path / "long.json").write_text(json.dumps(rows))
    prepared = build(tiny_tokenizer, dataset=str(tmp_path / "long.json"), cutoff_len=32)
    assert prepared.report.truncated == 1 and prepared.report.answers_without_end == 1
    assert any("will not learn to stop" in text for level, text in prepared.report.lines() if level == "warn")


def test_streaming_builds_lazily_and_needs_max_steps(tmp_path, tiny_tokenizer):
    make_data(tmp_path, "a", 300)
    with pytest.raises(ConfigError, match="needs `max_steps`"):
        build_config({"dataset": "a", "streaming": True})
    prepared = build(tiny_tokenizer, dataset="a", dataset_dir=str(tmp_path), streaming=True, max_steps=5,
                     val_size=10, buffer_size=1)  # a buffer of one keeps the file order
    rows = list(prepared.train)
    assert len(prepared.evaluation) == 10 and len(rows) == 290
    eager = build(tiny_tokenizer, dataset="a", dataset_dir=str(tmp_path))
    assert rows[0]["input_ids"] == eager.train[10]["input_ids"]


def test_pt_blocks_and_per_document_truncation(tiny_tokenizer):
    docs = ["one two three four five six", "seven eight", "nine"]
    packed, stats = tokenize_pt(docs, tiny_tokenizer, cutoff_len=4, packing=True)
    assert all(len(block) == 4 for block in packed["input_ids"]) and packed["labels"] == packed["input_ids"]
    eos = tiny_tokenizer.eos_token_id
    stream = [t for d in tiny_tokenizer(docs, add_special_tokens=True)["input_ids"] for t in (*d, eos)]
    assert [t for block in packed["input_ids"] for t in block] + stream[len(stream) // 4 * 4:] == stream
    single, stats = tokenize_pt(docs, tiny_tokenizer, cutoff_len=4, packing=False)
    assert len(single["input_ids"]) == 3 and stats.truncated >= 1 and single["input_ids"][2][-1] == eos


def test_pretraining_demo_data_loads(tiny_tokenizer):
    folder = refdata("llamafactory_data")
    for name in ("c4_demo", "wiki_demo"):
        prepared = build(tiny_tokenizer, dataset=name, dataset_dir=str(folder), stage="pt", cutoff_len=256)
        assert prepared.report.rows_per_dataset[name] >= 30 and len(prepared.train) > 10


def test_media_columns_are_checked_and_text_models_refuse_them(tmp_path, tiny_tokenizer):
    (tmp_path / "pic.jpg").write_bytes(b"not really a jpeg")
    rows = [{"messages": [{"role": "user", "content": "<image>What is it?"},
                          {"role": "assistant", "content": "A cat."}], "images": ["pic.jpg"]}]
    (tmp_path / "mm.json").write_text(json.dumps(rows))
    entry = {"file_name": "mm.json", "formatting": "sharegpt", "columns": {"messages": "messages", "images": "images"},
             "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}}
    (tmp_path / "dataset_info.json").write_text(json.dumps({"mm": entry}))
    with pytest.raises(DataError, match=r"mm\.json:row 1: has images, but the model is text-only .* train a "
                                        r"vision/audio-language model"):
        build(tiny_tokenizer, dataset="mm", dataset_dir=str(tmp_path))
    rows[0]["images"] = ["missing.jpg"]
    (tmp_path / "mm.json").write_text(json.dumps(rows))
    with pytest.raises(DataError, match=r"row 1: `images` file not found: .*missing.jpg"):
        build(tiny_tokenizer, dataset="mm", dataset_dir=str(tmp_path))


def test_tokenizer_changes_change_the_cache_key(tiny_llama_path, tmp_path):
    from transformers import AutoTokenizer

    from lmforge.data.cache import tokenizer_digest

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_path)
    original = tokenizer_digest(tokenizer)
    assert tokenizer_digest(AutoTokenizer.from_pretrained(tiny_llama_path)) == original
    tokenizer.pad_token = "<|im_end|>"  # changed in memory after loading
    assert tokenizer_digest(tokenizer) != original
    copy = tmp_path / "tok"
    reloaded = AutoTokenizer.from_pretrained(tiny_llama_path)
    reloaded.chat_template = "{{ messages[0]['content'] }}"
    reloaded.save_pretrained(copy)
    assert tokenizer_digest(AutoTokenizer.from_pretrained(copy)) != original


def test_lengths_before_truncation_are_reported_and_survive_the_cache(tmp_path, tiny_tokenizer):
    rows = [{"instruction": "q", "output": "word " * words} for words in (1, 5, 10, 20, 80, 200)]
    (tmp_path / "lengths.json").write_text(json.dumps(rows))
    (tmp_path / "dataset_info.json").write_text(json.dumps({"lengths": {"file_name": "lengths.json"}}))
    prepared = build(tiny_tokenizer, dataset="lengths", dataset_dir=str(tmp_path), cutoff_len=64)
    cutoff = 64
    report = prepared.report
    figures = report.length_figures()
    assert figures["max"] > cutoff >= max(map(len, prepared.train["input_ids"]))  # counted before truncation
    assert figures["min"] <= figures["median"] <= figures["p90"] <= figures["p99"] <= figures["max"]
    assert sum(report.lengths.values()) == 6 and report.truncated == sum(
        count for length, count in report.lengths.items() if length > cutoff)
    line = next(text for _, text in report.lines() if text.startswith("tokens per example before truncation"))
    assert f"max {figures['max']}" in line and f"cutoff_len truncates {report.truncated} of 6" in line
    again = build(tiny_tokenizer, dataset="lengths", dataset_dir=str(tmp_path), cutoff_len=64)
    assert again.report.from_cache and again.report.lengths == report.lengths
