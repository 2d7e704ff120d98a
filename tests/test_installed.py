"""The installed libraries against lmforge's requirements: an environment with an older trl (pip enforces the floors
only when it installs lmforge) fails in preflight with the pip command, not halfway through loading."""

import os
import subprocess
import sys
from importlib import metadata

import pytest

from lmforge.errors import InstallError
from lmforge.installed import check_installed_requirements, extras_installed, unmet_requirements
from tests.conftest import ROOT


def _distribution(folder, name: str, version: str, requires: list[str], extras: tuple[str, ...] = ()) -> None:
    """An installed distribution's metadata (a .dist-info folder), as pip writes it."""
    info = folder / f"{name}-{version}.dist-info"
    info.mkdir()
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}",
             *(f"Provides-Extra: {extra}" for extra in extras),
             *(f"Requires-Dist: {requirement}" for requirement in requires)]
    (info / "METADATA").write_text("\n".join(lines) + "\n")


def test_this_environment_meets_lmforges_requirements():
    assert unmet_requirements() == []
    check_installed_requirements()


def test_too_old_libraries_are_named_with_the_pip_command(tmp_path, monkeypatch):
    _distribution(tmp_path, "needy", "1.0", [
        "torch>=2.0",  # met
        "trl>=99",  # too old
        "no-such-library-here>=1.0",  # missing
        'deepspeed>=999; extra == "zero"',  # an extra's: not checked
        'pydantic>=999; python_version < "3"',  # another platform's: not checked
    ])
    monkeypatch.syspath_prepend(str(tmp_path))
    unmet = unmet_requirements("needy")
    assert [(str(requirement), installed) for requirement, installed in unmet] == [
        ("trl>=99", metadata.version("trl")), ("no-such-library-here>=1.0", None)]
    with pytest.raises(InstallError) as raised:  # the missing one is left to its import
        check_installed_requirements("needy")
    assert str(raised.value) == (f"needy needs `trl>=99`, and this environment has trl {metadata.version('trl')}: "
                                 "pip install --upgrade 'trl>=99'")


def test_a_source_tree_without_installed_metadata_is_not_checked():
    assert unmet_requirements("a-distribution-that-is-not-installed") == []
    assert extras_installed("a-distribution-that-is-not-installed") == {}


def test_each_extra_lists_its_libraries_and_their_installed_versions(tmp_path, monkeypatch):
    _distribution(tmp_path, "needy", "1.0", [
        "torch>=2.0", 'trl>=1; extra == "rl"', 'no-such-library-here>=1; extra == "rl"',
        'pytest>=8; extra == "dev"', 'torch>=99; extra == "zero"'], extras=("rl", "dev", "zero"))
    monkeypatch.syspath_prepend(str(tmp_path))
    listed = {extra: [(f"{needed.name}{needed.specifier}", installed) for needed, installed in requirements]
              for extra, requirements in extras_installed("needy").items()}
    assert listed == {"rl": [("trl>=1", metadata.version("trl")), ("no-such-library-here>=1", None)],
                      "zero": [("torch>=99", metadata.version("torch"))]}  # dev (the test tools) left out


def test_lmforge_check_refuses_an_environment_with_an_older_trl_before_loading_anything(tmp_path):
    """trl's metadata on the path ahead of the real one, as after `pip install trl==0.9 --no-deps`."""
    _distribution(tmp_path, "trl", "0.9.0", [])
    config = tmp_path / "run.yaml"
    config.write_text("model_name_or_path: builtin:tiny-llama\ntemplate: chatml\nstage: sft\n")
    result = subprocess.run([sys.executable, "-m", "lmforge", "check", str(config)], cwd=ROOT, capture_output=True,
                            text=True, timeout=300, env={**os.environ, "PYTHONPATH": os.pathsep.join(
                                [str(tmp_path), *filter(None, [os.environ.get("PYTHONPATH")])])})
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 1, output
    assert "this environment has trl 0.9.0: pip install --upgrade 'trl>=" in output, output
    assert "Traceback" not in output

