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
from lmforge.train.launch import (
    end_process_group,
    is_main_worker,
    is_worker,
    launch_plan,
    one_process_group,
    torchrun_command,
)
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


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    """The reference run the scaled-out ones are held to: one process, the global batch of 4 rows a step."""
    work = tmp_path_factory.mktemp("one_process")
    config = work / "run.yaml"
    config.write_text("stage: sft\n")
    single = run_cli("train", str(config), *ARGS, "per_device_train_batch_size=4", f"output_dir={work / 'one'}")
    assert single.returncode == 0, single.stderr[-2000:]
    return work / "one"


@pytest.mark.slow
def test_two_process_ddp_matches_one_process_with_the_same_global_batch(tmp_path, monkeypatch, one_process):
    config = tmp_path / "run.yaml"
    config.write_text("stage: sft\n")
    monkeypatch.delenv("MASTER_PORT", raising=False)
    ddp = run_cli("train", str(config), *ARGS, "per_device_train_batch_size=2", f"output_dir={tmp_path / 'two'}",
                  f"master_port={free_port()}", "master_addr=127.0.0.1", "--nproc", "2")  # LLaMA-Factory's keys
    assert ddp.returncode == 0, ddp.stderr  # whole: torchrun's summary alone fills the last 3,000 characters
    one, two = logged(one_process), logged(tmp_path / "two")
    assert [line["epoch"] for line in two] == [line["epoch"] for line in one]  # 4 rows a step in both
    for a, b in zip(one, two, strict=True):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-3)
    assert "LOCAL_RANK" not in os.environ
    # the summary's throughput counts what every process trained: 12 examples and the same tokens in both runs
    counted = [summarised(out) for out in (one_process, tmp_path / "two")]
    assert counted[0]["samples"] == counted[1]["samples"] == 12
    assert counted[1]["supervised_tokens"] == counted[0]["supervised_tokens"]


@pytest.mark.slow
def test_deepspeed_zero3_runs_on_cpu_and_matches_one_process(tmp_path, monkeypatch, one_process):
    config = tmp_path / "run.yaml"
    config.write_text("stage: sft\n")
    monkeypatch.setenv("MASTER_PORT", str(free_port()))
    out = tmp_path / "zero3"
    result = run_cli("train", str(config), *ARGS, "per_device_train_batch_size=2", f"output_dir={out}",
                     f"deepspeed={ROOT / 'examples' / 'deepspeed' / 'ds_z3_config.json'}", "--nproc", "2")
    assert result.returncode == 0, result.stderr
    assert (out / "adapter_model.safetensors").is_file()
    # notices a user cannot act on stay hidden (`--verbose` shows them)
    output = result.stdout + result.stderr
    assert "all_gather_into_tensor` is deprecated" not in output and "Setting accelerator to CPU" not in output
    for a, b in zip(logged(one_process), logged(out), strict=True):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-3)


def test_a_worker_ends_its_process_group_before_the_interpreter_exits():
    # a gloo group left to the interpreter's exit can abort the process (pytorch/pytorch#190489)
    import torch
    import torch.distributed as dist

    end_process_group()  # no group: nothing to do
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{free_port()}", rank=0, world_size=1)
    summed = torch.ones(2)
    dist.all_reduce(summed)
    assert summed.tolist() == [1.0, 1.0] and dist.is_initialized()
    end_process_group()
    assert not dist.is_initialized()


# every file LLaMA-Factory's example configs name or list as a choice (`# choices: [ds_z0_config.json, ...]`)
@pytest.mark.parametrize("name", ["ds_z0_config.json", "ds_z2_config.json", "ds_z2_offload_config.json",
                                  "ds_z3_config.json", "ds_z3_offload_config.json", "ds_z3_fp8_config.json"])
def test_shipped_deepspeed_configs_validate(name):
    from lmforge.config import build_config

    cfg = build_config({"deepspeed": str(ROOT / "examples" / "deepspeed" / name)})
    assert cfg.training.deepspeed.endswith(name)


def test_every_deepspeed_file_llamafactorys_examples_name_is_shipped():
    import re

    from tests.refdata import refdata

    named = {match for path in refdata("llamafactory_examples_v0.9.3").rglob("*.yaml")
             for match in re.findall(r"ds_z\w+\.json", path.read_text())}
    assert named and named <= {path.name for path in (ROOT / "examples" / "deepspeed").iterdir()}


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


def test_master_addr_and_port_keys_reach_torchrun(monkeypatch):
    for name in ("NNODES", "MASTER_ADDR", "MASTER_PORT", "RDZV_ID", "MIN_NNODES", "MAX_NNODES"):
        monkeypatch.delenv(name, raising=False)
    command = torchrun_command(launch_plan(nproc=2, master_addr="10.0.0.2", master_port=29600), ["train", "r.yaml"])
    assert "--master_addr=10.0.0.2" in command and "--master_port=29600" in command
    monkeypatch.setenv("MASTER_PORT", "29600")  # the variable may repeat the key
    assert launch_plan(master_port=29600).master_port == 29600
    monkeypatch.setenv("MASTER_ADDR", "10.0.0.3")
    with pytest.raises(ConfigError, match=r"`master_addr: 10.0.0.2` in the config and MASTER_ADDR=10.0.0.3"):
        launch_plan(master_addr="10.0.0.2")
    from lmforge.config import build_config
    from lmforge.train.ray_engine import run_on_ray

    with pytest.raises(ConfigError, match="less than or equal to 65535"):
        build_config({"master_port": 70000})
    pytest.importorskip("ray.train")
    with pytest.raises(ConfigError, match="Ray sets the process group up"):
        run_on_ray(build_config({"master_port": 29600}), "run.yaml", [])


def test_a_deepspeed_config_for_one_process_runs_in_this_process_with_a_group_of_one(monkeypatch):
    """LLaMA-Factory's single-GPU DeepSpeed configs run in `lmforge train`'s own process (no torchrun and no
    second interpreter); DeepSpeed reads the rank variables a one-worker torchrun would set (without them it
    looks for MPI), and they are gone after the run."""
    for name in ("NPROC_PER_NODE", "NNODES", "FORCE_TORCHRUN", "RDZV_ID", "MASTER_PORT", "LOCAL_RANK", "RANK"):
        monkeypatch.delenv(name, raising=False)
    plan = launch_plan(deepspeed=True)
    assert plan.one_process_group and not plan.distributed
    with one_process_group(plan):
        assert is_worker() and is_main_worker() and os.environ["WORLD_SIZE"] == "1"
        assert os.environ["MASTER_PORT"] == str(plan.master_port)
    assert not is_worker() and "MASTER_PORT" not in os.environ
    monkeypatch.setenv("FORCE_TORCHRUN", "1")
    assert launch_plan(deepspeed=True).distributed and not launch_plan(deepspeed=True).one_process_group
    monkeypatch.delenv("FORCE_TORCHRUN")
    assert not launch_plan().one_process_group and not launch_plan(nproc=2, deepspeed=True).one_process_group


@pytest.mark.slow
def test_zero2_in_one_process_matches_one_process_without_deepspeed(tmp_path, monkeypatch, one_process):
    monkeypatch.delenv("MASTER_PORT", raising=False)
    config = tmp_path / "run.yaml"
    config.write_text(f"stage: sft\ndeepspeed: {ROOT / 'examples' / 'deepspeed' / 'ds_z2_config.json'}\n")
    out = tmp_path / "zero2"
    result = run_cli("train", str(config), *ARGS, "per_device_train_batch_size=4", f"output_dir={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "adapter_model.safetensors").is_file()
    for a, b in zip(logged(one_process), logged(out), strict=True):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-3)


@pytest.mark.slow
def test_ray_train_with_two_cpu_workers_matches_one_process_with_the_same_global_batch(tmp_path, monkeypatch,
                                                                                         one_process):
    """USE_RAY=1 and LLaMA-Factory's ray_* keys: a local Ray instance, two gloo workers of 2 rows each against one
    process of 4; the checkpoint the Trainer saves is reported to Ray's storage (ray_storage_path/ray_run_name)."""
    pytest.importorskip("ray.train")
    config = tmp_path / "run.yaml"
    config.write_text(f"stage: sft\nray_num_workers: 2\nresources_per_worker:\n  CPU: 1\nplacement_strategy: PACK\n"
                      f"ray_run_name: tiny\nray_storage_path: {tmp_path / 'saves'}\n"
                      "ray_init_kwargs:\n  num_cpus: 2\n  include_dashboard: false\n")
    monkeypatch.setenv("USE_RAY", "1")
    ray = run_cli("train", str(config), *ARGS, "per_device_train_batch_size=2", f"output_dir={tmp_path / 'ray'}",
                  "save_steps=3")
    assert ray.returncode == 0, (ray.stdout + ray.stderr)[-3000:]
    one, two = logged(one_process), logged(tmp_path / "ray")
    assert [line["epoch"] for line in two] == [line["epoch"] for line in one]  # 4 rows a step in both
    for a, b in zip(one, two, strict=True):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-3)
    assert summarised(tmp_path / "ray")["samples"] == 12  # both workers' rows counted
    assert list((tmp_path / "saves" / "tiny").glob("checkpoint_*/checkpoint/adapter_model.safetensors"))
    assert "Ray kept the run in" in ray.stdout


def test_ray_keys_and_the_local_cluster_check():
    from lmforge.config import build_config
    from lmforge.train.ray_engine import _check_local_cluster, worker_resources

    launch = build_config({"ray_num_workers": 4, "resources_per_worker": '{"GPU": 1}',
                           "ray_init_kwargs": '{"runtime_env": {"env_vars": {"A": "1"}}}'}).launch
    assert launch.resources_per_worker == {"GPU": 1} and launch.ray_init_kwargs["runtime_env"]["env_vars"] == {"A": "1"}
    assert worker_resources(build_config({}).launch, gpus=0) == {"CPU": 1}
    assert worker_resources(build_config({}).launch, gpus=8) == {"GPU": 1}
    with pytest.raises(ConfigError, match=r"needs 4 GPU, and the local Ray instance has 0"):
        _check_local_cluster(worker_resources(launch, gpus=0), launch.ray_num_workers, {"CPU": 2.0})
    with pytest.raises(ConfigError, match="placement_strategy"):
        build_config({"placement_strategy": "SPREAD_OUT"})


def test_a_workers_lmforge_error_reaches_the_user_as_its_message():
    """What a Ray worker raised comes back in Ray's WorkerGroupError: lmforge's own error is shown as it is."""
    ray_train = pytest.importorskip("ray.train")
    from lmforge.errors import DataError, LmforgeError
    from lmforge.train.ray_engine import _worker_error

    wrapped = ray_train.WorkerGroupError("rank 0 failed", {0: DataError("row 3 of data.json: no `messages`")})
    assert str(_worker_error(wrapped)) == "row 3 of data.json: no `messages`"
    other = _worker_error(ray_train.WorkerGroupError("rank 1 failed", {1: RuntimeError("NCCL timeout")}))
    assert type(other) is LmforgeError and "Ray Train stopped" in str(other) and "rank 1 failed" in str(other)


def test_use_ray_without_ray_names_the_extra(tmp_path, monkeypatch):
    """Without ray installed (its import path hidden) the error names the extra to install."""
    config = tmp_path / "run.yaml"
    config.write_text("stage: sft\n")
    hidden = tmp_path / "hide"
    (hidden / "ray").mkdir(parents=True)
    (hidden / "ray" / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
    monkeypatch.setenv("USE_RAY", "1")
    monkeypatch.setenv("PYTHONPATH", f"{hidden}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    result = run_cli("train", str(config), *ARGS, f"output_dir={tmp_path / 'out'}")
    assert result.returncode == 1
    assert 'pip install "lmforge[ray]"' in " ".join(result.stderr.split())


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
