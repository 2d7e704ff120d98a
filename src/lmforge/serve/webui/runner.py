"""A CLI command (`lmforge train` / `lmforge export`) run in the background for the web UI.

The command runs as a child process, so stopping it is a signal and a crash cannot take the UI down.
Its output is collected line by line for the live log.
"""

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

LOG_LINES_KEPT = 2000


class CommandRun:
    def __init__(self, command: str, config: Path, cwd: Path) -> None:
        self.command = command
        self.lines: list[str] = []
        env = {**os.environ, "COLUMNS": "120", "TERM": "dumb"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lmforge.cli.main", command, str(config)], cwd=cwd, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1, start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            del self.lines[:-LOG_LINES_KEPT]

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def status(self) -> str:
        code = self.process.poll()
        if code is None:
            return f"{self.command}: running"
        return f"{self.command}: finished" if code == 0 else f"{self.command}: failed (exit code {code})"

    def log(self, last: int = 200) -> str:
        return "\n".join(self.lines[-last:])

    def stop(self, timeout_s: float = 30.0) -> None:
        """Interrupt the command (its whole process group), then kill it if it does not end in time."""
        if not self.running:
            return
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=timeout_s)
