"""What `lmforge train` tells and leaves behind: evaluation results, resumed step counts, interrupts."""

import json
import os
import pty
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli
from tests.e2e.test_cli import TRAIN, write_config
from tests.train.test_distributed import free_port


@pytest.mark.slow
def test_evaluations_are_printed_saved_as_results_files_and_logged_once(tmp_path):
    out = tmp_path / "out"
    result = run_cli("train", str(write_config(tmp_path)), *TRAIN, f"output_dir={out}", "val_size=8",
                     "eval_strategy=steps", "eval_steps=2", "compute_accuracy=true", "per_device_eval_batch_size=4")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "eval at step 2/4  loss " in result.stdout and "eval at step 4/4  loss " in result.stdout
    assert "accuracy" in result.stdout and "perplexity" in result.stdout
    for row in ("eval loss", "eval accuracy", "eval perplexity"):
        assert row in result.stdout.split("training summary")[1], row
    evaluation = json.loads((out / "eval_results.json").read_text())
    assert evaluation["eval_perplexity"] == pytest.approx(2.718281828 ** evaluation["eval_loss"], rel=1e-6)
    assert 0 <= evaluation["eval_accuracy"] <= 1
    train = json.loads((out / "train_results.json").read_text())
    assert train["train_loss"] > 0 and "train_runtime" in train
    combined = json.loads((out / "all_results.json").read_text())
    assert combined["eval_loss"] == evaluation["eval_loss"] and combined["train_loss"] == train["train_loss"]
    lines = [json.loads(line) for line in (out / "trainer_log.jsonl").read_text().splitlines()]
    assert [line["current_steps"] for line in lines if "eval_loss" in line] == [2, 4]  # the last one once
    assert all(0 <= line["eval_accuracy"] <= 1 for line in lines if "eval_loss" in line)  # the UI's live plot
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["eval_loss"] == pytest.approx(evaluation["eval_loss"], abs=1e-4)


def _train_until_signalled(tmp_path: Path, number: int, extra: tuple[str, ...] = ()
                           ) -> tuple[subprocess.Popen, str, list[str]]:
    """Start a long run, send `number` once two steps are logged; (process, its stdout, its arguments)."""
    args = ["train", str(write_config(tmp_path)), *TRAIN, f"output_dir={tmp_path / 'out'}", "max_steps=400",
            "save_strategy=no", *extra]
    process = subprocess.Popen([sys.executable, "-m", "lmforge.cli.main", *args], cwd=ROOT, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env={**os.environ, "COLUMNS": "400", "PYTHONUNBUFFERED": "1"})
    seen = []
    for line in process.stdout:
        seen.append(line)
        if line.startswith("step 2/400"):
            process.send_signal(number)
            break
    stdout = "".join(seen) + process.stdout.read()
    process.wait(timeout=300)
    return process, stdout, args


# a DeepSpeed config for one process trains in lmforge's own process (no torchrun to pass the signal on)
ONE_PROCESS_DEEPSPEED = (f"deepspeed={ROOT / 'examples' / 'deepspeed' / 'ds_z2_config.json'}",)


@pytest.mark.slow
@pytest.mark.parametrize(("number", "name", "extra"), [(signal.SIGTERM, "SIGTERM", ()), (signal.SIGINT, "Ctrl-C", ()),
                                                       (signal.SIGTERM, "SIGTERM", ONE_PROCESS_DEEPSPEED)],
                         ids=["SIGTERM", "Ctrl-C", "SIGTERM-deepspeed"])
def test_a_signal_saves_a_checkpoint_and_prints_the_command_that_resumes(tmp_path, monkeypatch, number, name,
                                                                          extra):
    monkeypatch.delenv("MASTER_PORT", raising=False)
    process, stdout, args = _train_until_signalled(tmp_path, number, extra)
    assert process.returncode == 128 + number, process.stderr.read()[-3000:]
    last = stdout.rstrip().splitlines()[-1]
    assert last.startswith(f"stopped by {name} at step ") and "/400; checkpoint kept: " in last
    step = int(last.split(" at step ")[1].split("/")[0])
    checkpoint = tmp_path / "out" / f"checkpoint-{step}"
    assert f"checkpoint kept: {checkpoint};" in last
    assert (checkpoint / "lmforge_complete.json").is_file()  # saved although save_strategy is no
    command = shlex.split(last.split("resume with: ")[1])
    assert command == ["lmforge", *args, f"resume_from_checkpoint={checkpoint}"]
    if number != signal.SIGTERM:
        return
    # the printed command resumes (stopped early here by one more step), and the summary says so
    resumed = run_cli(*command[1:], f"max_steps={step + 1}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming from {checkpoint}" in resumed.stdout
    assert f"1 this run, {step + 1} in total" in resumed.stdout
    summary = json.loads((tmp_path / "out" / "train_summary.json").read_text())
    assert (summary["steps"], summary["steps_this_run"]) == (step + 1, 1)


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _in_a_terminal_until_ctrl_c(args: list[str]) -> tuple[int, str]:
    """Run `lmforge ARGS` on a pseudo-terminal, type Ctrl-C once two steps are logged; (exit code, what the
    terminal received, as raw text)."""
    pid, terminal = pty.fork()
    if pid == 0:  # the child: a session of its own whose controlling terminal is the pty
        os.chdir(ROOT)
        os.execve(sys.executable, [sys.executable, "-m", "lmforge.cli.main", *args],
                  {**os.environ, "COLUMNS": "200", "TERM": "xterm-256color"})
    received = b""
    typed = False
    while True:
        try:
            chunk = os.read(terminal, 65536)
        except OSError:  # EIO: every process holding the terminal has ended
            break
        if not chunk:
            break
        received += chunk
        if not typed and "step 2/400" in ANSI.sub("", received.decode(errors="replace")):  # numbers are coloured
            os.write(terminal, b"\x03")  # the terminal driver sends SIGINT to the foreground process group
            typed = True
    os.close(terminal)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), received.decode(errors="replace")


@pytest.mark.slow
@pytest.mark.parametrize("nproc", [[], ["--nproc", "2"]], ids=["one-process", "two-processes"])
def test_ctrl_c_in_a_terminal_closes_the_progress_bar_line_and_ends_with_one_line(tmp_path, nproc, monkeypatch):
    monkeypatch.setenv("MASTER_PORT", str(free_port()))
    code, received = _in_a_terminal_until_ctrl_c(
        ["train", str(write_config(tmp_path)), *TRAIN, f"output_dir={tmp_path / 'out'}", "max_steps=400",
         "per_device_train_batch_size=2", "save_strategy=no", *nproc])
    assert code == 130, received[-3000:]
    assert received.endswith("\r\n")  # the shell's prompt starts on a line of its own
    lines = [line for line in ANSI.sub("", received).replace("\r\n", "\n").split("\n") if line.strip()]
    assert lines[-1].startswith("stopped by Ctrl-C at step ")
    assert sum(line.startswith("stopped by") for line in lines) == 1 and "Traceback" not in received
    # the bar's last drawing ends its line before the report: the step it shows is the step reported
    step = lines[-1].split(" at step ")[1].split(";")[0]
    bar = lines[-2].split("\r")[-1]
    assert bar.lstrip("^C").startswith("training") and f" {step} " in bar, lines[-3:]
