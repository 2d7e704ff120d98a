"""`lmforge env` and `lmforge version` (LLaMA-Factory's `env` and `version`): what this installation runs on."""

import platform
from importlib import metadata
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from lmforge.cli.allocator import loaded_allocator, tcmalloc_library
from lmforge.cli.common import console

if TYPE_CHECKING:
    from packaging.requirements import Requirement

PACKAGES = ["lmforge", "torch", "transformers", "peft", "trl", "datasets", "accelerate", "tokenizers",
            "safetensors", "pydantic", "gguf"]


def environment_table() -> Table:
    import torch

    from lmforge.installed import extras_installed, unmet_requirements  # packaging's parser: not at every start

    table = Table(title="lmforge environment", show_header=False)
    table.add_row("python", platform.python_version())
    table.add_row("platform", platform.platform())
    for name in PACKAGES:
        try:
            table.add_row(name, metadata.version(name))
        except metadata.PackageNotFoundError:
            table.add_row(name, "not installed")
    unmet = unmet_requirements()
    table.add_row("requirements", "all met" if not unmet else "not met: " + "; ".join(
        f"{requirement} ({installed or 'not installed'})" for requirement, installed in unmet))
    for extra, requirements in extras_installed().items():
        libraries = ", ".join(_installed_as(requirement, installed) for requirement, installed in requirements)
        table.add_row(escape(f"lmforge[{extra}]"), libraries)
    allocator = loaded_allocator()
    if allocator == "system malloc" and tcmalloc_library() is None:
        allocator += " (tcmalloc not found: apt-get install libtcmalloc-minimal4 for less training memory)"
    table.add_row("memory allocator", allocator)
    if torch.cuda.is_available():
        devices = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        table.add_row("devices", f"CUDA: {devices}")
    else:
        table.add_row("devices", f"CPU only ({torch.get_num_threads()} threads)")
    table.add_row("cpu", cpu_row())
    return table


def _installed_as(requirement: "Requirement", installed: str | None) -> str:
    if installed is None:
        return f"{requirement.name} not installed"
    if not requirement.specifier.contains(installed, prereleases=True):
        return f"{requirement.name} {installed} (needs {requirement.specifier})"
    return f"{requirement.name} {installed}"


def cpu_row() -> str:
    """The CPU and what a run's precision keys train in on it (bf16 without hardware arithmetic falls back)."""
    from lmforge.train.precision import cpu_description, cpu_has_fast_bf16, cpu_has_fast_fp16

    bf16 = ("bf16 in hardware: training defaults to bf16 autocast" if cpu_has_fast_bf16() else
            "no bf16 arithmetic: training runs in float32, `bf16: true` included")
    fp16 = "fp16 in hardware" if cpu_has_fast_fp16() else "no fp16 arithmetic (`fp16: true` trains in float32)"
    return f"{cpu_description()}; {bf16}; {fp16}"


def env() -> None:
    """Versions of Python and the libraries lmforge runs on, and the devices seen."""
    console.print(environment_table())


def version() -> None:
    """lmforge's version (`lmforge env` lists the libraries' too)."""
    console.print(f"lmforge {metadata.version('lmforge')}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command()(env)
    app.command()(version)
