"""bench/startup.py times whole commands of two trees; run here on one tree against itself, so it cannot rot."""

import subprocess
import sys

from tests.conftest import ROOT


def _bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "bench" / "startup.py"), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_the_config_error_job_runs_both_trees_and_prints_its_row(tmp_path):
    result = _bench("--baseline-src", str(ROOT / "src"), "--runs", "1", "--jobs", "check-error", "--no-record")
    assert result.returncode == 0, result.stderr[-3000:]
    row = result.stdout.splitlines()[-1].split()
    assert row[0] == "check-error" and row[-1].endswith("x")


def test_a_baseline_without_lmforge_is_refused(tmp_path):
    result = _bench("--baseline-src", str(tmp_path), "--no-record")
    assert result.returncode == 1 and "has no lmforge package" in result.stderr
