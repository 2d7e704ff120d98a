"""What the web UI's forms turn into: flat config dicts, YAML previews, and loss curves."""

import json
from pathlib import Path
from typing import Any

import yaml

METHODS = ("lora", "full")


def train_config(model: str, template: str, dataset: str, dataset_dir: str, method: str, output_dir: str,
                 learning_rate: float, max_steps: int, batch_size: int, cutoff_len: int,
                 lora_rank: int) -> dict[str, Any]:
    """The flat config `lmforge train` gets; empty fields are left out so the defaults apply."""
    config: dict[str, Any] = {
        "model_name_or_path": model, "template": template or None, "stage": "sft", "finetuning_type": method,
        "dataset": dataset, "dataset_dir": dataset_dir or None, "output_dir": output_dir,
        "learning_rate": float(learning_rate), "max_steps": int(max_steps),
        "per_device_train_batch_size": int(batch_size), "cutoff_len": int(cutoff_len), "logging_steps": 1,
        "report_to": "none", "overwrite_output_dir": True,
    }
    if method == "lora":
        config.update(lora_rank=int(lora_rank), lora_target="all")
    return {key: value for key, value in config.items() if value not in (None, "")}


def export_config(model: str, adapter: str, template: str, export_dir: str) -> dict[str, Any]:
    config = {"model_name_or_path": model, "adapter_name_or_path": adapter or None, "template": template or None,
              "export_dir": export_dir}
    return {key: value for key, value in config.items() if value not in (None, "")}


def to_yaml(config: dict[str, Any]) -> str:
    return yaml.safe_dump(config, sort_keys=False, allow_unicode=True)


def loss_points(output_dir: str) -> list[tuple[int, float]]:
    """(step, loss) pairs logged so far in output_dir/trainer_log.jsonl."""
    path = Path(output_dir) / "trainer_log.jsonl"
    if not output_dir or not path.is_file():
        return []
    points = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line being written right now
        if record.get("loss") is not None:
            points.append((int(record["current_steps"]), float(record["loss"])))
    return points


def loss_figure(points: list[tuple[int, float]]) -> Any:
    """A matplotlib figure of the loss curve, or None before the first logged step."""
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 3))
    steps, losses = zip(*points, strict=True)
    axes.plot(steps, losses, marker="o", color="#137")
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    figure.tight_layout()
    plt.close(figure)
    return figure
