"""bench/grpo.py's two sides on the tiny model, so the benchmark cannot rot between the runs that record it."""

import argparse

import pytest
from bench.grpo import MODELS, config, run_side


@pytest.mark.slow
@pytest.mark.parametrize("side", ["lmforge", "trl"])
def test_each_side_trains_and_times_its_steps(tmp_path, monkeypatch, side):
    monkeypatch.setenv("LMFORGE_HOME", str(tmp_path / "home"))
    args = argparse.Namespace(batch=4, tokens=4, steps=2)
    steps, cpu, tokens_per_s = run_side(side, config(*MODELS["tiny-llama"], str(tmp_path / "out"), args))
    assert len(steps) == len(cpu) == 1  # the warm-up step is not counted
    assert cpu[0] > 0 and steps[0] > 0 and tokens_per_s > 0
