"""FP8 training keys (`fp8`, `fp8_backend`, `fp8_enable_fsdp_float8_all_gather`): refused before anything loads
where FP8 cannot run (here: no CUDA GPU), and handed to accelerate as its own FP8 settings where it can."""

import importlib
import os

import pytest
import torch

from lmforge.config import build_config
from lmforge.errors import ConfigError
from lmforge.preflight import preflight
from lmforge.train.fp8 import fp8_accelerate, fp8_environment
from lmforge.train.runner import training_kwargs
from tests.conftest import ROOT

RUN = {"model_name_or_path": "builtin:tiny-llama", "template": "chatml", "dataset": "identity",
       "dataset_dir": str(ROOT / "examples" / "data"), "max_steps": 1, "per_device_train_batch_size": 2}
ACCELERATE = ("ACCELERATE_MIXED_PRECISION", "ACCELERATE_FP8_BACKEND", "ACCELERATE_FP8_ENABLE_FSDP_FLOAT8_ALL_GATHER")


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal of a machine without a CUDA GPU")
def test_fp8_without_a_gpu_is_refused_in_preflight_naming_the_need(tmp_path):
    cfg = build_config({**RUN, "output_dir": str(tmp_path), "fp8": True, "bf16": True})
    with pytest.raises(ConfigError, match=r"needs an NVIDIA GPU with FP8 tensor cores \(compute capability 8.9"):
        preflight(cfg, "train")
    preflight(build_config({**RUN, "output_dir": str(tmp_path), "fp8": True}), "check")  # a config for a GPU box
    with pytest.raises(ConfigError, match="remove `fp16`"):
        preflight(build_config({**RUN, "output_dir": str(tmp_path), "fp8": True, "fp16": True}), "train")


def test_fp8_keys_become_accelerates_settings_while_the_trainer_is_built(tmp_path, monkeypatch):
    """The FP8 library found on the path (an importable `torchao` stands in for the real one) picks accelerate's
    backend; the variables exist only inside the block, and bf16 is left to accelerate's fp8 autocast."""
    training = build_config({"fp8": True, "fp8_enable_fsdp_float8_all_gather": True}).training
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match=r"`pip install torchao` or `pip install \"transformer-engine\[pytorch\]\"`"):
        fp8_environment(training)
    (tmp_path / "torchao").mkdir()
    (tmp_path / "torchao" / "__init__.py").write_text("")
    importlib.invalidate_caches()
    for name in ACCELERATE:
        monkeypatch.delenv(name, raising=False)
    with fp8_accelerate(training):
        assert {name: os.environ[name] for name in ACCELERATE} == {
            "ACCELERATE_MIXED_PRECISION": "fp8", "ACCELERATE_FP8_BACKEND": "AO",
            "ACCELERATE_FP8_ENABLE_FSDP_FLOAT8_ALL_GATHER": "true"}
    assert not any(name in os.environ for name in ACCELERATE)
    assert fp8_environment(build_config({}).training) == {}
    assert training_kwargs(build_config({**RUN, "output_dir": str(tmp_path), "fp8": True, "bf16": True}))["bf16"] \
        is False
    with pytest.raises(ConfigError, match="accelerate no longer offers MS-AMP"):
        build_config({"fp8": True, "fp8_backend": "msamp"})
