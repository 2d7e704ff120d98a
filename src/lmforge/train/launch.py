"""Several processes or nodes: `lmforge train` re-launches itself under torchrun.

As with LLaMA-Factory, `lmforge train` uses every visible GPU: more than one (or `NPROC_PER_NODE` > 1, `NNODES`
> 1, `--nproc N` or `FORCE_TORCHRUN=1`) starts torchrun (`python -m lmforge.train.torchrun ... -m
lmforge.cli.main train ...`); each worker then runs the normal training, and the Trainer (through accelerate)
sets up DDP, or DeepSpeed/FSDP when the config names them. `MASTER_ADDR`/`MASTER_PORT` may also come from the
config's `master_addr`/`master_port` (LLaMA-Factory's keys; an environment variable that says otherwise is an
error); `MASTER_PORT` unset on one node: a free port. Elastic launches: `RDZV_ID` (with
`MIN_NNODES`/`MAX_NNODES`, `MAX_RESTARTS`) uses torchrun's c10d rendezvous at `MASTER_ADDR:MASTER_PORT`.
Workers are recognised by the `LOCAL_RANK` variable torchrun sets. Ctrl-C and SIGTERM to the launcher go to
torchrun once (it runs in a process group of its own, out of reach of the terminal's Ctrl-C), which passes
them to every worker.

A `deepspeed` config for one process runs in this process, as LLaMA-Factory runs it: DeepSpeed learns its rank
(else it looks for MPI) from the variables a one-worker torchrun would set, set here for the run's length
(`one_process_group`), and no second interpreter imports the training stack again (7 s of a 23 s one-step
ZeRO-3 run on 2 CPU cores).
"""

import os
import socket
import subprocess
import sys
from contextlib import AbstractContextManager
from dataclasses import dataclass

from lmforge.errors import ConfigError
from lmforge.train.environment import environment_set
from lmforge.train.signals import Interruption, forward_signals

DEFAULT_MASTER_PORT = 29500  # torchrun's; every node of a multi-node run must agree on it


@dataclass(frozen=True)
class LaunchPlan:
    nproc_per_node: int
    nnodes: int
    node_rank: int
    master_addr: str
    master_port: int
    forced: bool = False  # torchrun even for one process (FORCE_TORCHRUN)
    deepspeed: bool = False  # the config names a DeepSpeed file: it needs a process group, even of one
    rdzv_id: str | None = None  # elastic: torchrun's c10d rendezvous
    min_nnodes: int | None = None
    max_nnodes: int | None = None
    max_restarts: int = 0

    @property
    def distributed(self) -> bool:
        return self.forced or self.nproc_per_node > 1 or self.nnodes > 1 or self.rdzv_id is not None

    @property
    def one_process_group(self) -> bool:
        """A process group of this one process: DeepSpeed without torchrun."""
        return self.deepspeed and not self.distributed


def _int_env(name: str, default: int) -> int:
    value = os.environ.get(name, str(default))
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"environment variable {name}={value!r} must be a whole number") from None


def env_enabled(name: str) -> bool:
    """LLaMA-Factory's switches: `1`, `true` or `y` (any case)."""
    return os.environ.get(name, "0").lower() in ("1", "true", "y")


def visible_gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config_or_env(name: str, key: str, value: str | int | None) -> str | None:
    """The config key's value or the environment variable's; both set, they must agree."""
    env = os.environ.get(name)
    if value is not None and env is not None and env != str(value):
        raise ConfigError(f"`{key}: {value}` in the config and {name}={env} in the environment disagree: "
                          "keep one of them")
    return str(value) if value is not None else env


def launch_plan(nproc: int | None = None, *, deepspeed: bool = False, master_addr: str | None = None,
                master_port: int | None = None) -> LaunchPlan:
    """From `--nproc`, the LLaMA-Factory variables and the visible GPUs; `deepspeed`: the config names one;
    `master_addr`/`master_port`: the config's keys (the variables of the same names may repeat them)."""
    nnodes = _int_env("NNODES", 1)
    rdzv_id = os.environ.get("RDZV_ID") or None
    port_value = _config_or_env("MASTER_PORT", "master_port", master_port)
    if port_value is not None:
        port = _int_env("MASTER_PORT", 0) if master_port is None else master_port
    else:
        port = DEFAULT_MASTER_PORT if nnodes > 1 or rdzv_id else free_port()
    min_nnodes, max_nnodes = os.environ.get("MIN_NNODES"), os.environ.get("MAX_NNODES")
    if (min_nnodes is None) != (max_nnodes is None):
        raise ConfigError("set both MIN_NNODES and MAX_NNODES (an elastic range of nodes) or neither")
    return LaunchPlan(
        nproc_per_node=nproc or _int_env("NPROC_PER_NODE", max(visible_gpus(), 1)),
        nnodes=nnodes,
        node_rank=_int_env("NODE_RANK", 0),
        master_addr=_config_or_env("MASTER_ADDR", "master_addr", master_addr) or "127.0.0.1",
        master_port=port,
        forced=env_enabled("FORCE_TORCHRUN"),
        deepspeed=deepspeed,
        rdzv_id=rdzv_id,
        min_nnodes=_int_env("MIN_NNODES", 0) if min_nnodes is not None else None,
        max_nnodes=_int_env("MAX_NNODES", 0) if max_nnodes is not None else None,
        max_restarts=_int_env("MAX_RESTARTS", 0),
    )


def is_worker() -> bool:
    return "LOCAL_RANK" in os.environ


def is_main_worker() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


# what torchrun sets for the one worker of a one-process run, and what accelerate and DeepSpeed read
ONE_WORKER_RANKS = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "LOCAL_WORLD_SIZE": "1", "GROUP_RANK": "0"}


def one_process_group(plan: LaunchPlan) -> AbstractContextManager[None]:
    """This process as the one worker of its run, for the run's length: the rendezvous variables set, then
    restored (a program that trains in-process and goes on must not read as a worker afterwards)."""
    return environment_set({**ONE_WORKER_RANKS, "MASTER_ADDR": plan.master_addr, "MASTER_PORT": str(plan.master_port)})


def end_process_group() -> None:
    """A torchrun worker's run is over: tear its process group down while the interpreter is whole. Left to the
    interpreter's exit, gloo's threads can still hold tensors then and abort the process ("terminate called
    without an active exception", pytorch/pytorch#190489); torch's documentation asks every process for it."""
    import gc

    import torch.distributed as dist

    gc.collect()  # the run's objects (a DDP model holds the group) go first, in order, while Python is whole
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def prepares_data(shared_file_system: bool) -> bool:
    """Whether this process prepares the run's data (the others read it from the cache): the first process of
    the run when every node sees one file system (`data_shared_file_system`), else the first of each node."""
    return is_main_worker() if shared_file_system else int(os.environ.get("LOCAL_RANK", "0")) == 0


def torchrun_command(plan: LaunchPlan, cli_args: list[str]) -> list[str]:
    command = [sys.executable, "-m", "lmforge.train.torchrun", f"--nproc_per_node={plan.nproc_per_node}"]
    if plan.rdzv_id is not None:
        nodes = f"{plan.min_nnodes}:{plan.max_nnodes}" if plan.min_nnodes is not None else str(plan.nnodes)
        command += [f"--nnodes={nodes}", f"--rdzv_id={plan.rdzv_id}", "--rdzv_backend=c10d",
                    f"--rdzv_endpoint={plan.master_addr}:{plan.master_port}", f"--max_restarts={plan.max_restarts}"]
    else:
        command += [f"--nnodes={plan.nnodes}", f"--node_rank={plan.node_rank}", f"--master_addr={plan.master_addr}",
                    f"--master_port={plan.master_port}"]
    return [*command, "-m", "lmforge.cli.main", *cli_args]


def relaunch(plan: LaunchPlan, cli_args: list[str]) -> tuple[int, Interruption]:
    """Run the workers; torchrun's exit code, and the Ctrl-C/SIGTERM passed on to them if one came."""
    interruption = Interruption()
    process = subprocess.Popen(torchrun_command(plan, cli_args), process_group=0)
    with forward_signals(process, interruption):
        code = process.wait()
    return code, interruption
