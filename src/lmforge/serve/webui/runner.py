"""A CLI command (`lmforge train|predict|export|data preview`) run in the background for the web UI.

The command runs as a child process in its own process group, so stopping it is a signal to the whole
group and a crash cannot take the UI down. Its output is collected line by line for the live log.

Stop sends SIGTERM, not SIGINT: a UI started in the background (`lmforge webui &`) has SIGINT ignored,
and children inherit that, so SIGINT would be ignored until the kill. Nothing is lost either way: the
trainer resumes from the newest complete checkpoint in output_dir.
"""

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

LOG_LINES_KEPT = 2000
STOP_GRACE_S = 30.0  # a stopped run saves its checkpoint before it exits (torchrun waits as long for its ranks)


class CommandRun:
    def __init__(self, command: list[str], config: Path, cwd: Path) -> None:
        self.command = " ".join(command)
        self.lines: list[str] = []
        self.stopped = False
        self.ended_shown = False  # the UI has shown how it ended
        env = {**os.environ, "COLUMNS": "120", "TERM": "dumb", "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lmforge.cli.main", *command, str(config)], cwd=cwd, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1, process_group=0)
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

    @property
    def state(self) -> str:
        """running, stopped (by `stop`), finished or failed."""
        code = self.process.poll()
        if code is None:
            return "running"
        if self.stopped:
            return "stopped"
        return "finished" if code == 0 else "failed"

    def status(self) -> str:
        state = self.state
        if state == "failed":
            return f"{self.command}: failed (exit code {self.process.returncode})"
        return f"{self.command}: {state}"

    def log(self, last: int = 400) -> str:
        self._reader.join(timeout=0 if self.running else 2)  # once ended: every line read
        return "\n".join(self.lines[-last:])

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """Terminate the command's whole process group; kill it if it is still there after `grace_s`."""
        if not self.running:
            return
        self.stopped = True
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=grace_s)
        except ProcessLookupError:
            pass  # it ended on its own meanwhile
        self.lines.append("stopped from the web UI")
