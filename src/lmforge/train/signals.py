"""How a training process (and the launcher in front of torchrun) receives Ctrl-C and SIGTERM.

While `stop_on_signals` is active, SIGINT/SIGTERM only record the request in an `Interruption`; the training
loop acts on it at the end of the running step (`train/interrupt.py`). A second signal does what the
previous handler would do (Ctrl-C raises KeyboardInterrupt at once), unless it comes within
`DUPLICATE_WINDOW_S` of the first: that is the same request delivered by several routes (the launcher
forwarding it, torchrun forwarding it, a cluster scheduler signalling every process of the job).
`forward_signals` is the launcher's side: each request goes to the process it started, once.
Only the main thread may set handlers: elsewhere (training called from a thread) signals act as before.
"""

import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)
DUPLICATE_WINDOW_S = 1.0


@dataclass
class Interruption:
    signal_number: int | None = None  # what stops the run: this process's signal, or another process's
    received_at: float | None = None  # time.time() of the first signal this process received

    @property
    def requested(self) -> bool:
        return self.signal_number is not None

    @property
    def name(self) -> str:
        return "Ctrl-C" if self.signal_number == signal.SIGINT else signal.Signals(self.signal_number or 0).name

    @property
    def exit_code(self) -> int:
        return 128 + (self.signal_number or 0)  # the shell's convention: 130 for SIGINT, 143 for SIGTERM

    def record(self, number: int) -> bool:
        """Note a signal; False when it is a second request (not a duplicate of the first)."""
        now = time.time()
        if self.received_at is None:
            self.received_at = now
            self.signal_number = self.signal_number or number
            return True
        return now - self.received_at < DUPLICATE_WINDOW_S


@contextmanager
def _handling(handle: Callable[[int, FrameType | None, dict[int, Any]], None]) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.getsignal(number) for number in SIGNALS}
    for number in SIGNALS:
        signal.signal(number, lambda number, frame: handle(number, frame, previous))
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _act_as_before(number: int, frame: FrameType | None, previous: dict[int, Any], exit_code: int) -> None:
    handler = previous[number]
    if callable(handler):
        handler(number, frame)
        return
    if number == signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(exit_code)


@contextmanager
def stop_on_signals(interruption: Interruption) -> Iterator[None]:
    """Record SIGINT/SIGTERM in `interruption` instead of dying; restore the previous handlers after."""

    def handle(number: int, frame: FrameType | None, previous: dict[int, Any]) -> None:
        if not interruption.record(number):  # a second request: no more waiting
            _act_as_before(number, frame, previous, interruption.exit_code)

    with _handling(handle):
        yield


@contextmanager
def forward_signals(process: subprocess.Popen, interruption: Interruption) -> Iterator[None]:
    """The launcher's handlers: pass each request (not its duplicates) on to `process`, record the first."""

    def handle(number: int, frame: FrameType | None, previous: dict[int, Any]) -> None:
        first = interruption.received_at is None
        if interruption.record(number) and not first:
            return  # the first request's duplicate
        process.send_signal(number)

    with _handling(handle):
        yield
