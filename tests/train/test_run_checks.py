"""What transformers and torch only find when training starts, found by preflight before anything loads: the
learning-rate schedule's `lr_scheduler_kwargs`, an explicit `resume_from_checkpoint`, `push_to_hub` where no upload
can happen, torch.compile's mode and backend, and the layer classes FSDP is told to wrap."""

import json
import logging

import pytest
import torch
import yaml
from transformers import get_scheduler

from lmforge.config import build_config
from lmforge.errors import ConfigError, ModelError
from lmforge.preflight import preflight
from lmforge.train.checkpoints import check_resume_checkpoint
from lmforge.train.schedules import check_lr_scheduler
from lmforge.train.torch_compile import check_torch_compile
from tests.conftest import run_cli

REFUSED_SCHEDULES = [
    ("cosine_with_min_lr", None,
     r"needs exactly one of `lr_scheduler_kwargs.min_lr` .* `lr_scheduler_kwargs.min_lr_rate`"),
    ("cosine_warmup_with_min_lr", {"min_lr": 1e-6, "min_lr_rate": 0.1}, r"needs exactly one of"),
    ("warmup_stable_decay", {},
     r"`lr_scheduler_type: warmup_stable_decay` needs `lr_scheduler_kwargs.num_decay_steps`"),
    ("cosine", {"num_cycle": 2}, r"`lr_scheduler_kwargs.num_cycle` is not one of its arguments \(did you mean "
                                 r"`num_cycles`\?\); it takes num_cycles"),
    ("linear", {"power": 2.0}, r"`lr_scheduler_type: linear`: `lr_scheduler_kwargs.power` is not one of its "
                               r"arguments; it takes none"),
    ("polynomial", '{"power": 2.0, "lr_end": 1e-7, "bad": 1}', r"`lr_scheduler_kwargs.bad` is not one"),
]


@pytest.mark.parametrize(("name", "kwargs", "said"), REFUSED_SCHEDULES)
def test_schedule_arguments_transformers_would_refuse_at_the_first_step_are_refused_first(name, kwargs, said):
    with pytest.raises(ConfigError, match=said):
        check_lr_scheduler(name, kwargs)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    given = json.loads(kwargs) if isinstance(kwargs, str) else kwargs
    with pytest.raises((TypeError, ValueError)):  # what transformers says when training starts
        get_scheduler(name, optimizer, num_warmup_steps=1, num_training_steps=10, scheduler_specific_kwargs=given)


def test_schedule_arguments_transformers_takes_pass(caplog):
    for name, kwargs in [("cosine", None), ("cosine_with_min_lr", {"min_lr_rate": 0.1}),
                         ("warmup_stable_decay", {"num_decay_steps": 3, "min_lr_ratio": 0.1}),
                         ("cosine_with_restarts", '{"num_cycles": 2}'), ("reduce_lr_on_plateau", {"patience": 2}),
                         (None, {})]:
        check_lr_scheduler(name, kwargs)
    with caplog.at_level(logging.WARNING, logger="lmforge"):
        check_lr_scheduler("constant", {"num_cycles": 2})  # transformers drops them: said, not refused
    assert "`lr_scheduler_type: constant` takes no `lr_scheduler_kwargs`: num_cycles not used" in caplog.text
    with pytest.raises(ConfigError, match=r"`lr_scheduler_kwargs`: not a mapping nor JSON text"):
        check_lr_scheduler("cosine", "{num_cycles: 2")


def test_resume_from_checkpoint_names_a_saved_checkpoint(tmp_path):
    with pytest.raises(ConfigError, match=r"`resume_from_checkpoint: .*nowhere`: no such folder; name a "
                                          r"`checkpoint-N` folder .*, or remove the key"):
        check_resume_checkpoint(str(tmp_path / "nowhere"))
    for step in (5, 10):
        (tmp_path / f"checkpoint-{step}").mkdir()
    (tmp_path / "checkpoint-10" / "trainer_state.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"is not a training checkpoint \(no trainer_state.json\): name a "
                                          r"`checkpoint-N` folder \(the newest here: .*checkpoint-10\)"):
        check_resume_checkpoint(str(tmp_path))  # the run's output_dir, not one of its checkpoints
    check_resume_checkpoint(str(tmp_path / "checkpoint-10"))


def test_push_to_hub_is_refused_before_anything_loads_where_it_cannot_upload(tmp_path, monkeypatch):
    raw = {"model_name_or_path": "builtin:tiny-llama", "template": "chatml", "push_to_hub": True,
           "output_dir": str(tmp_path / "run")}
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError, match=r"`push_to_hub: true` uploads to the Hugging Face hub, and no hub is "
                                          r"reachable \(HF_HUB_OFFLINE=1\): remove the key to keep the result in "
                                          r".*run, then upload .*`hf upload me/run .*run`"):
        preflight(build_config({**raw, "hub_model_id": "me/run"}), "check")
    preflight(build_config({**raw, "push_to_hub": False}), "check")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # no saved login (read where huggingface_hub is imported)
    config = tmp_path / "push.yaml"
    config.write_text(yaml.safe_dump(raw))
    result = run_cli("check", str(config))
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert ("`push_to_hub: true` uploads to the Hugging Face hub, and no login was found: `hf auth login`, HF_TOKEN "
            "or `hf_hub_token`") in " ".join(result.stderr.split())
    config.write_text(yaml.safe_dump({**raw, "hub_token": "hf_given"}))  # a token: the upload is the hub's to judge
    assert run_cli("check", str(config)).returncode == 0


def test_torch_compile_settings_torch_lacks_are_refused_first():
    with pytest.raises(ConfigError, match=r"`torch_compile_mode: max_autotune` is not a torch.compile mode \(did you "
                                          r"mean `max-autotune`\?\): choose from default, .*reduce-overhead"):
        check_torch_compile("max_autotune", None)
    with pytest.raises(ConfigError, match=r"`torch_compile_backend: inductr` is not a torch.compile backend of torch "
                                          r".*\(did you mean `inductor`\?\)"):
        check_torch_compile(None, "inductr")
    for refused in ({"mode": "max_autotune"}, {"backend": "inductr"}):  # what torch says (at the first step)
        with pytest.raises(Exception):  # noqa: B017 - torch raises KeyError or its own InvalidBackend
            torch.compile(torch.nn.Linear(1, 1), **refused)
    check_torch_compile("max-autotune-no-cudagraphs", "inductor")
    check_torch_compile(None, "aot_eager")  # a debugging backend is still one


def test_fsdp_wrapping_a_layer_class_the_model_lacks_is_refused_from_its_skeleton():
    """accelerate looks the class up in every process once the model has loaded, and fails there."""
    raw = {"model_name_or_path": "builtin:tiny-llama", "template": "chatml", "fsdp": "full_shard auto_wrap"}
    for wrap in ({"fsdp_transformer_layer_cls_to_wrap": "Qwen2DecoderLayer"},
                 {"fsdp_config": {"transformer_layer_cls_to_wrap": ["Qwen2DecoderLayer"]}}):
        with pytest.raises(ModelError, match=r"`fsdp_transformer_layer_cls_to_wrap`: builtin:tiny-llama has no "
                                             r"Qwen2DecoderLayer layer; its layers are LlamaDecoderLayer"):
            preflight(build_config({**raw, **wrap}), "check")
    preflight(build_config({**raw, "fsdp_transformer_layer_cls_to_wrap": "LlamaDecoderLayer"}), "check")
    preflight(build_config({**raw, "fsdp": False, "fsdp_transformer_layer_cls_to_wrap": "Qwen2DecoderLayer"}),
              "check")  # no FSDP, nothing wrapped
