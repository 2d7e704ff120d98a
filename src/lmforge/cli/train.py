"""`lmforge check` and `lmforge train`."""

import os
import shlex
import time
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from lmforge.cli.common import ConfigArg, OverridesArg, console, run_reporting_errors, show_notices

if TYPE_CHECKING:
    from lmforge.train.interrupt import TrainingInterrupted


def check(config: ConfigArg, overrides: OverridesArg = None) -> None:
    """Validate a config (keys, types, rules, datasets, template) and print it resolved."""
    import yaml

    from lmforge.config import load_config
    from lmforge.config.groups import GROUPS

    def body() -> None:
        cfg = load_config(config, overrides)
        show_notices(cfg)
        # imported once the config is valid: the checks below bring torch and transformers (the stages, the
        # model skeleton), which a config error never needs
        from lmforge.preflight import preflight

        preflight(cfg, "check")
        console.print(f"{config}: valid", style="green", markup=False)
        for group in GROUPS:
            values = getattr(cfg, group).model_dump(mode="json", exclude_none=True,
                                                    exclude_unset=group == "training")
            if group == "training":
                values = cfg.training.trainer_kwargs()
            console.print(f"[bold]{group}[/bold]")
            console.print(yaml.safe_dump(values, sort_keys=False, allow_unicode=True).rstrip(), highlight=False)
        from lmforge.train.precision import precision_summary

        console.print(f"[bold]training on this machine[/bold]\n{precision_summary(cfg)}", highlight=False)

    run_reporting_errors(body)


def train(
    config: ConfigArg,
    overrides: OverridesArg = None,
    nproc: Annotated[int | None, typer.Option(help="Processes on this node (launches torchrun).")] = None,
) -> None:
    """Train as the config says (stage, method, data) and save model, logs, plot and summary.

    Every visible GPU is used. Several processes or nodes: --nproc N, or NPROC_PER_NODE / NNODES / NODE_RANK /
    MASTER_ADDR / MASTER_PORT / FORCE_TORCHRUN (elastic: RDZV_ID, MIN_NNODES, MAX_NNODES, MAX_RESTARTS) as with
    LLaMA-Factory; lmforge then re-launches itself under torchrun. A `deepspeed` config for one process runs in
    this process.
    USE_RAY=1: Ray Train runs the workers (ray_num_workers, resources_per_worker, ... in the config)."""
    from lmforge.cli.quiet import is_verbose, quiet_libraries
    from lmforge.config import load_config
    from lmforge.train.launch import end_process_group, env_enabled, is_main_worker, is_worker, launch_plan, relaunch

    def body() -> None:
        cfg = load_config(config, overrides)  # validate once, before any worker starts
        if not is_worker():
            show_notices(cfg)
        # checked before the training stack, torchrun or Ray is imported (as `lmforge check` does): a wrong
        # dataset, template, model folder or stage rule answers in seconds, once, not in every worker
        from lmforge.preflight import preflight

        checked = preflight(cfg, "train") if cfg.training.runs_training() else None
        if env_enabled("USE_RAY") and not is_worker():
            _train_on_ray(cfg, config, overrides or [])
            return
        plan = None if is_worker() else launch_plan(  # workers: torchrun has set their rendezvous
            nproc, deepspeed=cfg.training.deepspeed is not None, master_addr=cfg.launch.master_addr,
            master_port=cfg.launch.master_port)
        if plan is not None and plan.distributed:
            verbose = ["--verbose"] if is_verbose() else []  # the workers show what this process would
            started = time.time()
            code, interruption = relaunch(plan, [*verbose, "train", str(config), *(overrides or [])])
            if interruption.requested:
                from lmforge.train.interrupt import launched_run_stop

                stop = launched_run_stop(interruption, Path(cfg.training.output_dir),
                                         started if cfg.training.overwrite_output_dir else None)
                if not stop.saved:  # else rank 0 reported the checkpoint it saved
                    _report_stop(stop, config, overrides, plan.nproc_per_node)
                code = interruption.exit_code
            raise typer.Exit(code=code)
        quiet_libraries()
        from lmforge.train.interrupt import TrainingInterrupted
        from lmforge.train.launch import one_process_group
        from lmforge.train.runner import run_training

        # DeepSpeed for one process: its process group of one, here (train/launch.py)
        with one_process_group(plan) if plan is not None and plan.one_process_group else nullcontext():
            try:
                run_training(cfg, console if is_main_worker() else Console(quiet=True), checked=checked)
            except TrainingInterrupted as stop:
                # the traceback's frames hold the trainer, the model and its process group: freed now, while the
                # interpreter is whole, not at its exit, where gloo's threads abort the process
                stop.with_traceback(None)
                end_process_group()
                if is_main_worker():
                    _report_stop(stop, config, overrides, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
                raise typer.Exit(code=stop.interruption.exit_code) from None
            end_process_group()

    run_reporting_errors(body)


def _train_on_ray(cfg: Any, config: Path, overrides: list[str]) -> None:
    """`USE_RAY=1` (the config preflighted): Ray Train's workers (ray_num_workers, resources_per_worker, ...)."""
    from lmforge.train.ray_engine import require_ray, run_on_ray

    require_ray()
    result = run_on_ray(cfg, config, overrides)
    console.print(f"Ray Train finished; Ray kept the run in {result.path}", highlight=False, markup=False,
                  soft_wrap=True)


def _report_stop(stop: "TrainingInterrupted", config: Path, overrides: list[str] | None, nproc: int) -> None:
    """The one line an interrupted run ends with: where it stopped, the checkpoint kept, the command that resumes."""
    command = ["lmforge", "train", *(["--nproc", str(nproc)] if nproc > 1 else []), str(config),
               *(o for o in overrides or [] if not o.startswith("resume_from_checkpoint="))]
    if stop.checkpoint:
        command.append(f"resume_from_checkpoint={stop.checkpoint}")
    if stop.saved:
        where = f"at step {stop.step}/{stop.max_steps}; checkpoint kept: {stop.checkpoint}"
    else:
        grace = os.environ.get("TORCH_ELASTIC_SHUTDOWN_TIMEOUT", "30")
        where = (f"before it saved a checkpoint (training had not started, or the running step and the save took "
                 f"longer than torchrun waits: TORCH_ELASTIC_SHUTDOWN_TIMEOUT={grace} s); ")
        where += (f"checkpoint kept: {stop.checkpoint} (step {stop.step}/{stop.max_steps})" if stop.checkpoint
                  else "no checkpoint kept")
    again = "resume with" if stop.checkpoint else "start again with"
    console.print(f"stopped by {stop.interruption.name} {where}; {again}: {shlex.join(command)}",
                  highlight=False, markup=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command()(check)
    app.command()(train)
