"""`do_predict: true` in a training config, as LLaMA-Factory users write it: generations written as they are
produced, resumed after a kill, scored; and prediction right after training, with the trained adapter."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from lmforge.infer.predict_metrics import similarity_scores
from tests.conftest import ROOT, run_cli
from tests.refdata import refdata

ROWS = 6
SCORES = ("predict_bleu-4", "predict_rouge-1", "predict_rouge-2", "predict_rouge-l")


def _config(tmp_path, name, extra=""):
    """LLaMA-Factory's nlg_eval predict config, on the tiny model with greedy decoding."""
    config = tmp_path / f"{name}.yaml"
    config.write_text(
        "model_name_or_path: builtin:tiny-llama\ntemplate: chatml\nstage: sft\ndo_predict: true\n"
        f"finetuning_type: lora\neval_dataset: alpaca_en_demo\ndataset_dir: {refdata('llamafactory_data')}\n"
        f"max_samples: {ROWS}\noutput_dir: {tmp_path / name}\nreport_to: none\nper_device_eval_batch_size: 2\n"
        f"predict_with_generate: true\nmax_new_tokens: 12\ndo_sample: false\n{extra}")
    return config


def _rows(out):
    return [json.loads(line) for line in (out / "generated_predictions.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def base_predictions(tmp_path_factory):
    """An uninterrupted prediction run of the base model through `lmforge train`."""
    tmp_path = tmp_path_factory.mktemp("base")
    result = run_cli("train", str(_config(tmp_path, "out")))
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp_path / "out", result


@pytest.mark.slow
def test_predictions_are_written_with_labels_and_scored(base_predictions):
    out, result = base_predictions
    rows = _rows(out)
    assert len(rows) == ROWS and all({"prompt", "predict", "label"} <= set(row) for row in rows)
    assert rows[1]["prompt"] == "Transform the following sentence using a synonym: The car sped quickly."
    assert rows[1]["label"] == "The car accelerated rapidly."
    assert not (out / "adapter_model.safetensors").exists()  # do_train left out: nothing trained
    assert "predicted 2/6" in result.stdout and "prediction results" in result.stdout
    results = json.loads((out / "predict_results.json").read_text())
    assert all(0 <= results[key] <= 100 for key in SCORES)
    expected = similarity_scores([row["predict"] for row in rows], [row["label"] for row in rows])
    assert [results[key] for key in SCORES] == [expected[key.removeprefix("predict_")] for key in SCORES]
    assert results["predict_samples"] == ROWS and results["predict_samples_per_second"] > 0


@pytest.mark.slow
def test_a_killed_prediction_keeps_its_rows_and_the_rerun_does_only_the_rest(tmp_path, base_predictions):
    config = _config(tmp_path, "killed", "per_device_eval_batch_size: 1\n")
    out = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, "-m", "lmforge.cli.main", "train", str(config)], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    path = out / "generated_predictions.jsonl"
    deadline = time.monotonic() + 300
    while not (path.is_file() and path.read_text().count("\n") >= 1):
        assert process.poll() is None, "prediction ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    kept = [json.loads(line) for line in path.read_text().splitlines(keepends=True) if line.endswith("\n")]
    assert 1 <= len(kept) < ROWS and not (out / "predict_results.json").exists()

    resumed = run_cli("train", str(config))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    progress = [line for line in resumed.stdout.splitlines() if line.startswith("predicted ")]
    assert progress[0] == f"predicted {len(kept) + 1}/{ROWS}" and progress[-1] == f"predicted {ROWS}/{ROWS}"
    assert _rows(out)[:len(kept)] == kept
    assert _rows(out) == _rows(base_predictions[0])  # greedy: the same answers as the uninterrupted run
    assert json.loads((out / "predict_results.json").read_text())["predict_samples"] == ROWS


@pytest.mark.slow
def test_train_then_predict_in_one_command_uses_the_trained_adapter(tmp_path, base_predictions):
    train = ["do_train=true", "dataset=alpaca_en_demo", "max_steps=3", "learning_rate=5e-2",
             "per_device_train_batch_size=2", "cutoff_len=128", "logging_steps=1"]
    result = run_cli("train", str(_config(tmp_path, "trained")), *train)
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "trained"
    assert (out / "adapter_model.safetensors").is_file() and (out / "train_summary.json").is_file()
    assert "training summary" in result.stdout and "prediction results" in result.stdout
    assert not (out / "runs").exists()  # report_to stays none: no tracker writes anything
    trained = _rows(out)
    assert len(trained) == ROWS and set(json.loads((out / "predict_results.json").read_text())) >= set(SCORES)
    assert [row["predict"] for row in trained] != [row["predict"] for row in _rows(base_predictions[0])]

    # the same adapter loaded from disk gives the same answers as the model in memory did
    reloaded = run_cli("train", str(_config(tmp_path, "reloaded")), f"adapter_name_or_path={out}")
    assert reloaded.returncode == 0, reloaded.stderr[-3000:]
    assert _rows(tmp_path / "reloaded") == trained
