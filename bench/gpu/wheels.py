"""The carried wheels: their list (wheels.txt), the image's packages (image.txt) and the checks on both.

The GPU machine has no network: what lmforge needs beyond its image travels in the ignored `.whl/`
folder with the working tree, 64 MiB in all. These checks run in the CPU dry run (from the lists
alone) and after `fetch_wheels.py` (on the downloaded files too).
"""

import re
import tomllib
import zipfile
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

GPU_DIR = Path(__file__).resolve().parent
ROOT = GPU_DIR.parents[1]
WHEEL_DIR = ROOT / ".whl"
MIB = 2**20
TREE_LIMIT = 64 * MIB  # what travels to the device machine: tracked + untracked files + carried paths
CARRY_LIMIT = 60 * MIB  # wheels plus the working tree, leaving room for the suite's own files
GROUPS = ("core", "qlora", "zero", "liger")  # core: lmforge itself; the others: optional steps
HOWS = ("binary", "build", "slim")
# the image's Python on manylinux x86_64: how carried wheels' markers are evaluated
IMAGE_ENVIRONMENT = {**default_environment(), "python_version": "3.12", "python_full_version": "3.12.3",
                     "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
                     "implementation_name": "cpython", "os_name": "posix"}


@dataclass(frozen=True)
class Wheel:
    name: str  # canonical
    version: Version
    group: str
    how: str  # binary: a wheel from PyPI; build: built here from the sdist; slim: PyPI's wheel, trimmed
    size: int  # bytes expected in .whl/
    why: str

    @property
    def pin(self) -> str:
        return f"{self.name}=={self.version}"


def read_wheel_list(path: Path = GPU_DIR / "wheels.txt") -> list[Wheel]:
    wheels: list[Wheel] = []
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line, _, why = raw.partition("#")
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 4 or "==" not in fields[0]:
            raise ValueError(f"{path.name}:{number}: expected `name==version group how bytes  # why`, got {raw!r}")
        name, version = fields[0].split("==")
        group, how, size = fields[1], fields[2], int(fields[3])
        if group not in GROUPS or how not in HOWS:
            raise ValueError(f"{path.name}:{number}: group must be one of {GROUPS} and how one of {HOWS}")
        wheels.append(Wheel(canonicalize_name(name), Version(version), group, how, size, why.strip()))
    names = [wheel.name for wheel in wheels]
    if len(set(names)) != len(names):
        raise ValueError(f"{path.name}: a package listed twice (two versions stop the whole install)")
    return wheels


def read_image_packages(path: Path = GPU_DIR / "image.txt") -> dict[str, Version | None]:
    """Package name -> version seen on the image (None: present, version not recorded)."""
    packages: dict[str, Version | None] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            packages[canonicalize_name(name)] = Version(version) if version else None
    return packages


def pyproject_requirements() -> dict[str, Requirement]:
    """lmforge's own requirements (dependencies and every extra), by canonical name."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        specs.extend(extra)
    return {canonicalize_name(req.name): req for req in map(Requirement, specs)}


def absent_import_names(wheels: list[Wheel], image: dict[str, Version | None]) -> list[str]:
    """Top-level import names of lmforge's requirements (any extra) that are neither on the image nor
    carried: what the dry run blocks to stand in for the GPU image."""
    from importlib.metadata import packages_distributions

    carried = {wheel.name for wheel in wheels}
    absent = {name for name in pyproject_requirements() if name not in image and name not in carried}
    modules = {module for module, dists in packages_distributions().items()
               if any(canonicalize_name(dist) in absent for dist in dists) and module.isidentifier()}
    installed = {canonicalize_name(dist) for dists in packages_distributions().values() for dist in dists}
    modules |= {name.replace("-", "_") for name in absent if name not in installed}
    return sorted(modules)


def check_pins(wheels: list[Wheel], image: dict[str, Version | None]) -> list[str]:
    """Problems of the list itself: a pin outside lmforge's requirement, a carried package the image already
    has at that very version, a total over the limit."""
    problems = []
    wanted = pyproject_requirements()
    for wheel in wheels:
        requirement = wanted.get(wheel.name)
        if requirement is not None and not requirement.specifier.contains(wheel.version, prereleases=True):
            problems.append(f"{wheel.pin} is outside lmforge's requirement `{requirement}`")
        if image.get(wheel.name) == wheel.version:
            problems.append(f"{wheel.pin} is already on the image: drop it from wheels.txt")
    total = sum(wheel.size for wheel in wheels)
    if total + tree_size() > CARRY_LIMIT:
        problems.append(f"wheels ({total / MIB:.1f} MiB) and the working tree exceed {CARRY_LIMIT // MIB} MiB")
    return problems


def tree_size() -> int:
    """Bytes of the repository's tracked files (the part of the working tree that always travels)."""
    import subprocess

    try:  # the device machine's copy of the tree may have no git (or no .git): nothing to count there
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=False).stdout
    except OSError:
        return 0
    files = [ROOT / name for name in listed.decode().split("\0") if name]
    return sum(path.stat().st_size for path in files if path.is_file())


def wheel_requirements(path: Path) -> list[Requirement]:
    """A wheel's Requires-Dist that apply on the image (no extras)."""
    with zipfile.ZipFile(path) as archive:
        metadata = next(name for name in archive.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", name))
        message = Parser().parsestr(archive.read(metadata).decode())
    requirements = []
    for spec in message.get_all("Requires-Dist") or []:
        requirement = Requirement(spec)
        if requirement.marker is None or requirement.marker.evaluate({**IMAGE_ENVIRONMENT, "extra": ""}):
            requirements.append(requirement)
    return requirements


def check_folder(wheels: list[Wheel], image: dict[str, Version | None], folder: Path = WHEEL_DIR,
                 groups: tuple[str, ...] = GROUPS) -> list[str]:
    """Problems of the downloaded wheels: missing or extra files, and dependencies neither carried nor on
    the image (or on the image at a recorded version that is too old)."""
    problems = []
    listed = {wheel.name: wheel for wheel in wheels if wheel.group in groups}
    found: dict[str, tuple[Version, Path]] = {}
    for path in sorted(folder.glob("*.whl")):
        name, version, _, _ = parse_wheel_filename(path.name)
        found[name] = (version, path)
        if name not in listed:
            problems.append(f"{path.name} is not in wheels.txt (remove it: it would be installed too)")
        elif listed[name].version != version:
            problems.append(f"{path.name}: wheels.txt pins {listed[name].pin}")
    problems += [f"{wheel.pin} is listed but not in {folder.name}/"
                 for wheel in listed.values() if wheel.name not in found]
    for _, path in found.values():
        for requirement in wheel_requirements(path):
            dependency = canonicalize_name(requirement.name)
            if dependency in found:
                version = found[dependency][0]
            elif dependency in image:
                version = image[dependency]
            else:
                problems.append(f"{path.name} needs {requirement}: neither carried nor on the image")
                continue
            if version is not None and not requirement.specifier.contains(version, prereleases=True):
                problems.append(f"{path.name} needs {requirement}, but {dependency} {version} would be there")
    total = sum(path.stat().st_size for _, path in found.values())
    if total + tree_size() > CARRY_LIMIT:
        problems.append(f"{folder.name}/ holds {total / MIB:.1f} MiB: with the working tree, over "
                        f"{CARRY_LIMIT // MIB} MiB")
    return problems
