"""`do_predict` / `predict_with_generate` keys: LLaMA-Factory's prediction config loads, and misuses fail clearly."""

import pytest

from lmforge.config import build_config
from lmforge.config.loader import read_yaml
from lmforge.errors import ConfigError
from lmforge.infer.predict import prediction_config
from lmforge.train.stages import configured_stage
from tests.conftest import ROOT
from tests.refdata import refdata

PREDICT = {"stage": "sft", "do_predict": True, "eval_dataset": "alpaca_en_demo", "output_dir": "out"}


def test_llamafactory_prediction_config_loads_as_prediction_only():
    raw = read_yaml(refdata("llamafactory_examples_v0.9.3", "extras", "nlg_eval", "llama3_lora_predict.yaml"))
    cfg = build_config(raw)
    assert cfg.training.do_predict and cfg.training.predict_with_generate
    assert not cfg.training.runs_training()  # do_train left out: LLaMA-Factory predicts only
    assert "predict_with_generate" not in cfg.training.trainer_kwargs()  # lmforge's key, not TrainingArguments'
    assert prediction_config(cfg).generation.infer_batch_size == 1  # per_device_eval_batch_size: 1


@pytest.mark.parametrize(("extra", "trains"), [({}, False), ({"do_train": True}, True), ({"do_train": False}, False)])
def test_do_train_decides_whether_a_prediction_config_trains(extra, trains):
    assert build_config({**PREDICT, **extra}).training.runs_training() is trains
    assert build_config({"stage": "sft"}).training.runs_training()  # lmforge's own configs train without do_train


def test_infer_batch_size_wins_over_the_eval_batch_size():
    cfg = build_config({**PREDICT, "per_device_eval_batch_size": 4, "infer_batch_size": 8})
    assert prediction_config(cfg).generation.infer_batch_size == 8
    assert prediction_config(build_config(PREDICT)).generation.infer_batch_size == 16


@pytest.mark.parametrize(("raw", "pattern"), [
    ({"predict_with_generate": True}, r"`predict_with_generate: true` needs `do_predict: true`"),
    ({"do_train": False}, r"`do_train: false` without `do_predict: true` leaves nothing to run"),
    ({**PREDICT, "eval_dataset": None, "dataset": "identity"}, r"answers the prompts of `eval_dataset`: name one"),
    ({**PREDICT, "stage": "dpo"}, r"needs `stage: sft` \(got `dpo`\)"),
    ({**PREDICT, "predict_with_generate": False}, r"always generates"),
    ({**PREDICT, "do_train": True, "fsdp": "full_shard"}, r"FSDP or DeepSpeed ZeRO-3: the trained weights are sharded"),
])
def test_prediction_misuse_is_refused_with_the_fix(raw, pattern):
    with pytest.raises(ConfigError, match=pattern):
        configured_stage(build_config(raw))  # the config's rules, then its stage's (prediction needs sft)


def test_predict_with_generate_is_no_longer_pending():
    cfg = build_config({**PREDICT, "predict_with_generate": True})
    assert cfg.training.predict_with_generate is True


def test_the_documented_prediction_example_is_a_prediction_only_config():
    cfg = build_config(read_yaml(ROOT / "examples" / "quickstart" / "predict.yaml"))
    assert cfg.training.do_predict and not cfg.training.runs_training()
    assert prediction_config(cfg).generation.infer_batch_size == 10
