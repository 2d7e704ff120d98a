"""A run killed with SIGKILL and re-run resumes from its last complete checkpoint and ends where an
uninterrupted run ends."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from lmforge.train.checkpoints import MARKER, is_complete, last_complete_checkpoint, mark_complete
from tests.conftest import ROOT, run_cli

ARGS = ["model_name_or_path=builtin:tiny-llama", "template=chatml", "dataset=identity",
        f"dataset_dir={ROOT / 'examples' / 'data'}", "max_steps=12", "save_steps=3", "logging_steps=1",
        "per_device_train_batch_size=4", "learning_rate=1e-3", "seed=3"]


def mode(path):
    return path.stat().st_mode & 0o777


def losses(out):
    lines = [json.loads(line) for line in (out / "trainer_log.jsonl").read_text().splitlines()]
    return {line["current_steps"]: line["loss"] for line in lines if "loss" in line}


@pytest.mark.slow
def test_sigkill_then_rerun_reaches_the_uninterrupted_final_loss(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("stage: sft\n")
    reference = run_cli("train", str(config), *ARGS, f"output_dir={tmp_path / 'reference'}")
    assert reference.returncode == 0, reference.stderr[-2000:]

    out = tmp_path / "killed"
    command = [sys.executable, "-m", "lmforge.cli.main", "train", str(config), *ARGS, f"output_dir={out}",
               "max_steps=12"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=os.environ.copy())
    deadline = time.monotonic() + 300
    while not (out / "checkpoint-6" / MARKER).is_file():
        assert process.poll() is None, "training ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    checkpoint = out / "checkpoint-6"  # its weights readable like its other files (safetensors writes 0600)
    assert mode(checkpoint / "adapter_model.safetensors") == mode(checkpoint / "adapter_config.json")
    assert not (out / "train_summary.json").exists()

    resumed = run_cli("train", str(config), *ARGS, f"output_dir={out}")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming from" in resumed.stdout
    final, expected = losses(out), losses(tmp_path / "reference")
    assert max(final) == max(expected) == 12
    assert final[12] == pytest.approx(expected[12], rel=1e-4)


def test_incomplete_checkpoints_are_never_resumed_from(tmp_path):
    good = tmp_path / "checkpoint-4"
    good.mkdir()
    (good / "model.safetensors").write_bytes(b"x" * 10)
    mark_complete(good)
    assert is_complete(good)
    torn = tmp_path / "checkpoint-8"  # a save interrupted before its marker
    torn.mkdir()
    (torn / "model.safetensors").write_bytes(b"partial")
    truncated = tmp_path / "checkpoint-12"  # marker present, but a file was cut short afterwards
    truncated.mkdir()
    (truncated / "optimizer.pt").write_bytes(b"y" * 100)
    mark_complete(truncated)
    (truncated / "optimizer.pt").write_bytes(b"y" * 3)
    newest, moved = last_complete_checkpoint(tmp_path)
    assert newest == good
    assert sorted(p.name for p in moved) == ["checkpoint-12.incomplete", "checkpoint-8.incomplete"]
