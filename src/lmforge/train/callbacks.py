"""Trainer callbacks: a rich progress bar with ETA, evaluation results as they come, and `trainer_log.jsonl`."""

import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from lmforge.train.trainer import TokenCounts

EVAL_FIGURES = (("eval_loss", "loss"), ("eval_accuracy", "accuracy"), ("eval_perplexity", "perplexity"))


def eval_figures(metrics: dict[str, Any]) -> str:
    """`loss 1.2345  accuracy 0.4100  perplexity 3.44`: what an evaluation computed."""
    shown = [f"{name} {metrics[key]:.4f}" if key != "eval_perplexity" else f"{name} {metrics[key]:,.2f}"
             for key, name in EVAL_FIGURES if isinstance(metrics.get(key), int | float)]
    return "  ".join(shown)


class RichProgressCallback(TrainerCallback):
    """Replaces the tqdm bar: steps, loss, elapsed and ETA; log lines printed above the bar."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress: Progress | None = None
        self.task: Any = None

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **_: Any) -> None:
        if not state.is_world_process_zero:
            return
        self.progress = Progress(
            TextColumn("[bold]training"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[loss]}"),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=self.console)
        self.task = self.progress.add_task("train", total=state.max_steps, loss="", completed=state.global_step)
        self.progress.start()

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **_: Any) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=state.global_step)

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
               logs: dict[str, Any] | None = None, **_: Any) -> None:
        if state.is_world_process_zero and logs and "eval_loss" in logs:
            self.console.print(f"eval at step {state.global_step}/{state.max_steps}  {eval_figures(logs)}")
        if self.progress is None or not logs or "loss" not in logs:
            return
        self.progress.update(self.task, loss=f"loss {logs['loss']:.4f}")
        self.progress.console.print(
            f"step {state.global_step}/{state.max_steps}  loss {logs['loss']:.4f}  "
            f"lr {logs.get('learning_rate', 0):.2e}  epoch {state.epoch or 0:.2f}")

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **_: Any) -> None:
        self.close()

    def close(self) -> None:
        """Stop the bar (ending its line), also when training ends by an exception such as Ctrl-C."""
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


class JsonlLogCallback(TrainerCallback):
    """Appends one JSON line per log event to `output_dir/trainer_log.jsonl`; `extra`: the stage's own metrics
    kept too (names, or prefixes ending in "/")."""

    def __init__(self, output_dir: Path, counts: TokenCounts, extra: tuple[str, ...] = ()) -> None:
        self.path = output_dir / "trainer_log.jsonl"
        self.counts = counts
        self.extra = extra
        self.start = time.perf_counter()
        self.start_step = 0  # where this run began: a resumed run continues a checkpoint's step

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **_: Any) -> None:
        self.start = time.perf_counter()
        self.start_step = state.global_step
        if state.is_world_process_zero and state.global_step == 0 and self.path.exists():
            self.path.unlink()  # a fresh run; a resumed run keeps appending

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
               logs: dict[str, Any] | None = None, **_: Any) -> None:
        if not state.is_world_process_zero or not logs:
            return
        elapsed = time.perf_counter() - self.start
        done = max(state.global_step, 1)
        record = {
            "current_steps": state.global_step,
            "total_steps": state.max_steps,
            "loss": logs.get("loss"),
            "eval_loss": logs.get("eval_loss"),
            "lr": logs.get("learning_rate"),
            "epoch": round(state.epoch or 0.0, 4),
            "percentage": round(100 * state.global_step / max(state.max_steps, 1), 2),
            "elapsed_s": round(elapsed, 2),
            "remaining_s": round(elapsed / done * (state.max_steps - state.global_step), 2),
            "input_tokens_per_s": round(self.counts.input_tokens / elapsed, 2) if elapsed else None,
            "non_pad_tokens_per_s": round(self.counts.non_pad_tokens / elapsed, 2) if elapsed else None,
            "supervised_tokens_per_s": round(self.counts.supervised_tokens / elapsed, 2) if elapsed else None,
        }
        record.update({key: value for key, value in logs.items() if self._kept(key)})
        record = {key: value for key, value in record.items() if value is not None}
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def _kept(self, key: str) -> bool:
        return any(key == name or (name.endswith("/") and key.startswith(name)) for name in self.extra)
