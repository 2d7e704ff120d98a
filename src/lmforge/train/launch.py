"""Several processes or nodes: `lmforge train` re-launches itself under torchrun.

As LLaMA-Factory users expect, `NPROC_PER_NODE` > 1 or `NNODES` > 1 (with `NODE_RANK`,
`MASTER_ADDR`, `MASTER_PORT`) or `--nproc N` start `python -m torch.distributed.run ...
-m lmforge.cli.main train ...`; each worker then runs the normal training, and the Trainer (through
accelerate) sets up DDP, or DeepSpeed/FSDP when the config names them. Workers are recognised by
the `LOCAL_RANK` variable torchrun sets.
"""

import os
import subprocess
import sys
from dataclasses import dataclass

from lmforge.errors import ConfigError


@dataclass(frozen=True)
class LaunchPlan:
    nproc_per_node: int
    nnodes: int
    node_rank: int
    master_addr: str
    master_port: int

    @property
    def distributed(self) -> bool:
        return self.nproc_per_node > 1 or self.nnodes > 1


def _int_env(name: str, default: int) -> int:
    value = os.environ.get(name, str(default))
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"environment variable {name}={value!r} must be a whole number") from None


def launch_plan(nproc: int | None = None) -> LaunchPlan:
    return LaunchPlan(
        nproc_per_node=nproc or _int_env("NPROC_PER_NODE", 1),
        nnodes=_int_env("NNODES", 1),
        node_rank=_int_env("NODE_RANK", 0),
        master_addr=os.environ.get("MASTER_ADDR", "127.0.0.1"),
        master_port=_int_env("MASTER_PORT", 29500),
    )


def is_worker() -> bool:
    return "LOCAL_RANK" in os.environ


def is_main_worker() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def torchrun_command(plan: LaunchPlan, cli_args: list[str]) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={plan.nproc_per_node}",
            f"--nnodes={plan.nnodes}", f"--node_rank={plan.node_rank}", f"--master_addr={plan.master_addr}",
            f"--master_port={plan.master_port}", "-m", "lmforge.cli.main", *cli_args]


def relaunch(plan: LaunchPlan, cli_args: list[str]) -> int:
    """Run the workers and return torchrun's exit code."""
    return subprocess.call(torchrun_command(plan, cli_args))
