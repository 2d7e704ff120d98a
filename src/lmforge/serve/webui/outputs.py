"""What the web UI reads back from a run's files: the training log (curves, progress and ETA), the
training summary, prediction scores and rows, and the export's verification lines."""

import html
import json
from pathlib import Path
from typing import Any

TRAINER_LOG = "trainer_log.jsonl"
PLOTTED = ("loss", "eval_loss")  # a stage that names no plots


def log_records(output_dir: str) -> list[dict[str, Any]]:
    """The records of output_dir/trainer_log.jsonl so far (a line being written is skipped)."""
    path = Path(output_dir or ".") / TRAINER_LOG
    if not output_dir or not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def loss_points(output_dir: str, metric: str = "loss") -> list[tuple[int, float]]:
    """(step, value) pairs of `metric` logged so far."""
    return [(int(r["current_steps"]), float(r[metric])) for r in log_records(output_dir) if r.get(metric) is not None]


def metric_panels(metrics: list[str]) -> list[list[str]]:
    """The losses share one panel; every other metric (accuracy, reward, KL...) gets its own scale."""
    losses = [metric for metric in metrics if metric.endswith("loss")]
    return ([losses] if losses else []) + [[metric] for metric in metrics if metric not in losses]


def loss_figure(output_dir: str, metrics: tuple[str, ...] = PLOTTED) -> Any:
    """A matplotlib figure of the logged curves among `metrics` (the stage's plots: loss, eval loss,
    accuracy, rewards...), one panel per scale, or None before the first logged step."""
    curves = {metric: points for metric in metrics if (points := loss_points(output_dir, metric))}
    if not curves:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = metric_panels(list(curves))
    figure, axes = plt.subplots(1, len(panels), figsize=(min(4 * len(panels), 12), 3), squeeze=False)
    for axis, panel in zip(axes[0], panels, strict=True):
        for metric in panel:
            steps, values = zip(*curves[metric], strict=True)
            axis.plot(steps, values, marker="o", label=metric)
        axis.set_xlabel("step")
        axis.legend()
    figure.tight_layout()
    plt.close(figure)
    return figure


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def progress_html(output_dir: str, eta_word: str) -> str:
    """A progress bar with steps, elapsed time and ETA from the newest log record."""
    records = log_records(output_dir)
    if not records:
        return ""
    last = records[-1]
    percent = float(last.get("percentage", 0.0))
    label = (f"{last['current_steps']}/{last['total_steps']} ({percent:.0f}%) · {_duration(last['elapsed_s'])} · "
             f"{eta_word} {_duration(last['remaining_s'])}")
    return (f"<div id='progress_bar_inner'><progress max='100' value='{percent}' style='width:100%'></progress>"
            f"<div>{html.escape(label)}</div></div>")


def summary_rows(output_dir: str) -> list[list[str]]:
    """The rows of output_dir/train_summary.json (what `lmforge train` prints as its summary table)."""
    path = Path(output_dir or ".") / "train_summary.json"
    if not output_dir or not path.is_file():
        return []
    summary = json.loads(path.read_text(encoding="utf-8"))
    return [[key, str(value)] for key, value in summary.items() if not isinstance(value, dict | list)]


def prediction_results(output_dir: str) -> list[list[str]]:
    """Scores of predict_results.json (BLEU-4, ROUGE, rows, speed)."""
    path = Path(output_dir or ".") / "predict_results.json"
    if not output_dir or not path.is_file():
        return []
    results = json.loads(path.read_text(encoding="utf-8"))
    return [[key.removeprefix("predict_"), f"{value:.4g}" if isinstance(value, float) else str(value)]
            for key, value in results.items()]


def prediction_rows(output_dir: str, limit: int = 200) -> list[list[str]]:
    """(prompt, prediction, label) of generated_predictions.jsonl."""
    path = Path(output_dir or ".") / "generated_predictions.jsonl"
    if not output_dir or not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines()[:limit]:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        predict = record.get("predict")
        rows.append([record.get("prompt", ""), " | ".join(predict) if isinstance(predict, list) else str(predict),
                     str(record.get("label") or "")])
    return rows


def verification_lines(log: str) -> str:
    """The export's logit-verification results (and the llama.cpp check) from its log."""
    return "\n".join(line for line in log.splitlines() if line.startswith(("verified", "llama.cpp", "error:")))
