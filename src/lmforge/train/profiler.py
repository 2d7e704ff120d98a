"""`enable_torch_profiler`: torch.profiler over training steps, on its own wait/warm-up/active schedule."""

import os
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from lmforge.config.profiler import ProfilerGroup


class TorchProfilerCallback(TrainerCallback):
    """Starts the profiler when training starts and advances its schedule once per optimizer step; each recorded
    cycle is written to `<profiler_output_dir>/rank_<RANK>/` as a Chrome / TensorBoard trace."""

    def __init__(self, settings: ProfilerGroup) -> None:
        self.settings = settings
        self.profiler: torch.profiler.profile | None = None

    def trace_dir(self, output_dir: str) -> Path:
        root = Path(self.settings.profiler_output_dir or Path(output_dir) / "profiler")
        return root / f"rank_{int(os.environ.get('RANK', '0'))}"

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **_: Any) -> None:
        settings, folder = self.settings, self.trace_dir(args.output_dir)
        folder.mkdir(parents=True, exist_ok=True)
        activities = [torch.profiler.ProfilerActivity.CPU]
        if torch.cuda.is_available():
            activities.append(torch.profiler.ProfilerActivity.CUDA)
        self.profiler = torch.profiler.profile(
            activities=activities,
            schedule=torch.profiler.schedule(wait=settings.profiler_wait_steps, warmup=settings.profiler_warmup_steps,
                                             active=settings.profiler_active_steps, repeat=settings.profiler_repeat),
            on_trace_ready=torch.profiler.tensorboard_trace_handler(str(folder)),
            record_shapes=settings.profiler_record_shapes, profile_memory=settings.profiler_profile_memory,
            with_stack=settings.profiler_with_stack)
        self.profiler.start()

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **_: Any) -> None:
        if self.profiler is not None:
            self.profiler.step()

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **_: Any) -> None:
        if self.profiler is not None:
            self.profiler.stop()
            self.profiler = None
