"""The GPU suite's pieces that only a GPU run reaches: steady-state throughput, the GPU table, the wheel checks."""

import json
import zipfile

import pytest
from bench.gpu.plan import PLAN, Context
from bench.gpu.report import markdown
from bench.gpu.suite import skip_reason
from bench.gpu.train_steps import steady_tokens_per_s
from bench.gpu.wheels import check_folder, read_wheel_list
from packaging.version import Version


def test_steady_throughput_counts_only_between_the_first_and_last_log_lines(tmp_path):
    log = tmp_path / "trainer_log.jsonl"
    lines = [{"current_steps": 5, "loss": 9.0, "elapsed_s": 10.0, "non_pad_tokens_per_s": 2000.0},  # 20,000 tokens
             {"current_steps": 10, "loss": 8.0, "elapsed_s": 12.0, "non_pad_tokens_per_s": 5000.0},
             {"current_steps": 20, "loss": 7.0, "elapsed_s": 16.0, "non_pad_tokens_per_s": 8000.0}]  # 128,000
    log.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    assert steady_tokens_per_s(log) == pytest.approx((128_000 - 20_000) / 6.0)
    log.write_text(json.dumps(lines[0]) + "\n")
    assert steady_tokens_per_s(log) is None  # one line: no interval to measure
    assert steady_tokens_per_s(tmp_path / "missing.jsonl") is None


def test_the_gpu_table_shows_mfu_memory_and_what_did_not_run():
    train = {"name": "train-full-1.5b", "status": "ok", "box_s": 70, "seconds": 41.0, "model": "qwen2.5-1.5b",
             "method": "full", "tokens_per_s": 30123.4, "peak_memory_mib": 30500.0, "peak_memory_kind": "GPU allocated",
             "mfu": 0.3512, "flops_per_token": 9.8e9, "trainable_params": 1_543_714_304, "final_loss": 11.2}
    summary = {"dry_run": False, "date": "2027-01-01", "total_s": 465, "wall_s": 400.0, "steps": [
        {"name": "env", "status": "ok", "box_s": 25, "seconds": 6.0, "device": "NVIDIA H200", "python": "3.12.3",
         "versions": {"torch": "2.11.0", "vllm": None}},
        train,
        {"name": "zero3", "status": "skipped", "box_s": 60, "why": "suite budget spent (3 s left of 465 s)"},
        {"name": "pytest-gpu", "status": "failed", "box_s": 45, "seconds": 30.0, "tests": 9, "failures": 1,
         "errors": 0, "skipped": 0, "why": "failed: test_x"}]}
    text = markdown(summary)
    assert "2027-01-01, NVIDIA H200, Python 3.12.3; torch 2.11.0" in text and "vllm" not in text
    assert "| qwen2.5-1.5b | full | 30,123 | 30,500 | 35.1% | 9.80 G | 1,543,714,304 | 11.200 |" in text
    assert "| zero3 | skipped | - | 60 | suite budget spent (3 s left of 465 s) |" in text
    assert "| pytest-gpu | failed | 30.0 | 45 | 9 tests, 1 failed, 0 skipped; failed: test_x |" in text


def _wheel(folder, name, version, requires=()):
    path = folder / f"{name}-{version}-py3-none-any.whl"
    metadata = "\n".join([f"Name: {name}", f"Version: {version}", *(f"Requires-Dist: {r}" for r in requires)])
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{name}-{version}.dist-info/METADATA", metadata + "\n")
    return path


def test_the_folder_check_finds_strays_missing_wheels_and_unmet_dependencies(tmp_path):
    wheels = [wheel for wheel in read_wheel_list() if wheel.name in ("trl", "hjson")]
    _wheel(tmp_path, "trl", "1.16.0", ["datasets>=4.7.0", "accelerate>=1.10.1", "nothere", 'extra-only; extra == "x"'])
    _wheel(tmp_path, "stray", "1.0")
    image = {"accelerate": None, "datasets": None}
    problems = check_folder(wheels, image, tmp_path, groups=("core", "zero"))
    assert any("stray-1.0" in p and "not in wheels.txt" in p for p in problems)
    assert any("hjson==3.1.0 is listed but not in" in p for p in problems)
    assert any("needs nothere: neither carried nor on the image" in p for p in problems)
    assert not any("extra-only" in p for p in problems)
    too_old = check_folder(wheels, {"accelerate": Version("1.9"), "datasets": None}, tmp_path)
    assert any("needs accelerate>=1.10.1, but accelerate 1.9 would be there" in p for p in too_old)


@pytest.mark.parametrize(("env_status", "runs"), [("ok", True), ("timed out", True), ("failed", False)])
def test_only_a_failed_env_step_stops_the_suite(tmp_path, env_status, runs):
    """A cold GPU machine's first imports outlasted the env box (H100, 2026-12-05): the steps after it go on."""
    models_step = next(step for step in PLAN if step.name == "models")
    results = {"env": {"status": env_status}}
    reason = skip_reason(models_step, Context(tmp_path, dry_run=False), None, results)
    assert (reason == "") is runs
