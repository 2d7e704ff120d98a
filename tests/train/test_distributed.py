"""Scale-out on the real engines: torchrun DDP over gloo on CPU (and the launcher's plan)."""

import json
import os
import shlex
import signal
import socket
import subprocess
import sys

import pytest

from lmforge.errors import ConfigError
from lmforge.train.launch import launch_plan, torchrun_command
from tests.conftest import ROOT, run_cli

ARGS = ["model_name_or_path=builtin:tiny-llama", "template=chatml", "dataset=identity",
        f"dataset_dir={ROOT / 'examples' / 'data'}", "max_steps=3", "logging_steps=1", "learning_rate=1e-3",
        "overwrite_output_dir=true",
        "bf16=false"]  # DDP vs one process: the losses agree to fp32's resolution, not bf16's


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def logged(out):
    lines = [json.loads(line) for line in (out / "trainer_log.jsonl").read_text().splitlines()]
    return [line for line in lines if "loss" in line]


def test_launch_plan_reads_llamafactory_variables(monkeypatch):
    monkeypatch.setenv("NPROC_PER_NODE", "4")
    monkeypatch.setenv("NNODES", "2")
    monkeypatch.setenv("NODE_RANK", "1")
    monkeypatch.setenv("MASTER_ADDR", "10.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "29501")
    plan = launch_plan()
    assert plan.distributed and (plan.nproc_per_node, plan.nnodes, plan.node_rank) == (4, 2, 1)
    command = torchrun_command(plan, ["train", "run.yaml", "lr=1"])
    assert command[1:3] == ["-m", "lmforge.train.torchrun"]  # torchrun, quiet when a signal ends it
    assert "--master_addr=10.0.0.1" in command and command[-3:] == ["train", "run.yaml", "lr=1"]
    assert launch_plan(nproc=2).nproc_per_node == 2
    monkeypatch.setenv("NNODES", "two")
    with pytest.raises(ConfigError, match="NNODES='two' must be a whole number"):
        launch_plan()


def summarised(out) -> dict[str, float]:
    """The run's totals in train_summary.json, checked against its rates (runtime is kept to the millisecond)."""
    summary = json.loads((out / "train_summary.json").read_text())
    runtime = summary["train_runtime_s"]
    assert summary["samples_per_s"] * runtime == pytest.approx(summary["trained_samples"], rel=0.02, abs=0.01)
    return {"samples": summary["trained_samples"], "supervised_tokens": summary["trained_supervised_tokens"]}


@pytest.mark.slow
def test_two_process_ddp_matches_one_process_with_the_same_global_batch(tmp_path, monkeypatch):
    config = tmp_path / "run.yaml"
    config.write_text("stage: sft\n")
    single = run_cli("train", str(config), *ARGS, "per_device_train_batch_size=4", f"output_dir={tmp_path / 'one'}")
    assert single.returncode == 0, single.stderr[-2000:]
    monkeypatch.setenv("MASTER_PORT", str(free_port()))
    ddp = run_cli("train", str(config), *ARGS, "per_device_train_batch_size=2", f"output_dir={tmp_path / 'two'}",
                  "--nproc", "2")
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    one, two = logged(tmp_path / "one"), logged(tmp_path / "two")
    assert [line["epoch"] for line in two] == [line["epoch"] for line in one]  # 4 rows a step in both
    for a, b in zip(one, two, strict=True):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-3)
    assert "LOCAL_RANK" not in os.environ
    # the summary's throughput counts what every process trained: 12 examples and the same tokens in both runs
    counted = [summarised(tmp_path / name) for name in ("one", "two")]
    assert counted[0]["samples"] == counted[1]["samples"] == 12
    assert counted[1]["supervised_tokens"] == counted[0]["supervised_tokens"]


@pytest.mark.slow
def test_deepspeed_zero3_runs_on_cpu_and_matches_ddp(tmp_path, monkeypatch):
    config = tmp_path / "run.yaml"
    config.write_text("stage: sft\n")
    monkeypatch.setenv("MASTER_PORT", str(free_port()))
    out = tmp_path / "zero3"
    result = run_cli("train", str(config), *ARGS, "per_device_train_batch_size=2", f"output_dir={out}",
                     f"deepspeed={ROOT / 'examples' / 'deepspeed' / 'ds_z3_config.json'}", "--nproc", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "adapter_model.safetensors").is_file()
    # notices a user cannot act on stay hidden (`--verbose` shows them)
    output = result.stdout + result.stderr
    assert "all_gather_into_tensor` is deprecated" not in output and "Setting accelerator to CPU" not in output
    single = run_cli("train", str(config), *ARGS, "per_device_train_batch_size=4", f"output_dir={tmp_path / 'one'}")
    assert single.returncode == 0
    for a, b in zip(logged(tmp_path / "one"), logged(out), strict=True):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-3)


@pytest.mark.parametrize("name", ["ds_z2_config.json", "ds_z2_offload_config.json", "ds_z3_config.json",
                                  "ds_z3_offload_config.json"])
def test_shipped_deepspeed_configs_validate(name):
    from lmforge.config import build_config

    cfg = build_config({"deepspeed": str(ROOT / "examples" / "deepspeed" / name)})
    assert cfg.training.deepspeed.endswith(name)


def test_bad_deepspeed_configs_fail_clearly(tmp_path):
    from lmforge.config import build_config

    with pytest.raises(ConfigError, match="no such file"):
        build_config({"deepspeed": str(tmp_path / "missing.json")})
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ConfigError, match="is not valid JSON"):
        build_config({"deepspeed": str(tmp_path / "bad.json")})
    (tmp_path / "stage.json").write_text('{"zero_optimization": {"stage": 4}}')
    with pytest.raises(ConfigError, match="stage must be 0, 1, 2 or 3, got 4"):
        build_config({"deepspeed": str(tmp_path / "stage.json")})


def test_launch_plan_forces_torchrun_and_elastic_rendezvous(monkeypatch):
    for name in ("NPROC_PER_NODE", "NNODES", "MASTER_PORT", "FORCE_TORCHRUN", "RDZV_ID", "MIN_NNODES", "MAX_NNODES"):
        monkeypatch.delenv(name, raising=False)
    plan = launch_plan()
    assert not plan.distributed and plan.nproc_per_node == 1  # no GPU here: one process, no torchrun
    with socket.socket() as sock:  # MASTER_PORT unset on one node: a port nothing listens on
        sock.bind(("127.0.0.1", plan.master_port))
    assert launch_plan(deepspeed=True).distributed  # DeepSpeed needs torchrun's environment even for one process
    monkeypatch.setenv("FORCE_TORCHRUN", "true")
    assert launch_plan().distributed
    monkeypatch.setenv("NNODES", "2")
    assert launch_plan().master_port == 29500  # every node must agree: torchrun's default, never a random one
    monkeypatch.setenv("RDZV_ID", "job7")
    monkeypatch.setenv("MIN_NNODES", "1")
    monkeypatch.setenv("MAX_NNODES", "3")
    monkeypatch.setenv("MAX_RESTARTS", "2")
    monkeypatch.setenv("MASTER_ADDR", "10.0.0.1")
    command = torchrun_command(launch_plan(nproc=2), ["train", "run.yaml"])
    for flag in ("--nnodes=1:3", "--rdzv_id=job7", "--rdzv_backend=c10d", "--rdzv_endpoint=10.0.0.1:29500",
                 "--max_restarts=2", "--nproc_per_node=2"):
        assert flag in command
    monkeypatch.delenv("MAX_NNODES")
    with pytest.raises(ConfigError, match="both MIN_NNODES and MAX_NNODES"):
        launch_plan()


@pytest.mark.slow
def test_a_deepspeed_config_trains_in_one_process_under_torchrun(tmp_path, monkeypatch):
    """LLaMA-Factory's single-GPU DeepSpeed configs: without torchrun, DeepSpeed looks for MPI (mpi4py) to learn
    its rank; `lmforge train` launches the one process under torchrun instead."""
    monkeypatch.delenv("MASTER_PORT", raising=False)
    config = tmp_path / "run.yaml"
    config.write_text(f"stage: sft\ndeepspeed: {ROOT / 'examples' / 'deepspeed' / 'ds_z2_config.json'}\n")
    out = tmp_path / "zero2"
    result = run_cli("train", str(config), *ARGS, "per_device_train_batch_size=4", f"output_dir={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(logged(out)) == 3 and (out / "adapter_model.safetensors").is_file()


def test_use_ray_is_refused_with_the_torchrun_way(tmp_path, monkeypatch):
    config = tmp_path / "run.yaml"
    config.write_text("stage: sft\n")
    monkeypatch.setenv("USE_RAY", "1")
    result = run_cli("train", str(config), *ARGS, f"output_dir={tmp_path / 'out'}")
    assert result.returncode == 1
    assert "USE_RAY=1 asks for Ray Train" in " ".join(result.stderr.split())


def _processes_mentioning(text: str) -> list[str]:
    """Command lines of the running processes that contain `text` (left-over workers, for one)."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                command = handle.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # not a process, or one that has just ended
            continue
        if text in command:
            found.append(command)
    return found


@pytest.mark.slow
def test_sigterm_to_the_launcher_stops_every_process_saves_and_prints_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("MASTER_PORT", str(free_port()))
    config = tmp_path / "run.yaml"
    config.write_text("stage: sft\n")
    out = tmp_path / "out"
    args = [str(config), *ARGS, "max_steps=400", "save_strategy=no", "per_device_train_batch_size=2",
            f"output_dir={out}"]
    launcher = subprocess.Popen([sys.executable, "-m", "lmforge.cli.main", "train", *args, "--nproc", "2"],
                                cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env={**os.environ, "COLUMNS": "400", "PYTHONUNBUFFERED": "1"})
    seen = []
    for line in launcher.stdout:
        seen.append(line)
        if line.startswith("step 2/400"):
            launcher.send_signal(signal.SIGTERM)
            break
    stdout = "".join(seen) + launcher.stdout.read()
    stderr = launcher.stderr.read()
    assert launcher.wait(timeout=300) == 143, stderr[-3000:]
    stops = [line for line in (stdout + stderr).splitlines() if line.startswith("stopped by")]
    assert len(stops) == 1 and stdout.rstrip().endswith(stops[0])  # one line, the last one
    step = int(stops[0].split(" at step ")[1].split("/")[0])
    checkpoint = out / f"checkpoint-{step}"
    assert stops[0].startswith(f"stopped by SIGTERM at step {step}/400; checkpoint kept: {checkpoint}; ")
    assert (checkpoint / "lmforge_complete.json").is_file()  # saved by both processes, at the same step
    assert shlex.split(stops[0].split("resume with: ")[1]) == [
        "lmforge", "train", "--nproc", "2", *args, f"resume_from_checkpoint={checkpoint}"]
    assert "Traceback" not in stderr and "death signal" not in stderr and "closing signal" not in stderr
    assert _processes_mentioning(str(out)) == []  # no worker outlives the launcher
