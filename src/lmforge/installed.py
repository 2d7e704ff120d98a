"""The libraries this environment has, against the ones lmforge's package metadata asks for (pyproject.toml).

pip enforces those floors when it installs lmforge, not afterwards: an environment where trl or transformers was
later downgraded, or installed with `--no-deps`, would fail halfway through loading with an ImportError or a
TypeError about a keyword. `check_installed_requirements` runs first in every preflight and names the pip command.
The optional packages a config's settings reach (`config/packages.py`) are checked here too, before anything loads.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from importlib.util import find_spec
from typing import TYPE_CHECKING

from lmforge.errors import InstallError

if TYPE_CHECKING:
    from packaging.requirements import Requirement


def _declared(distribution: str) -> list[tuple["Requirement", str | None]]:
    """Every requirement `distribution`'s metadata lists (its extras' too), with the installed version (None: not
    installed); empty where the distribution itself is not installed."""
    from packaging.requirements import Requirement  # its parser (~70 ms): not at every config load

    try:
        declared = metadata.requires(distribution) or []
    except metadata.PackageNotFoundError:
        return []
    listed = []
    for line in declared:
        requirement = Requirement(line)
        try:
            installed = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            installed = None
        listed.append((requirement, installed))
    return listed


def unmet_requirements(distribution: str = "lmforge") -> list[tuple["Requirement", str | None]]:
    """Each requirement of `distribution` (not its extras') that this environment lacks or has at a version
    outside it, with the installed version (None: not installed). Empty where the distribution itself is not
    installed (a source tree on PYTHONPATH): its requirements are then unknown."""
    return [(requirement, installed) for requirement, installed in _declared(distribution)
            if (requirement.marker is None or requirement.marker.evaluate({"extra": ""}))  # not an extra's
            and (installed is None or not requirement.specifier.contains(installed, prereleases=True))]


def extras_installed(distribution: str = "lmforge") -> dict[str, list[tuple["Requirement", str | None]]]:
    """Each extra of `distribution` but `dev` (the test tools), with its requirements and their installed versions
    (None: not installed). Empty where the distribution is not installed."""
    declared = _declared(distribution)
    if not declared:
        return {}
    extras: dict[str, list[tuple[Requirement, str | None]]] = {}
    for name in metadata.metadata(distribution).get_all("Provides-Extra") or []:
        for requirement, installed in declared:
            marker = requirement.marker
            if marker is None or marker.evaluate({"extra": ""}) or name == "dev":
                continue  # lmforge's own requirement, or a test tool
            if marker.evaluate({"extra": name}):
                extras.setdefault(name, []).append((requirement, installed))
    return extras


def check_installed_requirements(distribution: str = "lmforge") -> None:
    """Raise InstallError naming every installed library outside its requirement, with the pip command. A missing
    one is left to its import: a machine that only trains may lack the serving stack (gradio, fastapi)."""
    wrong = [(requirement, installed) for requirement, installed in unmet_requirements(distribution) if installed]
    if not wrong:
        return
    found = ", ".join(f"{requirement.name} {installed}" for requirement, installed in wrong)
    needed = ", ".join(f"`{requirement.name}{requirement.specifier}`" for requirement, _ in wrong)
    pip_args = " ".join(f"'{requirement.name}{requirement.specifier}'" for requirement, _ in wrong)
    raise InstallError(f"{distribution} needs {needed}, and this environment has {found}: "
                       f"pip install --upgrade {pip_args}")


@dataclass(frozen=True)
class OptionalPackage:
    """A package outside lmforge's requirements: importable as any of `modules`, installed by `install`."""

    modules: tuple[str, ...]
    install: str

    def installed(self) -> bool:
        return any(find_spec(module) is not None for module in self.modules)


def check_optional_packages(needed: Mapping[str, OptionalPackage]) -> None:
    """Raise InstallError naming each setting (`needed`'s keys, such as "`optim: paged_adamw_8bit`") whose
    package is not installed, with the command that installs it."""
    missing = [f"{setting} needs {package.modules[0]}: {package.install}"
               for setting, package in needed.items() if not package.installed()]
    if missing:
        raise InstallError("; ".join(missing))
