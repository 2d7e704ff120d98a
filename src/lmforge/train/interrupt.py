"""Ctrl-C and SIGTERM (a preempted cluster job) during training: finish the step, save a checkpoint, stop.

While `stop_on_signals` is active, SIGINT/SIGTERM only raise a flag; at the end of the running step
`SaveAndStopCallback` asks the Trainer to save a checkpoint and stop, so the run can be resumed from it.
A second signal does what the previous handler would do (Ctrl-C raises KeyboardInterrupt at once).
The previous handlers come back when the run ends.
"""

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass
class Interruption:
    signal_number: int | None = None

    @property
    def requested(self) -> bool:
        return self.signal_number is not None

    @property
    def name(self) -> str:
        return "Ctrl-C" if self.signal_number == signal.SIGINT else signal.Signals(self.signal_number or 0).name

    @property
    def exit_code(self) -> int:
        return 128 + (self.signal_number or 0)  # the shell's convention: 130 for SIGINT, 143 for SIGTERM


class SaveAndStopCallback(TrainerCallback):
    """After the step in progress: save a checkpoint and end training when a signal arrived."""

    def __init__(self, interruption: Interruption) -> None:
        self.interruption = interruption

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **_: Any) -> None:
        if self.interruption.requested:
            control.should_save = True
            control.should_training_stop = True


@contextmanager
def stop_on_signals(interruption: Interruption) -> Iterator[None]:
    """Record SIGINT/SIGTERM in `interruption` instead of dying; restore the previous handlers after.
    Only the main thread may set handlers: elsewhere (training called from a thread) signals act as before."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.getsignal(number) for number in SIGNALS}

    def record(number: int, frame: FrameType | None) -> None:
        if interruption.requested:  # a second signal: no more waiting
            handler = previous[number]
            if callable(handler):
                handler(number, frame)
                return
            if number == signal.SIGINT:
                raise KeyboardInterrupt
            raise SystemExit(interruption.exit_code)
        interruption.signal_number = number

    for number in SIGNALS:
        signal.signal(number, record)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


class TrainingInterrupted(Exception):  # an outcome the CLI reports, not an LmforgeError
    """Training stopped on a signal after saving `checkpoint` at `step`."""

    def __init__(self, interruption: Interruption, step: int, max_steps: int, checkpoint: str) -> None:
        super().__init__(f"{interruption.name} at step {step}/{max_steps}")
        self.interruption, self.step, self.max_steps, self.checkpoint = interruption, step, max_steps, checkpoint
