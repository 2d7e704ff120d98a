"""`export_hub_model_id` and `hf_hub_token`: offline, one clear message before any work; the token reaches the
hub calls and is never printed."""

import pytest
from rich.console import Console

from lmforge.config import build_config
from lmforge.errors import ExportError
from lmforge.export.pipeline import run_export
from lmforge.model.loading import _hub_kwargs, load_tokenizer


def test_export_hub_model_id_offline_stops_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = build_config({"model_name_or_path": "builtin:tiny-llama", "template": "chatml",
                        "export_dir": str(tmp_path / "out"), "export_hub_model_id": "me/tiny-export"})
    with pytest.raises(ExportError, match=r"`export_hub_model_id: me/tiny-export` uploads to the Hugging Face hub, and "
                                          r"no hub is reachable .*`hf upload me/tiny-export .*out`"):
        run_export(cfg, Console(record=True))
    assert not (tmp_path / "out").exists()


def test_hf_hub_token_reaches_the_hub_calls_and_is_never_shown():
    group = build_config({"model_name_or_path": "builtin:tiny-llama", "hf_hub_token": "hf_secret123"}).model
    assert _hub_kwargs(group)["token"] == "hf_secret123"
    assert "hf_secret123" not in str(group.model_dump(mode="json")) and "hf_secret123" not in repr(group)
    assert load_tokenizer(group).eos_token  # a local model loads with the token passed along
    assert _hub_kwargs(build_config({}).model)["token"] is None  # HF_TOKEN or the saved login then
