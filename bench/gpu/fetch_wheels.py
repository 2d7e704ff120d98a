"""Download exactly the wheels of wheels.txt for the GPU machine (Python 3.12, manylinux x86_64) into `.whl/`.

    python bench/gpu/fetch_wheels.py [--groups core,qlora,zero,liger] [--dest .whl]

Run it on a machine with network, with a Python that has torch (building DeepSpeed's wheel imports it).
Binary wheels come from PyPI for the image's platform; sdists (DeepSpeed, rouge-score) are built here into
py3-none-any wheels (DeepSpeed without precompiled ops: the suite trains with torch's AdamW); bitsandbytes'
wheel is trimmed to the CUDA 13.0 library the image's torch (cu130) loads: 3.4 MB instead of 43 MB.
Then every carried wheel's dependencies are checked against the other wheels and the image's packages,
and the total against the size that may travel. Exit status 1 on any problem.
"""

import argparse
import base64
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.gpu.wheels import (
    GROUPS,
    MIB,
    WHEEL_DIR,
    Wheel,
    check_folder,
    read_image_packages,
    read_wheel_list,
    tree_size,
)

PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_24_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux1_x86_64"]
KEPT_CUDA_LIBRARY = "libbitsandbytes_cuda130.so"  # torch 2.11+cu130 on the image


def pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", *args], check=True)


def download_binaries(wheels: list[Wheel], into: Path) -> None:
    platforms = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    pip("download", "--quiet", "--no-deps", "--only-binary=:all:", "--python-version", "3.12", "--implementation",
        "cp", *platforms, "-d", str(into), *[wheel.pin for wheel in wheels])


def build_from_sdists(wheels: list[Wheel], into: Path) -> None:
    with tempfile.TemporaryDirectory() as sdists:
        pip("download", "--quiet", "--no-deps", "--no-binary=:all:", "-d", sdists, *[wheel.pin for wheel in wheels])
        # no isolation: DeepSpeed's setup imports torch; DS_BUILD_OPS=0 leaves its CUDA ops to JIT (unused here)
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w",
                        str(into), *map(str, Path(sdists).iterdir())], check=True,
                       env={**os.environ, "DS_BUILD_OPS": "0"})


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def slim_bitsandbytes(wheel: Path) -> None:
    """Keep the one CUDA library the image loads (and the CPU one); rewrite RECORD to match."""
    slim = wheel.with_suffix(".slim")
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(slim, "w", zipfile.ZIP_DEFLATED) as target:
        names = [name for name in source.namelist()
                 if not (name.startswith("bitsandbytes/libbitsandbytes_") and name.endswith(".so"))
                 or name.endswith((KEPT_CUDA_LIBRARY, "libbitsandbytes_cpu.so"))]
        if not any(name.endswith(KEPT_CUDA_LIBRARY) for name in names):
            raise SystemExit(f"{wheel.name} has no {KEPT_CUDA_LIBRARY}: pick a bitsandbytes built for CUDA 13.0")
        record_name = next(name for name in names if name.endswith(".dist-info/RECORD"))
        records = []
        for name in names:
            if name != record_name:
                data = source.read(name)
                target.writestr(source.getinfo(name), data)
                records.append(_record_line(name, data))
        target.writestr(record_name, "\n".join([*records, f"{record_name},,"]) + "\n")
    slim.replace(wheel)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", default=",".join(GROUPS), help=f"which of {', '.join(GROUPS)} to fetch")
    parser.add_argument("--dest", type=Path, default=WHEEL_DIR)
    args = parser.parse_args()
    groups = tuple(args.groups.split(","))
    wheels = [wheel for wheel in read_wheel_list() if wheel.group in groups]
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        download_binaries([w for w in wheels if w.how in ("binary", "slim")], work)
        build_from_sdists([w for w in wheels if w.how == "build"], work)
        for path in work.glob("bitsandbytes-*.whl"):
            slim_bitsandbytes(path)
        args.dest.mkdir(exist_ok=True)
        for stale in args.dest.glob("*.whl"):
            stale.unlink()
        for path in work.glob("*.whl"):
            shutil.copy2(path, args.dest / path.name)
    print(f"{'wheel':58} {'MiB':>6}  listed")
    expected = {wheel.name: wheel.size for wheel in wheels}
    for path in sorted(args.dest.glob("*.whl")):
        name = path.name.split("-")[0].replace("_", "-").lower()
        print(f"{path.name:58} {path.stat().st_size / MIB:6.2f}  {expected.get(name, 0) / MIB:6.2f}")
    total = sum(path.stat().st_size for path in args.dest.glob("*.whl"))
    print(f"total {total / MIB:.1f} MiB + working tree {tree_size() / MIB:.1f} MiB")
    problems = check_folder(wheels, read_image_packages(), args.dest, groups)
    for problem in problems:
        print(f"problem: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
