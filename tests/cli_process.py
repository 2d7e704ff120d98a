"""`lmforge ...` in a fresh process that starts with the libraries already imported.

A CLI command spends most of its seconds importing torch, transformers, peft, datasets and the optional packages
they import when installed (DeepSpeed, mlflow, bitsandbytes: about 9 s of a 12 s tiny training run, 2 cores).
Each test worker keeps one process that has imported them once (`serve`), and each command runs in a fork of it:
a new process, its own working directory, environment, arguments, stdin, stdout, stderr and exit status, as
`python -m lmforge.cli.main ...` would have, with the imports done. Python exits the child as it exits any
process (exit code, uncaught traceback, atexit, threads joined).

The fork is used only where it cannot differ from a fresh interpreter: the environment the imports saw (only
variables read when a command runs may differ), no `--verbose` (which changes what the imports may print), Linux.
An environment is preloaded the second time a command asks for it (tests change variables for one test, and the
libraries set some for the rest of a worker's life); before that, with `--verbose` and with
`LMFORGE_TEST_FORK=0`, the command runs in a plain subprocess.
"""

import json
import locale
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# read when a command runs, never at import: by lmforge; by torch (its inductor's cache, which it sets in the
# test process on first use; its CUDA check); by tokenizers when its thread pool starts; pytest's own marker
CALL_TIME_VARIABLES = frozenset({"LMFORGE_HOME", "MASTER_PORT", "TORCHINDUCTOR_CACHE_DIR",
                                 "PYTORCH_NVML_BASED_CUDA_CHECK", "RAYON_NUM_THREADS", "PYTEST_CURRENT_TEST"})
KEPT_PRELOADS = 2  # each holds the libraries' memory (about 1 GB)
# what a training, chat or export command imports; importing them is all the preloading does
PRELOAD = ("lmforge.preflight", "lmforge.model.fit", "lmforge.model.quantization", "lmforge.train.stages",
           "lmforge.train.runner", "lmforge.infer.factory", "lmforge.cli.repl", "datasets", "matplotlib.pyplot")


def command_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment `lmforge` runs its command in: its own after the allocator re-execution."""
    from lmforge.cli.allocator import relaunch_command

    relaunch = relaunch_command(["train"], environ)
    return dict(relaunch[1] if relaunch else environ)


def preload_key(env: Mapping[str, str]) -> frozenset:
    """What a preloaded process's environment must equal."""
    return frozenset((key, value) for key, value in env.items() if key not in CALL_TIME_VARIABLES)


class Forkserver:
    """A process that has imported the libraries in one environment; `run` forks it for one command."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from tests.cli_process import serve; serve()"], cwd=ROOT,
            env=command_environment(env), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        ready = self.process.stdout.readline()
        if not ready:
            raise RuntimeError("the preloaded lmforge process did not start")
        self.preload_output = json.loads(ready)  # what the imports printed, as every command's start would

    def close(self) -> None:
        self.process.stdin.close()  # it exits at the end of its input
        self.process.wait()

    def run(self, args: tuple[str, ...], cwd: Path, env: Mapping[str, str], timeout: float,
            stdin_text: str | None = None) -> subprocess.CompletedProcess:
        with tempfile.TemporaryDirectory() as folder:
            out, err, given = Path(folder, "stdout"), Path(folder, "stderr"), Path(folder, "stdin")
            given.write_text(stdin_text or "")  # what the command reads before end of input
            request = {"args": list(args), "cwd": str(cwd), "env": command_environment(env), "timeout": timeout,
                       "stdin": str(given), "stdout": str(out), "stderr": str(err)}
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
            reply = json.loads(self.process.stdout.readline())
            encoding = locale.getpreferredencoding(False)
            stdout = self.preload_output["stdout"] + (out.read_text(encoding) if out.exists() else "")
            stderr = self.preload_output["stderr"] + (err.read_text(encoding) if err.exists() else "")
        command = [sys.executable, "-m", "lmforge.cli.main", *args]
        if reply["timed_out"]:
            raise subprocess.TimeoutExpired(command, timeout, stdout, stderr)
        return subprocess.CompletedProcess(command, reply["returncode"], stdout, stderr)


def serve() -> None:
    """The preloaded process: import, then fork once per request line on stdin; the child returns from here
    into the command, the parent answers on its stdout with the child's exit status. The process exits when
    its test worker does (stdin closes)."""
    import importlib

    replies = os.fdopen(os.dup(1), "w")
    own_stderr = os.dup(2)
    captured = {}
    with tempfile.TemporaryDirectory() as folder:
        for fd, name in ((1, "stdout"), (2, "stderr")):  # descriptors, so native libraries' output is caught too
            opened = os.open(Path(folder, name), os.O_WRONLY | os.O_CREAT, 0o600)
            os.dup2(opened, fd)
            os.close(opened)
        import lmforge.cli.main  # noqa: F401 (the command modules, in the order `lmforge` imports them)
        from lmforge.cli.quiet import hide_unactionable_output

        hide_unactionable_output(False)  # as the command callback does before a command imports anything
        for module in PRELOAD:
            importlib.import_module(module)
        sys.stdout.flush()
        sys.stderr.flush()
        for name in ("stdout", "stderr"):
            captured[name] = Path(folder, name).read_text(locale.getpreferredencoding(False))
    os.dup2(own_stderr, 2)  # the test worker's, for this process's own failures
    print(json.dumps(captured), file=replies, flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            replies.close()
            _become_command(request)
            import runpy

            sys.modules.pop("lmforge.cli.main")  # `python -m` runs it as __main__ only, never imported beside

            runpy.run_module("lmforge.cli.main", run_name="__main__", alter_sys=True)
            return
        returncode, timed_out = _wait(pid, request["timeout"])
        print(json.dumps({"returncode": returncode, "timed_out": timed_out}), file=replies, flush=True)


def _become_command(request: dict) -> None:
    """In the forked child: the process `python -m lmforge.cli.main args` started in `cwd` would be."""
    for fd, path, flags in ((0, request["stdin"], os.O_RDONLY), (1, request["stdout"], os.O_WRONLY | os.O_CREAT),
                            (2, request["stderr"], os.O_WRONLY | os.O_CREAT)):
        opened = os.open(path, flags, 0o600)
        os.dup2(opened, fd)
        os.close(opened)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.path[0] = request["cwd"]
    sys.argv = ["lmforge", *request["args"]]


def _wait(pid: int, timeout: float) -> tuple[int, bool]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status), False
        time.sleep(0.02)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return -9, True


_preloaded: dict[frozenset, Forkserver] = {}  # oldest first
_asked = Counter()


def run_lmforge(args: tuple[str, ...], cwd: Path, env: Mapping[str, str], timeout: float,
                stdin_text: str | None = None) -> subprocess.CompletedProcess:
    """`lmforge args` in a fresh process: a fork of a process preloaded in `env` where that is the same, else a
    new interpreter."""
    if os.environ.get("LMFORGE_TEST_FORK", "1") != "0" and sys.platform == "linux" and "--verbose" not in args:
        key = preload_key(env)
        _asked[key] += 1
        if key not in _preloaded and _asked[key] >= 2:
            if len(_preloaded) == KEPT_PRELOADS:
                _preloaded.pop(next(iter(_preloaded))).close()
            _preloaded[key] = Forkserver(env)
        if key in _preloaded and _preloaded[key].process.poll() is None:
            return _preloaded[key].run(args, cwd, env, timeout, stdin_text)
    return subprocess.run([sys.executable, "-m", "lmforge.cli.main", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=dict(env), input=stdin_text)
