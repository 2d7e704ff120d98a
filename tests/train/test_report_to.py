"""`report_to` goes through to transformers' tracker callbacks: TensorBoard, Weights & Biases (offline), MLflow."""

import pytest

from lmforge.config import build_config
from tests.conftest import ROOT, run_cli

TRAIN = ["model_name_or_path=builtin:tiny-llama", "template=chatml", "dataset=identity",
         f"dataset_dir={ROOT / 'examples' / 'data'}", "max_samples=8", "max_steps=2", "logging_steps=1",
         "per_device_train_batch_size=2"]


def _train(tmp_path, tracker):
    config = tmp_path / "run.yaml"
    config.write_text(f"stage: sft\nreport_to: {tracker}\n")
    out = tmp_path / "out"
    result = run_cli("train", str(config), *TRAIN, f"output_dir={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_report_to_defaults_to_none_and_passes_through():
    assert build_config({}).training.trainer_kwargs()["report_to"] == "none"
    assert build_config({"report_to": "wandb"}).training.trainer_kwargs()["report_to"] == "wandb"
    assert build_config({"report_to": ["tensorboard", "mlflow"]}).training.trainer_kwargs()["report_to"] == [
        "tensorboard", "mlflow"]


@pytest.mark.slow
def test_one_run_reports_to_tensorboard_wandb_offline_and_an_mlflow_file_store(tmp_path, monkeypatch):
    for tracker in ("tensorboard", "wandb", "mlflow"):
        pytest.importorskip(tracker, reason="the `tracking` extra is not installed")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    store = tmp_path / "mlruns"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps the file store in maintenance mode
    out = _train(tmp_path, "[tensorboard, wandb, mlflow]")

    events = list((out / "runs").glob("*/events.out.tfevents.*"))  # transformers' default logging dir
    assert len(events) == 1 and events[0].stat().st_size > 0
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("run-*.wandb"))
    losses = list(store.glob("*/*/metrics/loss"))
    assert len(losses) == 1 and len(losses[0].read_text().splitlines()) == 2  # one line per logged step


def test_an_mlflow_store_that_would_fail_when_training_starts_is_refused_first(tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow", reason="the `tracking` extra is not installed")
    from packaging.version import Version

    from lmforge.errors import ConfigError
    from lmforge.preflight import preflight
    from lmforge.train.mlflow_store import mlflow_store_problem

    cfg = build_config({"model_name_or_path": "builtin:tiny-llama", "template": "chatml", "report_to": "mlflow"})
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    if Version(mlflow.__version__).major >= 3:  # its file store refuses to open without the switch
        with pytest.raises(ConfigError, match=r"`report_to: mlflow` logs to the folder file:.*mlruns, which MLflow "
                                              r".* refuses unless MLFLOW_ALLOW_FILE_STORE=true is set"):
            preflight(cfg, "check")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    preflight(cfg, "check")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    problem = mlflow_store_problem()
    try:
        import sqlalchemy  # noqa: F401 - full MLflow brings it; mlflow-skinny does not
    except ImportError:
        assert "a database store that needs SQLAlchemy, which mlflow-skinny lacks" in problem
    else:
        assert problem is None
