"""`lmforge check` and `lmforge train`."""

import shlex
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from lmforge.cli.common import ConfigArg, OverridesArg, console, run_reporting_errors


def check(config: ConfigArg, overrides: OverridesArg = None) -> None:
    """Validate a config (keys, types, rules, datasets, template) and print it resolved."""
    import yaml

    from lmforge.config import load_config
    from lmforge.config.groups import GROUPS
    from lmforge.preflight import preflight

    def body() -> None:
        cfg = load_config(config, overrides)
        preflight(cfg, "check")
        console.print(f"[green]{config}: valid[/green]")
        for group in GROUPS:
            values = getattr(cfg, group).model_dump(mode="json", exclude_none=True,
                                                    exclude_unset=group == "training")
            if group == "training":
                values = cfg.training.trainer_kwargs()
            console.print(f"[bold]{group}[/bold]")
            console.print(yaml.safe_dump(values, sort_keys=False, allow_unicode=True).rstrip(), highlight=False)

    run_reporting_errors(body)


def train(
    config: ConfigArg,
    overrides: OverridesArg = None,
    nproc: Annotated[int | None, typer.Option(help="Processes on this node (launches torchrun).")] = None,
) -> None:
    """Train as the config says (stage, method, data) and save model, logs, plot and summary.

    Every visible GPU is used. Several processes or nodes: --nproc N, or NPROC_PER_NODE / NNODES / NODE_RANK /
    MASTER_ADDR / MASTER_PORT / FORCE_TORCHRUN (elastic: RDZV_ID, MIN_NNODES, MAX_NNODES, MAX_RESTARTS) as with
    LLaMA-Factory; lmforge then re-launches itself under torchrun, as it does for a `deepspeed` config.
    USE_RAY=1: Ray Train runs the workers (ray_num_workers, resources_per_worker, ... in the config)."""
    from lmforge.cli.quiet import is_verbose, quiet_libraries
    from lmforge.config import load_config
    from lmforge.train.launch import env_enabled, is_main_worker, is_worker, launch_plan, relaunch

    def body() -> None:
        cfg = load_config(config, overrides)  # validate once, before any worker starts
        if env_enabled("USE_RAY") and not is_worker():
            _train_on_ray(cfg, config, overrides or [])
            return
        plan = None if is_worker() else launch_plan(  # workers: torchrun has set their rendezvous
            nproc, deepspeed=cfg.training.deepspeed is not None, master_addr=cfg.launch.master_addr,
            master_port=cfg.launch.master_port)
        if plan is not None and plan.distributed:
            verbose = ["--verbose"] if is_verbose() else []  # the workers show what this process would
            raise typer.Exit(code=relaunch(plan, [*verbose, "train", str(config), *(overrides or [])]))
        quiet_libraries()
        from lmforge.train.interrupt import TrainingInterrupted
        from lmforge.train.runner import run_training

        try:
            run_training(cfg, console if is_main_worker() else Console(quiet=True))
        except TrainingInterrupted as stop:
            resume = ["lmforge", "train", str(config), *(o for o in overrides or []
                                                         if not o.startswith("resume_from_checkpoint=")),
                      f"resume_from_checkpoint={stop.checkpoint}"]
            console.print(f"stopped by {stop.interruption.name} at step {stop.step}/{stop.max_steps}; "
                          f"checkpoint kept: {stop.checkpoint}; resume with: {shlex.join(resume)}",
                          highlight=False, soft_wrap=True)
            raise typer.Exit(code=stop.interruption.exit_code) from None

    run_reporting_errors(body)


def _train_on_ray(cfg: Any, config: Path, overrides: list[str]) -> None:
    """`USE_RAY=1`: the checks here, then Ray Train's workers (ray_num_workers, resources_per_worker, ...)."""
    from lmforge.preflight import preflight
    from lmforge.train.ray_engine import require_ray, run_on_ray

    require_ray()
    if cfg.training.runs_training():
        preflight(cfg, "train")  # a bad config fails here in seconds, not in every worker
    result = run_on_ray(cfg, config, overrides)
    console.print(f"Ray Train finished; Ray kept the run in {result.path}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command()(check)
    app.command()(train)
