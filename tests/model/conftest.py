import pytest

from lmforge.config import build_config
from lmforge.model.loading import load_model
from lmforge.testing import build_tiny_model


@pytest.fixture(scope="session")
def tiny_family(tmp_path_factory):
    """A function: family name -> folder of that tiny model (built once per session)."""
    built = {}

    def get(family: str):
        if family not in built:
            built[family] = build_tiny_model(tmp_path_factory.mktemp(family), family)
        return built[family]

    return get


def config_for(path, **keys):
    return build_config({"model_name_or_path": str(path), "template": "chatml", **keys})


def load_configured(cfg, **kwargs):
    """`load_model` with the model group and `cutoff_len` of a whole test config."""
    return load_model(cfg.model, cutoff_len=cfg.data.cutoff_len, **kwargs)
