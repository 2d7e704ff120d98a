"""The tests' `lmforge` runner: a command forked from the preloaded process answers as a fresh interpreter does."""

import os
import subprocess
import sys

import pytest

from tests.cli_process import CALL_TIME_VARIABLES, Forkserver, preload_key, run_lmforge
from tests.conftest import CLI_ENVIRONMENT, ROOT

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the runner forks only on Linux")


@pytest.fixture(scope="module")
def forkserver():
    server = Forkserver({**os.environ, **CLI_ENVIRONMENT})
    yield server
    server.close()


def fresh(args, cwd, env):
    return subprocess.run([sys.executable, "-m", "lmforge.cli.main", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, env=env)


@pytest.mark.parametrize("case", ["error", "success", "debug traceback"])
def test_a_forked_command_answers_as_a_fresh_interpreter(forkserver, tmp_path, case):
    # relative paths resolve in the command's own folder; LMFORGE_HOME reaches it unchanged
    success = (f"model_name_or_path: builtin:tiny-llama\ntemplate: chatml\ndataset: identity\n"
               f"dataset_dir: {ROOT / 'examples' / 'data'}\n")
    (tmp_path / "run.yaml").write_text({"error": "lora_rnk: 8\n", "success": success,
                                        "debug traceback": "learning_rate: fast\n"}[case])
    args = ("--debug", "check", "run.yaml") if case == "debug traceback" else ("check", "run.yaml")
    env = {**os.environ, **CLI_ENVIRONMENT, "LMFORGE_HOME": str(tmp_path / "home")}
    forked, expected = forkserver.run(args, tmp_path, env, timeout=120), fresh(args, tmp_path, env)
    assert (forked.returncode, forked.stdout) == (expected.returncode, expected.stdout)
    if case == "debug traceback":  # the frames above lmforge's own differ: runpy's vs the preloaded process's
        assert "Traceback" in forked.stderr and forked.stderr.splitlines()[-1] == expected.stderr.splitlines()[-1]
    else:
        assert forked.stderr == expected.stderr
    assert forked.returncode == (0 if case == "success" else 1)


def test_a_command_past_its_timeout_is_killed(forkserver):
    env = {**os.environ, **CLI_ENVIRONMENT}
    with pytest.raises(subprocess.TimeoutExpired):
        forkserver.run(("env",), ROOT, env, timeout=0.001)
    assert forkserver.run(("--help",), ROOT, env, timeout=120).returncode == 0  # and the next one runs


def test_an_environment_is_preloaded_the_second_time_it_is_asked_for(tmp_path, monkeypatch):
    from tests import cli_process

    monkeypatch.setattr(cli_process, "_preloaded", {})
    env = {**os.environ, **CLI_ENVIRONMENT, "LMFORGE_TEST_ONLY": str(tmp_path)}  # a key no other test asks for
    for expected_preloaded in (False, True):
        assert run_lmforge(("--help",), ROOT, env, timeout=120).returncode == 0
        assert (preload_key(env) in cli_process._preloaded) == expected_preloaded
    cli_process._preloaded[preload_key(env)].close()
    assert preload_key({**env, **dict.fromkeys(CALL_TIME_VARIABLES, "x")}) == preload_key(env)
