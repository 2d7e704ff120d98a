"""Loss curves as PNG files (matplotlib, no display needed)."""

from pathlib import Path
from typing import Any


def _smooth(values: list[float], weight: float = 0.6) -> list[float]:
    smoothed, last = [], values[0] if values else 0.0
    for value in values:
        last = last * weight + (1 - weight) * value
        smoothed.append(last)
    return smoothed


def plot_loss(log_history: list[dict[str, Any]], out_dir: Path, key: str = "loss") -> Path | None:
    """Write `training_<key>.png` (raw and smoothed); None when nothing was logged under `key`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [(entry["step"], entry[key]) for entry in log_history if key in entry and "step" in entry]
    if not points:
        return None
    steps, values = zip(*points, strict=True)
    figure, axes = plt.subplots(figsize=(7, 4))
    axes.plot(steps, values, color="#9ab", alpha=0.6, label="original")
    axes.plot(steps, _smooth(list(values)), color="#137", label="smoothed")
    axes.set_xlabel("step")
    axes.set_ylabel(key.replace("_", " "))
    axes.set_title(f"training {key.replace('_', ' ')} of {out_dir.name}")
    axes.legend()
    path = out_dir / f"training_{key.replace('/', '_')}.png"
    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)
    return path
