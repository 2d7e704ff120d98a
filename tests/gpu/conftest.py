"""Tests of lmforge's CUDA-only branches. Marked `gpu`; without a CUDA device they skip and say why
(bench/gpu/run.sh runs them on a GPU machine: `pytest -m gpu tests/gpu`)."""

import pytest
import torch

from lmforge.config import build_config

NO_CUDA = "needs a CUDA GPU: these tests exercise lmforge's CUDA-only branches (bench/gpu/run.sh runs them on one)"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=NO_CUDA))


def gpu_config(path, **keys):
    return build_config({"model_name_or_path": str(path), "template": "chatml", **keys})
