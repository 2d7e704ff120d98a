"""Ray Train as the engine (`USE_RAY=1`, as in LLaMA-Factory): lmforge's training in every worker of Ray's
`TorchTrainer`.

The keys are LLaMA-Factory's (`ray_num_workers`, `resources_per_worker`, `placement_strategy`, `ray_run_name`,
`ray_storage_path`, `ray_storage_filesystem`, `ray_init_kwargs`; the launch group). Ray starts the workers,
sets each one's torch.distributed environment and process group (NCCL on GPUs, gloo on CPUs); each worker then
reads the same config and runs the normal training, so the Trainer (through accelerate) does DDP, or
DeepSpeed/FSDP when the config names them, exactly as under torchrun. Checkpoints the Trainer saves are
reported to Ray (`ray_storage_path/ray_run_name`) through Ray's own transformers callback.
"""

import os
from pathlib import Path
from typing import Any

from lmforge.config import LmforgeConfig
from lmforge.config.launch import LaunchGroup
from lmforge.errors import ConfigError, LmforgeError

INSTALL = 'pip install "lmforge[ray]"'


def require_ray() -> None:
    try:
        import ray.train  # noqa: F401
    except ImportError as err:
        raise ConfigError(f"USE_RAY=1 runs the training on Ray Train, which is not installed ({err}): "
                          f"{INSTALL}") from None


def worker_resources(launch: LaunchGroup, gpus: int) -> dict[str, float]:
    """`resources_per_worker`, else LLaMA-Factory's one GPU per worker where this machine has GPUs, else one CPU."""
    if launch.resources_per_worker:
        return dict(launch.resources_per_worker)
    return {"GPU": 1} if gpus else {"CPU": 1}


def _check_local_cluster(needed: dict[str, float], workers: int, available: dict[str, float]) -> None:
    """A local Ray instance never grows: a request it cannot hold would wait forever, so say so now."""
    for resource, amount in needed.items():
        if amount * workers > available.get(resource, 0):
            raise ConfigError(
                f"ray_num_workers: {workers} x resources_per_worker {{{resource}: {amount:g}}} needs "
                f"{amount * workers:g} {resource}, and the local Ray instance has {available.get(resource, 0):g}: "
                "lower ray_num_workers or resources_per_worker, or join a cluster (`ray_init_kwargs: "
                "{address: ...}` or RAY_ADDRESS)")


def _storage_filesystem(name: str | None) -> Any:
    if name is None:
        return None
    import pyarrow.fs

    return pyarrow.fs.S3FileSystem() if name == "s3" else pyarrow.fs.GcsFileSystem()


def _worker(loop_config: dict[str, Any]) -> None:
    """One Ray worker: the driver's working directory (relative paths in the config), the same config, the
    normal training; only rank 0 prints."""
    from ray.train.huggingface.transformers import RayTrainReportCallback
    from rich.console import Console

    from lmforge.config import load_config
    from lmforge.train.runner import run_training

    os.chdir(loop_config["cwd"])  # Ray starts workers in its own run folder
    cfg = load_config(loop_config["config"], loop_config["overrides"])
    quiet = int(os.environ.get("RANK", "0")) != 0
    run_training(cfg, Console(quiet=quiet, force_terminal=False), callbacks=[RayTrainReportCallback()])


def _worker_error(err: Exception) -> LmforgeError:
    """The first lmforge error a worker raised (its message is the fix), else Ray's report of the failure."""
    failures = getattr(err, "worker_failures", {}) or {}
    for failure in failures.values():
        cause: BaseException | None = failure
        while cause is not None:
            if isinstance(cause, LmforgeError):
                return cause
            cause = cause.__cause__
    return LmforgeError(f"Ray Train stopped: {err}")


def run_on_ray(cfg: LmforgeConfig, config: str | Path, overrides: list[str]) -> Any:
    """Train on Ray's workers; returns Ray's `Result` (its `path` is where Ray kept the run)."""
    require_ray()
    import ray
    import torch
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    launch = cfg.launch
    if launch.master_addr or launch.master_port:
        raise ConfigError("`master_addr`/`master_port` say where a torchrun launch meets; under Ray Train (USE_RAY=1) "
                          "Ray sets the process group up on the first worker's node: remove them")
    resources = worker_resources(launch, torch.cuda.device_count() if torch.cuda.is_available() else 0)
    init_kwargs = dict(launch.ray_init_kwargs or {})
    ray.init(**init_kwargs)
    try:
        if "address" not in init_kwargs and not os.environ.get("RAY_ADDRESS"):
            _check_local_cluster(resources, launch.ray_num_workers, ray.cluster_resources())
        trainer = TorchTrainer(
            _worker,
            train_loop_config={"cwd": os.getcwd(), "config": str(config), "overrides": list(overrides)},
            scaling_config=ScalingConfig(num_workers=launch.ray_num_workers, use_gpu=resources.get("GPU", 0) > 0,
                                         resources_per_worker=resources,
                                         placement_strategy=launch.placement_strategy),
            run_config=RunConfig(name=launch.ray_run_name,
                                 storage_path=launch.ray_storage_path if launch.ray_storage_filesystem
                                 else str(Path(launch.ray_storage_path).absolute()),
                                 storage_filesystem=_storage_filesystem(launch.ray_storage_filesystem)))
        try:
            return trainer.fit()
        except Exception as err:  # Ray wraps what a worker raised
            raise _worker_error(err) from None
    finally:
        ray.shutdown()
