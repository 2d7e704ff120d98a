"""The signal handling of `lmforge train` on its own (the CLI's behaviour: tests/e2e/test_train_outputs.py)."""

import os
import signal
import threading

import pytest

from lmforge.train.interrupt import Interruption, stop_on_signals


def test_the_first_signal_is_recorded_a_second_acts_and_the_old_handlers_come_back():
    before = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    interruption = Interruption()
    with stop_on_signals(interruption):
        os.kill(os.getpid(), signal.SIGTERM)
        assert interruption.requested and (interruption.name, interruption.exit_code) == ("SIGTERM", 143)
        with pytest.raises(KeyboardInterrupt):  # the previous SIGINT handler: Python's
            os.kill(os.getpid(), signal.SIGINT)
    assert {number: signal.getsignal(number) for number in before} == before


def test_outside_the_main_thread_nothing_is_installed():
    seen = []

    def run() -> None:
        with stop_on_signals(Interruption()):
            seen.append(signal.getsignal(signal.SIGTERM))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert seen == [signal.getsignal(signal.SIGTERM)]
