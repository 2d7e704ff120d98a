"""`lmforge predict`: jsonl written batch by batch, resumed after an interruption."""

import json

import pytest

from tests.conftest import ROOT, run_cli


def _config(tmp_path, extra=""):
    path = tmp_path / "predict.yaml"
    path.write_text("model_name_or_path: builtin:tiny-llama\ntemplate: chatml\ndo_sample: false\n"
                    f"max_new_tokens: 4\neval_dataset: identity\ndataset_dir: {ROOT / 'examples' / 'data'}\n"
                    f"max_samples: 5\ninfer_batch_size: 2\noutput_dir: {tmp_path / 'out'}\n{extra}")
    return path


@pytest.mark.slow
def test_predict_writes_every_row_and_resumes(tmp_path):
    config = _config(tmp_path)
    result = run_cli("predict", str(config))
    assert result.returncode == 0, result.stderr
    path = tmp_path / "out" / "generated_predictions.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == 5 and rows[0]["prompt"] == "Who are you?" and rows[0]["label"].startswith("I am Forge")
    assert "predicted 2/5" in result.stdout  # written batch by batch
    scores = json.loads((tmp_path / "out" / "predict_results.json").read_text())
    assert {"predict_bleu-4", "predict_rouge-1", "predict_rouge-2", "predict_rouge-l"} <= set(scores)

    # an interrupted run: two whole rows and a torn third line
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:2]) + lines[2][:10])
    again = run_cli("predict", str(config))
    assert again.returncode == 0, again.stderr
    assert "predicted 2/5" not in again.stdout and "predicted 4/5" in again.stdout  # skipped the done rows
    assert [json.loads(line) for line in path.read_text().splitlines()] == rows

    other = _config(tmp_path)
    other.write_text(other.read_text().replace("eval_dataset: identity", f"eval_dataset: {tmp_path / 'q.json'}"))
    (tmp_path / "q.json").write_text(json.dumps([{"instruction": "hi", "output": "x"}]))
    clash = run_cli("predict", str(other))
    assert clash.returncode == 1 and "holds predictions for other data" in " ".join(clash.stderr.split())
