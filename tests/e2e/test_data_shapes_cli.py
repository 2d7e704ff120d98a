"""Data files in OpenAI's and trl's shapes, given directly, through `lmforge train` and `lmforge data preview`."""

import json
import math
import re

import pytest

from tests.conftest import ROOT, run_cli
from tests.data.test_openai_rows import TOOL_ROW, WEIGHTED_ROW


def write_rows(path, rows):
    path.write_text("\n".join(json.dumps(row) for row in rows))
    return path


def supervised_tokens(preview_stdout: str) -> int:
    return int(re.search(r"supervised: (\d+)", preview_stdout).group(1))


@pytest.mark.slow
def test_an_openai_fine_tuning_file_trains_and_weight_0_answers_are_not_supervised(tmp_path):
    data = write_rows(tmp_path / "chat.jsonl", [TOOL_ROW, WEIGHTED_ROW] * 4)
    all_trained = json.loads(json.dumps(WEIGHTED_ROW))
    all_trained["messages"][1]["weight"] = 1
    config = tmp_path / "run.yaml"
    config.write_text("model_name_or_path: builtin:tiny-llama\ntemplate: qwen\nstage: sft\nfinetuning_type: lora\n"
                      f"output_dir: {tmp_path / 'out'}\nmax_steps: 2\nper_device_train_batch_size: 4\n"
                      "report_to: none\n")
    counts = []
    for rows in ([WEIGHTED_ROW], [all_trained]):
        write_rows(tmp_path / "one.jsonl", rows)
        preview = run_cli("data", "preview", str(config), f"dataset={tmp_path / 'one.jsonl'}")
        assert preview.returncode == 0, preview.stderr
        counts.append(supervised_tokens(preview.stdout))
    assert counts[0] < counts[1]  # "Go away." and its end-of-turn are context only
    result = run_cli("train", str(config), f"dataset={data}")
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "out" / "train_summary.json").read_text())
    assert summary["steps"] == 2 and summary["trained_samples"] == 8 and math.isfinite(summary["final_loss"])
    assert "rows per dataset: " in result.stdout and ": 8" in result.stdout


@pytest.mark.slow
def test_an_openai_preference_file_trains_dpo(tmp_path):
    rows = [{"input": {"messages": [{"role": "user", "content": f"Capital of country {i}?"}]},
             "preferred_output": [{"role": "assistant", "content": "The capital."}],
             "non_preferred_output": [{"role": "assistant", "content": "No idea."}]} for i in range(4)]
    data = write_rows(tmp_path / "pairs.jsonl", rows)
    config = tmp_path / "dpo.yaml"
    config.write_text(f"model_name_or_path: builtin:tiny-llama\ntemplate: qwen\nstage: dpo\nfinetuning_type: lora\n"
                      f"dataset: {data}\noutput_dir: {tmp_path / 'out'}\nmax_steps: 2\n"
                      "per_device_train_batch_size: 2\nreport_to: none\n")
    result = run_cli("train", str(config))
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "out" / "train_summary.json").read_text())
    assert summary["steps"] == 2 and math.isfinite(summary["final_loss"])


@pytest.mark.slow
def test_the_openai_tools_example_previews_and_trains(tmp_path):
    example = ROOT / "examples" / "tools" / "sft_openai.yaml"
    preview = run_cli("data", "preview", str(example), cwd=ROOT)
    assert preview.returncode == 0, preview.stderr
    assert "rows per dataset: examples/data/openai_tools.jsonl: 8" in preview.stdout
    assert '{"name": "get_time", "arguments": {"city": "Paris"}}' in preview.stdout  # the second parallel call
    result = run_cli("train", str(example), "model_name_or_path=builtin:tiny-llama", "max_steps=1",
                     f"output_dir={tmp_path / 'out'}", cwd=ROOT)  # the same data and template on a tiny model
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "out" / "train_summary.json").read_text())["steps"] == 1
