"""bench/multimodal_sft.py --llamafactory: both frameworks get the same job, and lmforge's side trains through
its CLI on the benchmark's rows, so the comparison cannot rot between the runs that record it."""

import json
import os

import bench.multimodal_sft as mm
import pytest
from bench.train_throughput import run as run_cli

from tests.refdata import refdata

# what LLaMA-Factory is told beyond the shared job: lmforge's CPU default, and its refusal to write over a folder
LLAMAFACTORY_ONLY = {"disable_gradient_checkpointing": True, "overwrite_output_dir": True}


def test_both_frameworks_get_the_same_job(tmp_path):
    ours = mm.cli_job(tmp_path / "model", tmp_path / "data", "rows", 8, tmp_path / "out", llamafactory=False)
    theirs = mm.cli_job(tmp_path / "model", tmp_path / "data", "rows", 8, tmp_path / "out", llamafactory=True)
    assert theirs == {**ours, **LLAMAFACTORY_ONLY}
    assert ours["template"] == "qwen2_vl" and ours["bf16"] is False and "packing" not in ours


@pytest.mark.slow
def test_lmforge_side_trains_the_benchmark_rows(tmp_path, monkeypatch):
    refdata("llamafactory_data")  # the benchmark's rows come from it (its own helper exits where it is absent)
    monkeypatch.setattr(mm, "CACHE", tmp_path / "cache")
    model, rows_file = mm.prepare(4)
    dataset_dir, dataset = mm.sharegpt_dataset(rows_file)
    registered = json.loads((dataset_dir / "dataset_info.json").read_text())[dataset]
    assert registered["formatting"] == "sharegpt" and registered["columns"]["images"] == "images"
    config = mm.cli_job(model, dataset_dir, dataset, 4, tmp_path / "out", llamafactory=False)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "LMFORGE_HOME": str(tmp_path / "home"),
           "PYTHONPATH": str(mm.ROOT / "src")}
    result = run_cli("lmforge", "", config, env)
    assert result["runtime"] > 0 and result["peak_rss_mib"] > 100
    summary = json.loads((tmp_path / "out" / "train_summary.json").read_text())
    assert summary["steps"] == 1  # 4 rows, batch 4, one epoch


def test_rows_beyond_the_pictures_crops_are_refused(monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["multimodal_sft.py", "--llamafactory", "--rows", str(mm.MAX_ROWS + 1)])
    with pytest.raises(SystemExit):
        mm.main()
    assert f"1 to {mm.MAX_ROWS}" in capsys.readouterr().err
