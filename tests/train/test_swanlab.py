"""SwanLab tracking (`use_swanlab`, `swanlab_*`): an offline run writes the losses the Trainer logged."""

import json

import pytest
from rich.console import Console

from lmforge.config import build_config
from lmforge.train.runner import run_training
from tests.conftest import ROOT, run_cli
from tests.hidden_packages import hide_packages

BASE = {"model_name_or_path": "builtin:tiny-llama", "template": "chatml", "dataset": "identity",
        "dataset_dir": str(ROOT / "examples" / "data"), "max_samples": 8, "cutoff_len": 64, "max_steps": 3,
        "per_device_train_batch_size": 4, "logging_steps": 1, "overwrite_output_dir": True, "save_strategy": "no"}


def swanlab_scalars(logdir) -> dict[str, list[tuple[int, float]]]:
    """The scalars of the one run in `logdir`, read from SwanLab's own record file."""
    from google.protobuf.json_format import MessageToDict
    from swanlab.proto.swanlab.record.v1.record_pb2 import Record
    from swanlab.sdk.internal.core_python.store import DataStoreReader

    (run_file,) = logdir.glob("run-*/run-*.swanlab")
    reader = DataStoreReader()
    reader.open(run_file)
    scalars: dict[str, list[tuple[int, float]]] = {}
    for data in reader:
        record = Record()
        record.ParseFromString(data)
        scalar = MessageToDict(record.scalar) if record.HasField("scalar") else {}
        if "number" in scalar.get("value", {}):  # SwanLab's own system samples may be empty
            scalars.setdefault(scalar["key"], []).append((int(scalar.get("step", 0)), scalar["value"]["number"]))
    reader.close()
    return scalars


def test_offline_run_writes_the_logged_losses(tmp_path):
    swanlab = pytest.importorskip("swanlab")
    out, logdir = tmp_path / "out", tmp_path / "swanlog"
    run_training(build_config({**BASE, "output_dir": str(out), "use_swanlab": True, "swanlab_mode": "offline",
                               "swanlab_logdir": str(logdir), "swanlab_project": "tiny",
                               "swanlab_run_name": "sft"}), Console(quiet=True))
    swanlab.finish()  # the CLI's process ends here, and SwanLab finishes the run at exit
    rows = [json.loads(line) for line in (out / "trainer_log.jsonl").read_text().splitlines()]
    losses = [(row["current_steps"], row["loss"]) for row in rows if "loss" in row]
    assert len(losses) == 3
    logged = swanlab_scalars(logdir)["train/loss"]
    assert [step for step, _ in logged] == [step for step, _ in losses]
    assert [value for _, value in logged] == pytest.approx([value for _, value in losses])
    metadata = next(logdir.glob("run-*/files/config.yaml")).read_text()
    assert "learning_rate" in metadata  # the Trainer's arguments are the run's config


def test_use_swanlab_without_swanlab_names_the_extra(tmp_path, monkeypatch):
    hide_packages(monkeypatch, tmp_path / "hide", "swanlab")
    config = tmp_path / "run.yaml"
    config.write_text("stage: sft\nuse_swanlab: true\n")
    result = run_cli("train", str(config), *(f"{key}={value}" for key, value in BASE.items()),
                     f"output_dir={tmp_path / 'out'}")
    assert result.returncode == 1
    assert '`use_swanlab: true` needs swanlab: pip install "lmforge[swanlab]"' in " ".join(result.stderr.split())
    assert not (tmp_path / "out").exists()  # refused before anything loaded


def test_lark_notifier_is_one_of_the_runs_callbacks(tmp_path):
    swanlab = pytest.importorskip("swanlab")
    from swanlab.integration.transformers import SwanLabCallback
    from transformers import TrainerState

    from lmforge.train.swanlab import active_run, swanlab_callbacks

    group = build_config({"use_swanlab": True, "swanlab_mode": "disabled", "swanlab_logdir": str(tmp_path),
                          "swanlab_lark_webhook_url": "https://lark.invalid/hook", "swanlab_lark_secret": "s"}).swanlab
    start, logger = swanlab_callbacks(group)
    assert isinstance(logger, SwanLabCallback)
    assert [type(notifier).__name__ for notifier in start.notifiers] == ["LarkCallback"]
    assert start.kwargs == {"project": "llamafactory", "mode": "disabled", "log_dir": str(tmp_path)}
    start.on_train_begin(None, TrainerState(), None)  # the first process starts the run, before SwanLab's callback
    try:
        assert active_run()
    finally:
        swanlab.finish()
