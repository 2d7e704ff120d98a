"""`rollout_samples.jsonl`: every `rollout_log_steps` steps, a few completions of the latest rollout with each
reward's score, so a user sees what the policy does while it trains.

The rewards are lmforge's own functions, so each one records what it scored (`RolloutLog.record`); the
callback writes the latest batch after an optimizer step. Nothing of trl's internals is read.
"""

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from lmforge.data.prompts import SOURCE_COLUMN
from lmforge.train.rewards import Reward, completion_texts

ROLLOUT_FILE = "rollout_samples.jsonl"


class RolloutLog(TrainerCallback):
    """Records the scores of one rollout's rewards and appends a sample of them to the log file."""

    def __init__(self, output_dir: Path, every: int, samples: int, weights: Sequence[float]) -> None:
        self.path, self.every, self.samples, self.weights = output_dir / ROLLOUT_FILE, every, samples, list(weights)
        self.batch: dict[str, Any] | None = None  # the latest rollout: prompts, completions, sources, scores
        self.written_step = -1

    def record(self, reward: Reward) -> Reward:
        """`reward` with its scores recorded (the first reward of a rollout starts a new batch)."""
        def recorded(**kwargs: Any) -> list[float | None]:
            scores = reward.func(**kwargs)
            completions = kwargs["completions"]
            if self.batch is None or self.batch["completions"] is not completions:
                self.batch = {"prompts": kwargs["prompts"], "completions": completions,
                              "sources": kwargs.get(SOURCE_COLUMN), "scores": {}}
            self.batch["scores"][reward.name] = scores
            return scores

        recorded.__name__ = reward.name
        return Reward(reward.name, recorded, reward.columns, reward.origin)

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **_: Any) -> None:
        if state.is_world_process_zero and state.global_step == 0 and self.path.exists():
            self.path.unlink()  # a fresh run; a resumed run keeps appending

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **_: Any) -> None:
        step = state.global_step
        if (not state.is_world_process_zero or self.batch is None or step == self.written_step
                or (step % self.every and step != 1)):
            return
        self.written_step = step
        batch = self.batch
        texts = completion_texts(batch["completions"])
        with self.path.open("a", encoding="utf-8") as handle:
            for index in range(min(self.samples, len(texts))):
                scores = {name: values[index] for name, values in batch["scores"].items()}
                total = sum(weight * score for weight, score in zip(self.weights, scores.values(), strict=False)
                            if score is not None)
                record = {"step": step, "source": batch["sources"][index] if batch["sources"] else None,
                          "prompt": batch["prompts"][index], "completion": texts[index], "rewards": scores,
                          "reward": round(total, 6)}
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
