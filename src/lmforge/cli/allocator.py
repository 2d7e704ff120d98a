"""The memory allocator of lmforge's processes: tcmalloc where the system has it (Linux).

glibc's malloc serves a CPU training step's activations (megabytes each, allocated and freed layer after layer)
from its heap once its dynamic mmap threshold has risen, and the heap fragments: the freed blocks stay in the
process's RSS. SmolLM2-135M, 2 cores, AMD EPYC: the checkpointed forward of a 2 x 1,910-token DPO pair grew RSS
by 1.2-1.8 GB with glibc and 0.5 GB with tcmalloc, at the same speed; the LoRA SFT job (4 x 512 tokens) peaked
at 4,818 MiB with glibc and 4,118 MiB with tcmalloc (BENCHMARKS.md). Intel's CPU launcher preloads it for
the same reason.

An allocator is chosen when a process starts, so `lmforge` re-executes itself once with tcmalloc in
`LD_PRELOAD` (torchrun's workers inherit it). Nothing changes where tcmalloc is not installed (Debian/Ubuntu:
`apt-get install libtcmalloc-minimal4`; `make quickstart` and `make test` install it when run as root),
off Linux, or with `LMFORGE_ALLOCATOR=system`.
"""

import os
import platform
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

ALLOCATOR_SETTING = "LMFORGE_ALLOCATOR"  # "auto" (the default): tcmalloc where found; "system": the C library's
LIBRARY_NAMES = ("libtcmalloc_minimal.so.4", "libtcmalloc.so.4")
LIBRARY_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib",
                "/usr/local/lib")
# tcmalloc reports every allocation over 1 GiB on stderr by default; a 151k-vocabulary logits chunk can be one
QUIET_LARGE_ALLOCATIONS = {"TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD": str(1 << 40)}


def tcmalloc_library(environ: Mapping[str, str] = os.environ) -> Path | None:
    """The tcmalloc shared library of this system (the active conda environment's first), or None."""
    dirs = [Path(environ["CONDA_PREFIX"]) / "lib"] if environ.get("CONDA_PREFIX") else []
    for folder in [*dirs, *map(Path, LIBRARY_DIRS)]:
        for name in LIBRARY_NAMES:
            if (folder / name).is_file():
                return folder / name
    return None


def relaunch_command(argv: Sequence[str], environ: Mapping[str, str]) -> tuple[list[str], dict[str, str]] | None:
    """The command line and environment that rerun `lmforge argv` with tcmalloc preloaded, or None where this
    process should go on as it is (already preloaded, asked not to, not Linux, no tcmalloc)."""
    if platform.system() != "Linux" or environ.get(ALLOCATOR_SETTING, "auto") == "system":
        return None
    preloaded = environ.get("LD_PRELOAD", "")
    if "tcmalloc" in preloaded or "jemalloc" in preloaded:  # the user's (or our earlier) choice
        return None
    library = tcmalloc_library(environ)
    if library is None:
        return None
    env = {**QUIET_LARGE_ALLOCATIONS, **environ, "LD_PRELOAD": " ".join(filter(None, [str(library), preloaded]))}
    return [sys.executable, "-m", "lmforge.cli.main", *argv], env


def _is_lmforge_process() -> bool:
    """Whether this process was started as `lmforge` (the console script or `python -m lmforge.cli.main`), not
    a program that calls `main()` itself (a test's interpreter must not be replaced)."""
    main_module = sys.modules.get("__main__")
    spec = getattr(main_module, "__spec__", None)
    script = Path(getattr(main_module, "__file__", None) or "")
    return script.name == "lmforge" or (spec is not None and spec.name == "lmforge.cli.main")


def relaunch_with_tcmalloc() -> None:
    """Replace this `lmforge` process by the same command with tcmalloc, where `relaunch_command` says so
    (not for `--help`: nothing to allocate)."""
    if not _is_lmforge_process() or len(sys.argv) < 2 or {"--help", "-h"} & set(sys.argv[1:]):
        return
    command = relaunch_command(sys.argv[1:], os.environ)
    if command is not None:
        os.execve(command[0][0], command[0], command[1])


def loaded_allocator() -> str:
    """The allocator library mapped into this process ("tcmalloc", "jemalloc"), else the C library's malloc."""
    maps = Path("/proc/self/maps")
    text = maps.read_text() if maps.is_file() else ""
    for name in ("tcmalloc", "jemalloc"):
        if name in text:
            return name
    return "system malloc"
