"""`profile_modules` (LLaMA-Factory's): forward and backward time of the modules whose names match, printed at
every logging step.

Hooks on each matched module time its forward and its backward: CUDA events on a GPU (read once the step
ends, so the timing does not stall the GPU mid-step), the wall clock on the CPU, where a module's work is done
when its hook runs. LLaMA-Factory times on CUDA/NPU only; lmforge times on the CPU too. A call none of whose
inputs needs a gradient (a first layer over frozen embeddings) has no backward torch's module hooks can time
(they would fire together): it is left out of the backward mean, and a module with only such calls shows its
forward time alone.
"""

import time
from collections import defaultdict
from collections.abc import Callable
from fnmatch import fnmatch
from typing import Any

import torch
from rich.console import Console
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

PHASES = ("forward", "backward")


def _needs_gradient(inputs: Any) -> bool:
    """Whether any tensor among a call's positional and keyword arguments needs a gradient."""
    if isinstance(inputs, torch.Tensor):
        return inputs.requires_grad
    if isinstance(inputs, dict):
        return any(_needs_gradient(value) for value in inputs.values())
    if isinstance(inputs, (list, tuple)):
        return any(_needs_gradient(value) for value in inputs)
    return False


class ModuleProfilerCallback(TrainerCallback):
    """Times every call of the modules matching `patterns` (fnmatch, e.g. `*.layers.0.self_attn`); each log
    prints the mean milliseconds per call since the previous log."""

    def __init__(self, patterns: list[str], console: Console) -> None:
        self.patterns = patterns
        self.console = console
        self.handles: list[Any] = []
        self.started: dict[tuple[str, str], Any] = {}  # (module, phase) -> start time or CUDA event
        self.pending: list[tuple[str, str, Any, Any]] = []  # CUDA: (module, phase, start, end) read at step end
        self.times: dict[tuple[str, str], list[float]] = defaultdict(list)
        self.untimed: set[str] = set()  # modules whose last forward call had no input needing a gradient

    def _start(self, name: str, phase: str) -> Callable[..., None]:
        def hook(module: torch.nn.Module, *inputs: Any) -> None:
            if phase == "forward" and not _needs_gradient(inputs):
                self.untimed.add(name)
            elif phase == "forward":
                self.untimed.discard(name)
            if phase == "backward" and name in self.untimed:
                return
            if next(module.parameters(), torch.empty(0)).is_cuda:
                event = torch.cuda.Event(enable_timing=True)
                event.record()
                self.started[name, phase] = event
            else:
                self.started[name, phase] = time.perf_counter()
        return hook

    def _stop(self, name: str, phase: str) -> Callable[..., None]:
        def hook(module: torch.nn.Module, *_: Any) -> None:
            start = self.started.pop((name, phase), None)
            if start is None:
                return
            if isinstance(start, float):
                self.times[name, phase].append((time.perf_counter() - start) * 1000)
            else:
                end = torch.cuda.Event(enable_timing=True)
                end.record()
                self.pending.append((name, phase, start, end))
        return hook

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                       model: Any = None, **_: Any) -> None:
        matched = [(name, module) for name, module in model.named_modules()
                   if name and any(fnmatch(name, pattern) for pattern in self.patterns)]
        if not matched:
            self.console.print(f"profile_modules: no module name matches {', '.join(self.patterns)}", style="yellow",
                               markup=False)
        for name, module in matched:
            self.handles += [module.register_forward_pre_hook(self._start(name, "forward"), with_kwargs=True),
                             module.register_forward_hook(self._stop(name, "forward")),
                             module.register_full_backward_pre_hook(self._start(name, "backward")),
                             module.register_full_backward_hook(self._stop(name, "backward"))]

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **_: Any) -> None:
        if self.pending:
            torch.cuda.synchronize()
            for name, phase, start, end in self.pending:
                self.times[name, phase].append(start.elapsed_time(end))
            self.pending.clear()

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **_: Any) -> None:
        if not self.times:
            return
        if state.is_world_process_zero:
            names = sorted({name for name, _ in self.times})
            lines = [f"module times at step {state.global_step} (ms per call, mean since the last log):"]
            for name in names:
                means = {phase: sum(calls) / len(calls) for phase in PHASES if (calls := self.times[name, phase])}
                lines.append(f"  {name}: " + "  ".join(f"{phase} {ms:.3f}" for phase, ms in means.items()))
            self.console.print("\n".join(lines), highlight=False, markup=False)
        self.times.clear()

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **_: Any) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()
