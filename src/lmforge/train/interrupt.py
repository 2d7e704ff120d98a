"""Ctrl-C and SIGTERM (a preempted cluster job) during training: finish the step, save a checkpoint, stop.

Signals are received as `train/signals.py` says. At the end of every step `SaveAndStopCallback` asks whether
any process received one (one all-reduce under torchrun: the processes must stop at the same step, and
the signal reaches them one after another); if so every process saves the checkpoint and training ends,
and the run raises `TrainingInterrupted`. Under torchrun the launcher forwards the signal to torchrun,
which passes it to every process and waits `TORCH_ELASTIC_SHUTDOWN_TIMEOUT` seconds (30) before killing
them; `launched_run_stop` tells the launcher what a run that was killed before saving left behind.
"""

import json
from pathlib import Path
from typing import Any

import torch
from torch import distributed
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from lmforge.train.checkpoints import MARKER, last_complete_checkpoint
from lmforge.train.signals import Interruption


def agreed_signal(number: int | None, device: torch.device) -> int | None:
    """The signal any process received (the highest number), None when none did; every process calls it."""
    if not (distributed.is_available() and distributed.is_initialized()) or distributed.get_world_size() == 1:
        return number
    flag = torch.tensor([number or 0], device=device)
    distributed.all_reduce(flag, op=distributed.ReduceOp.MAX)
    return int(flag.item()) or None


class SaveAndStopCallback(TrainerCallback):
    """After the step in progress: save a checkpoint and end training when a process received a signal."""

    def __init__(self, interruption: Interruption) -> None:
        self.interruption = interruption

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **_: Any) -> None:
        number = agreed_signal(self.interruption.signal_number, args.device)
        if number:
            self.interruption.signal_number = number
            control.should_save = True
            control.should_training_stop = True


class TrainingInterrupted(Exception):  # an outcome the CLI reports, not an LmforgeError
    """Training stopped on a signal; `saved`: it saved `checkpoint` at `step` on the way out, else
    `checkpoint` is the newest one kept (None: none) and `step` its step."""

    def __init__(self, interruption: Interruption, step: int, max_steps: int, checkpoint: str | None,
                 saved: bool = True) -> None:
        super().__init__(f"{interruption.name} at step {step}/{max_steps}")
        self.interruption, self.step, self.max_steps = interruption, step, max_steps
        self.checkpoint, self.saved = checkpoint, saved


def launched_run_stop(interruption: Interruption, output_dir: Path,
                      fresh_since: float | None = None) -> TrainingInterrupted:
    """After the launcher forwarded a signal and the processes ended: the checkpoint they saved since
    (`saved`: rank 0 reported it), else the newest one kept. `fresh_since`: the run started afresh
    (`overwrite_output_dir`) at this time, and older checkpoints are not its own."""
    newest, _ = last_complete_checkpoint(output_dir)
    completed = (newest / MARKER).stat().st_mtime if newest else 0.0
    if newest is None or completed < (fresh_since or 0.0):
        return TrainingInterrupted(interruption, 0, 0, None, saved=False)
    state = json.loads((newest / "trainer_state.json").read_text())
    return TrainingInterrupted(interruption, state["global_step"], state["max_steps"], str(newest),
                               saved=completed >= (interruption.received_at or 0.0))
