"""The libraries this environment has, against the ones lmforge's package metadata asks for (pyproject.toml).

pip enforces those floors when it installs lmforge, not afterwards: an environment where trl or transformers was
later downgraded, or installed with `--no-deps`, would fail halfway through loading with an ImportError or a
TypeError about a keyword. `check_installed_requirements` runs first in every preflight and names the pip command.
"""

from importlib import metadata

from packaging.requirements import Requirement

from lmforge.errors import InstallError


def unmet_requirements(distribution: str = "lmforge") -> list[tuple[Requirement, str | None]]:
    """Each requirement of `distribution` (not its extras') that this environment lacks or has at a version
    outside it, with the installed version (None: not installed). Empty where the distribution itself is not
    installed (a source tree on PYTHONPATH): its requirements are then unknown."""
    try:
        declared = metadata.requires(distribution) or []
    except metadata.PackageNotFoundError:
        return []
    unmet = []
    for line in declared:
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue  # an extra's requirement, or another platform's
        try:
            installed = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed is None or not requirement.specifier.contains(installed, prereleases=True):
            unmet.append((requirement, installed))
    return unmet


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
