"""lmforge's processes run on tcmalloc where the system has it (cli/allocator.py)."""

import os
import subprocess
import sys

import pytest

from lmforge.cli import allocator


def test_relaunch_preloads_the_systems_tcmalloc(tmp_path, monkeypatch):
    monkeypatch.setattr(allocator.platform, "system", lambda: "Linux")
    library = tmp_path / "lib" / "libtcmalloc_minimal.so.4"
    library.parent.mkdir()
    library.write_bytes(b"")
    environ = {"CONDA_PREFIX": str(tmp_path), "LD_PRELOAD": "libother.so"}
    command, env = allocator.relaunch_command(["train", "job.yaml"], environ)
    assert command == [sys.executable, "-m", "lmforge.cli.main", "train", "job.yaml"]
    assert env["LD_PRELOAD"] == f"{library} libother.so" and env["CONDA_PREFIX"] == str(tmp_path)
    assert int(env["TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD"]) > 2**32
    # preloaded already (the relaunched process, torchrun's workers, a user's own choice), or asked not to
    assert allocator.relaunch_command(["train"], env) is None
    assert allocator.relaunch_command(["train"], {"LD_PRELOAD": "/opt/libjemalloc.so.2"}) is None
    assert allocator.relaunch_command(["train"], {**environ, "LMFORGE_ALLOCATOR": "system"}) is None
    monkeypatch.setattr(allocator, "LIBRARY_DIRS", (str(tmp_path / "empty"),))
    assert allocator.relaunch_command(["train"], {}) is None  # no tcmalloc on this system: nothing changes
    monkeypatch.setattr(allocator.platform, "system", lambda: "Darwin")
    assert allocator.relaunch_command(["train"], environ) is None


@pytest.mark.skipif(allocator.tcmalloc_library() is None,
                    reason="tcmalloc is not installed here (apt-get install libtcmalloc-minimal4; `make test` does)")
def test_the_cli_runs_on_tcmalloc_unless_told_otherwise():
    def allocator_row(**extra: str) -> str:
        env = {key: value for key, value in os.environ.items() if key not in ("LD_PRELOAD", "LMFORGE_ALLOCATOR")}
        output = subprocess.run([sys.executable, "-m", "lmforge.cli.main", "env"], env={**env, **extra},
                                capture_output=True, text=True, check=True).stdout
        return next(line for line in output.splitlines() if "memory allocator" in line)

    assert "tcmalloc" in allocator_row()
    assert "system malloc" in allocator_row(LMFORGE_ALLOCATOR="system")
