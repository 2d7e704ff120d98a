"""The signal handling of `lmforge train` on its own (the CLI's behaviour: tests/e2e/test_train_outputs.py, and
under torchrun tests/train/test_distributed.py)."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from lmforge.train.checkpoints import mark_complete
from lmforge.train.interrupt import launched_run_stop
from lmforge.train.signals import DUPLICATE_WINDOW_S, Interruption, forward_signals, stop_on_signals


def test_the_first_signal_is_recorded_a_second_acts_and_the_old_handlers_come_back():
    before = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    interruption = Interruption()
    with stop_on_signals(interruption):
        os.kill(os.getpid(), signal.SIGTERM)
        assert interruption.requested and (interruption.name, interruption.exit_code) == ("SIGTERM", 143)
        os.kill(os.getpid(), signal.SIGINT)  # the same request by another route (torchrun, a scheduler)
        assert interruption.signal_number == signal.SIGTERM
        interruption.received_at -= DUPLICATE_WINDOW_S  # a while later: a second request
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


COUNT_SIGNALS = ("import signal, time\n"
                 "seen = []\n"
                 "signal.signal(signal.SIGTERM, lambda number, frame: seen.append(number))\n"
                 "print('ready', flush=True)\n"
                 "while not seen:\n"
                 "    time.sleep(0.01)\n"
                 "time.sleep(0.5)\n"
                 "print(len(seen), flush=True)\n")


def test_the_launcher_passes_a_request_on_once():
    process = subprocess.Popen([sys.executable, "-c", COUNT_SIGNALS], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "ready\n"
    interruption = Interruption()
    with forward_signals(process, interruption):
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)  # a duplicate: not passed on
        assert process.stdout.readline() == "1\n"
    process.wait(timeout=10)
    assert interruption.name == "SIGTERM"


def _checkpoint(output_dir, step: int):
    folder = output_dir / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": step, "max_steps": 400}))
    mark_complete(folder)
    return folder


def test_what_a_launched_run_left_when_it_was_stopped(tmp_path):
    before = time.time() - 1
    kept = _checkpoint(tmp_path, 5)
    saved = launched_run_stop(Interruption(signal.SIGTERM, received_at=before), tmp_path)
    assert (saved.saved, saved.step, saved.max_steps, saved.checkpoint) == (True, 5, 400, str(kept))
    late = launched_run_stop(Interruption(signal.SIGTERM, received_at=time.time() + 1), tmp_path)
    assert (late.saved, late.step, late.checkpoint) == (False, 5, str(kept))  # killed before its own save
    afresh = launched_run_stop(Interruption(signal.SIGTERM, received_at=time.time() + 1), tmp_path,
                               fresh_since=time.time() + 1)  # overwrite_output_dir: an older run's checkpoint
    assert (afresh.saved, afresh.checkpoint) == (False, None)
