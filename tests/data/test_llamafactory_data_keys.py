"""LLaMA-Factory's data keys do what they do there: interleave_once, num_samples, buffer_size,
preprocessing_batch_size, ignore_pad_token_for_loss, `dataset_dir: ONLINE`."""

import json

import pytest

from lmforge.config import build_config
from lmforge.data.collator import SftCollator
from lmforge.data.labels import IGNORE_INDEX
from lmforge.data.registry import resolve_dataset
from lmforge.errors import ConfigError, DataError
from tests.data.test_pipeline import build, make_data


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMFORGE_HOME", str(tmp_path / "home"))


def test_interleave_once_uses_every_row_exactly_once(tmp_path, tiny_tokenizer):
    make_data(tmp_path, "a", 10)
    make_data(tmp_path, "b", 4)
    common = {"dataset": "a,b", "dataset_dir": str(tmp_path), "interleave_probs": "0.5,0.5", "seed": 3}
    once = build(tiny_tokenizer, **common, mix_strategy="interleave_once")
    concat = build(tiny_tokenizer, dataset="a,b", dataset_dir=str(tmp_path))
    assert sorted(map(tuple, once.train["input_ids"])) == sorted(map(tuple, concat.train["input_ids"]))
    assert once.train["input_ids"] != concat.train["input_ids"]  # interleaved, not appended


def _registered(folder, name, rows, num_samples):
    make_data(folder, name, rows)
    info = json.loads((folder / "dataset_info.json").read_text())
    info[name]["num_samples"] = num_samples
    (folder / "dataset_info.json").write_text(json.dumps(info))


def test_num_samples_above_the_file_repeats_rows_drawn_by_the_seed(tmp_path, tiny_tokenizer):
    _registered(tmp_path, "a", 5, 12)
    first = build(tiny_tokenizer, dataset="a", dataset_dir=str(tmp_path), seed=1)
    rows = [tuple(ids) for ids in first.train["input_ids"]]
    assert len(rows) == 12 and len(set(rows)) == 5  # every row once, 7 drawn again with replacement
    again = build(tiny_tokenizer, dataset="a", dataset_dir=str(tmp_path), seed=1, overwrite_cache=True)
    assert again.train["input_ids"] == first.train["input_ids"]
    other = build(tiny_tokenizer, dataset="a", dataset_dir=str(tmp_path), seed=2)
    assert other.train["input_ids"] != first.train["input_ids"]
    capped = build(tiny_tokenizer, dataset="a", dataset_dir=str(tmp_path), seed=1, max_samples=8)
    assert len(capped.train) == 8


def test_num_samples_below_the_file_is_a_random_subset(tmp_path, tiny_tokenizer):
    _registered(tmp_path, "a", 40, 5)
    subset = build(tiny_tokenizer, dataset="a", dataset_dir=str(tmp_path), seed=1)
    first_five = [tiny_tokenizer.decode(ids) for ids in build(tiny_tokenizer, dataset=str(tmp_path / "a.json"))
                  .train["input_ids"][:5]]
    texts = [tiny_tokenizer.decode(ids) for ids in subset.train["input_ids"]]
    assert len(set(texts)) == 5 and texts != first_five


def test_buffer_size_shuffles_streamed_rows_within_the_buffer(tmp_path, tiny_tokenizer):
    make_data(tmp_path, "a", 60)
    common = {"dataset": "a", "dataset_dir": str(tmp_path), "streaming": True, "max_steps": 5}
    in_order = [row["input_ids"] for row in build(tiny_tokenizer, **common, buffer_size=1).train]
    shuffled = [row["input_ids"] for row in build(tiny_tokenizer, **common, buffer_size=64).train]
    eager = build(tiny_tokenizer, dataset="a", dataset_dir=str(tmp_path))
    assert in_order == eager.train["input_ids"]
    assert shuffled != in_order and sorted(shuffled) == sorted(in_order)


def test_preprocessing_batch_size_sets_the_streamed_tokenizer_batch(tmp_path, tiny_tokenizer, monkeypatch):
    from lmforge.data import dataset

    make_data(tmp_path, "a", 25)
    sizes: list[int] = []
    tokenize = dataset._Builder.tokenize
    monkeypatch.setattr(dataset._Builder, "tokenize", lambda self, items, report: (sizes.append(len(items)),
                                                                                    tokenize(self, items, report))[1])
    rows = list(build(tiny_tokenizer, dataset="a", dataset_dir=str(tmp_path), streaming=True, max_steps=5,
                      preprocessing_batch_size=10).train)
    assert len(rows) == 25 and sizes == [10, 10, 5]


def test_ignore_pad_token_for_loss_false_supervises_padding():
    rows = [{"input_ids": [5, 6, 7], "labels": [IGNORE_INDEX, 6, 7]}, {"input_ids": [5], "labels": [5]}]
    ignored = SftCollator(pad_token_id=0, pad_to_multiple_of=None)(rows)
    supervised = SftCollator(pad_token_id=0, pad_to_multiple_of=None, label_pad_token_id=0)(rows)
    assert ignored["labels"][1].tolist() == [5, IGNORE_INDEX, IGNORE_INDEX]
    assert supervised["labels"][1].tolist() == [5, 0, 0]
    assert supervised["labels"][0].tolist() == [IGNORE_INDEX, 6, 7]  # the prompt's own mask stays


def test_ignore_pad_token_for_loss_reaches_the_sft_collator(tiny_llama_path, tmp_path, tiny_tokenizer):
    from transformers import AutoModelForCausalLM

    from lmforge.train.stages.causal import build_trainer

    make_data(tmp_path, "a", 4)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_path)
    for setting, label_pad in ((True, IGNORE_INDEX), (False, tiny_tokenizer.pad_token_id)):
        cfg = build_config({"dataset": "a", "dataset_dir": str(tmp_path), "ignore_pad_token_for_loss": setting})
        prepared = build(tiny_tokenizer, dataset="a", dataset_dir=str(tmp_path))
        kwargs = {"output_dir": str(tmp_path / "out"), "use_cpu": True, "report_to": "none"}
        trainer = build_trainer(cfg, model, tiny_tokenizer, prepared, kwargs)
        assert trainer.data_collator.label_pad_token_id == label_pad


def test_dataset_dir_online_offline_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match=r"`dataset_dir: ONLINE` reads dataset `llamafactory/alpaca_en` from the "
                                        r"Hugging Face hub, and no hub is reachable"):
        resolve_dataset("llamafactory/alpaca_en", "ONLINE")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    spec = resolve_dataset("llamafactory/alpaca_en", "ONLINE")
    assert (spec.hf_hub_url, spec.formatting, spec.file_name) == ("llamafactory/alpaca_en", "alpaca", None)


def test_eval_on_each_dataset_keeps_each_eval_dataset_as_its_own_range(tmp_path, tiny_tokenizer):
    for name, rows in (("a", 6), ("b", 3), ("c", 5)):
        make_data(tmp_path, name, rows)
    common = {"dataset": "a", "eval_dataset": "b,c", "dataset_dir": str(tmp_path)}
    whole = build(tiny_tokenizer, **common)
    each = build(tiny_tokenizer, **common, eval_on_each_dataset=True)
    assert whole.eval_parts() == {} and each.report.eval_rows_per_dataset == {"b": 3, "c": 5}
    parts = each.eval_parts()
    assert parts["b"]["input_ids"] == build(tiny_tokenizer, dataset="b", dataset_dir=str(tmp_path)).train["input_ids"]
    assert len(parts["c"]) == 5
    packed = build(tiny_tokenizer, **common, eval_on_each_dataset=True, packing=True, cutoff_len=64)
    assert sum(packed.report.eval_rows_per_dataset.values()) == len(packed.evaluation)
    assert packed.report.eval_rows_per_dataset["c"] < 5  # packed on its own: never mixed with `b`'s rows
    cached = build(tiny_tokenizer, **common, eval_on_each_dataset=True)
    assert cached.report.from_cache and cached.eval_parts()["b"]["input_ids"] == parts["b"]["input_ids"]
    with pytest.raises(ConfigError, match="name them in `eval_dataset`"):
        build_config({"dataset": "a", "val_size": 0.2, "eval_on_each_dataset": True})
    with pytest.raises(ConfigError, match="built for `stage: pt` and `sft` \\(got `dpo`\\)"):
        build_config({**common, "stage": "dpo", "eval_on_each_dataset": True})


def test_eval_on_each_dataset_logs_each_datasets_loss_beside_the_whole(tiny_llama_path, tmp_path, tiny_tokenizer):
    from transformers import AutoModelForCausalLM

    from lmforge.train.stages.causal import build_trainer

    for name, rows in (("a", 4), ("b", 3), ("c", 5)):
        make_data(tmp_path, name, rows)
    options = {"dataset": "a", "eval_dataset": "b,c", "dataset_dir": str(tmp_path), "eval_on_each_dataset": True}
    cfg = build_config(options)
    prepared = build(tiny_tokenizer, **options)
    kwargs = {"output_dir": str(tmp_path / "out"), "use_cpu": True, "report_to": "none",
              "per_device_eval_batch_size": 2}
    trainer = build_trainer(cfg, AutoModelForCausalLM.from_pretrained(tiny_llama_path), tiny_tokenizer, prepared,
                            kwargs)
    metrics = trainer.evaluate()
    assert {"eval_loss", "eval_b_loss", "eval_c_loss"} <= set(metrics)
    logged = trainer.state.log_history[-1]
    assert logged["eval_b_loss"] == metrics["eval_b_loss"] and logged["eval_loss"] == metrics["eval_loss"]
    alone = trainer.evaluate(prepared.eval_parts()["b"])
    assert alone["eval_loss"] == pytest.approx(metrics["eval_b_loss"], rel=1e-6)
    assert "eval_b_loss" not in alone
