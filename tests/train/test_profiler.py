"""`enable_torch_profiler`: the profiler's schedule over training steps writes a trace of the active step."""

import json

import pytest
from rich.console import Console

from lmforge.config import build_config
from lmforge.train.runner import run_training
from tests.conftest import ROOT


@pytest.mark.slow
def test_profiler_writes_one_trace_per_cycle(tmp_path):
    """wait 1, warm up 1, record 1, twice: steps 3 and 6 of 6 are traced, in output_dir/profiler/rank_0."""
    run_training(build_config({
        "model_name_or_path": "builtin:tiny-llama", "template": "chatml", "dataset": "identity",
        "dataset_dir": str(ROOT / "examples" / "data"), "max_samples": 8, "cutoff_len": 32, "max_steps": 6,
        "per_device_train_batch_size": 2, "report_to": "none", "output_dir": str(tmp_path), "save_strategy": "no",
        "enable_torch_profiler": True, "profiler_repeat": 2, "profiler_with_stack": False}), Console(quiet=True))
    traces = sorted((tmp_path / "profiler" / "rank_0").glob("*.pt.trace.json"))
    assert len(traces) == 2
    events = json.loads(traces[0].read_text())["traceEvents"]
    names = {event.get("name", "") for event in events}
    assert any(name.startswith("aten::") for name in names)  # operators recorded
    assert any("[memory]" in name for name in names)  # profiler_profile_memory: true
