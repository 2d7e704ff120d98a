"""The launch group: LLaMA-Factory's Ray Train keys (read when `USE_RAY=1`) and the torchrun rendezvous address."""

import json
from typing import Any, Literal

from pydantic import Field, field_validator

from lmforge.config.groups_base import Group


def _json_mapping(value: Any) -> Any:
    """LLaMA-Factory accepts these mappings as JSON text too (`resources_per_worker='{"GPU": 1}'`)."""
    if isinstance(value, str) and value.lstrip().startswith("{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError as err:
            raise ValueError(f"is not valid JSON: {err}") from None
    return value


class LaunchGroup(Group):
    ray_num_workers: int = Field(
        1, ge=1, description="Ray Train (`USE_RAY=1`): training processes, one per `resources_per_worker`.")
    resources_per_worker: dict[str, float] | None = Field(
        None, description="Ray Train: what each worker reserves (`{GPU: 1}`, `{CPU: 4}`); default one GPU where "
                          "the machine has GPUs, else one CPU.")
    placement_strategy: Literal["SPREAD", "PACK", "STRICT_SPREAD", "STRICT_PACK"] = Field(
        "PACK", description="Ray Train: how workers are placed on the cluster's nodes (Ray's placement groups).")
    ray_run_name: str | None = Field(
        None, description="Ray Train: the run's folder under `ray_storage_path` (checkpoints reported to Ray); "
                          "default a name Ray makes up.")
    ray_storage_path: str = Field(
        "./saves", description="Ray Train: where Ray keeps each run's results and checkpoints (a path, or a bucket "
                               "path with `ray_storage_filesystem`).")
    ray_storage_filesystem: Literal["s3", "gs", "gcs"] | None = Field(
        None, description="Ray Train: `ray_storage_path` is on S3 or Google Cloud Storage (pyarrow's file systems); "
                          "default the local file system.")
    ray_init_kwargs: dict[str, Any] | None = Field(
        None, description="Ray Train: keyword arguments of `ray.init` (`address`, `runtime_env`, ...); default a "
                          "local Ray instance on this machine.")

    master_addr: str | None = Field(
        None, description="Address of the first node for a torchrun launch (as MASTER_ADDR; default 127.0.0.1).")
    master_port: int | None = Field(
        None, ge=1, le=65535, description="Port of the first node for a torchrun launch (as MASTER_PORT; default a "
                                          "free port on one node, 29500 across nodes).")

    _json = field_validator("resources_per_worker", "ray_init_kwargs", mode="before")(_json_mapping)
