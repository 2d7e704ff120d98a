"""The one path helper for ../shared/refdata (reference data of other people's making).

It is never copied into the repository; tests that need it skip with a clear reason where it is
absent (a user's fresh clone). CI always has it. `LMFORGE_REFDATA` points elsewhere.
"""

import os
from pathlib import Path

import pytest

REFDATA = Path(os.environ.get("LMFORGE_REFDATA", Path(__file__).resolve().parents[2] / "shared" / "refdata"))


def refdata(*parts: str) -> Path:
    path = REFDATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"reference data {path} is absent (it lives in ../shared/refdata beside the project)")
    return path
