"""The optional packages a training config's settings need are named, with the pip command, before anything
loads: DeepSpeed for `deepspeed`, bitsandbytes and the others for transformers' `optim` choices, the trackers
for `report_to`, the optimizer methods' own packages."""

import json

import pytest
from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK

from lmforge import preflight as preflight_module
from lmforge.config import build_config
from lmforge.config.packages import (
    DEEPSPEED,
    LIGER,
    METHOD_PACKAGES,
    OPTIM_PACKAGES,
    REPORT_TO_PACKAGES,
    needed_packages,
)
from lmforge.config.training import _SNAPSHOT
from lmforge.errors import ConfigError, InstallError
from lmforge.installed import OptionalPackage, check_optional_packages
from tests.conftest import ROOT, run_cli
from tests.hidden_packages import hide_packages

# transformers' `optim` choices that are torch's own optimizers (or transformers' Adafactor): no package
TORCH_OPTIMIZERS = {"adamw_torch", "adamw_torch_fused", "adafactor", "sgd", "adagrad", "rmsprop"}


def test_every_optim_choice_is_torchs_own_or_names_its_package():
    choices = set(json.loads(_SNAPSHOT.read_text())["optim"]["choices"])
    assert set(OPTIM_PACKAGES) | TORCH_OPTIMIZERS == choices  # a new choice in the snapshot needs a decision
    assert not set(OPTIM_PACKAGES) & TORCH_OPTIMIZERS


def test_every_report_to_integration_of_transformers_is_known():
    assert set(REPORT_TO_PACKAGES) == set(INTEGRATION_TO_CALLBACK)


def test_the_packages_the_test_environment_has_are_found_under_their_import_names():
    """The dev extra installs these: a wrong import name in the table would call them missing."""
    installed = [OPTIM_PACKAGES["paged_adamw_8bit"], DEEPSPEED, *METHOD_PACKAGES.values(),
                 *(REPORT_TO_PACKAGES[name] for name in ("wandb", "mlflow", "tensorboard", "swanlab"))]
    assert [package.modules for package in installed if not package.installed()] == []


def test_a_config_names_each_setting_that_needs_a_package():
    cfg = build_config({"finetuning_type": "full", "deepspeed": {"zero_optimization": {"stage": 2}},
                        "optim": "paged_adamw_8bit", "use_adam_mini": True,
                        "report_to": ["wandb", "tensorboard", "none", "kubeflow"], "use_swanlab": True})
    assert needed_packages(cfg, cuda=False) == {
        "`deepspeed`": DEEPSPEED, "`optim: paged_adamw_8bit`": OPTIM_PACKAGES["paged_adamw_8bit"],
        "`use_adam_mini: true`": METHOD_PACKAGES["use_adam_mini"], "`report_to: wandb`": REPORT_TO_PACKAGES["wandb"],
        "`report_to: tensorboard`": REPORT_TO_PACKAGES["tensorboard"],
        "`use_swanlab: true`": REPORT_TO_PACKAGES["swanlab"]}
    assert needed_packages(build_config({}), cuda=True) == {}  # adamw_torch, report_to none


def test_liger_is_needed_only_where_its_kernels_run():
    both = build_config({"enable_liger_kernel": True, "use_liger_kernel": True})
    assert needed_packages(both, cuda=True) == {"`enable_liger_kernel: true`": LIGER, "`use_liger_kernel: true`": LIGER}
    assert needed_packages(both, cuda=False) == {}  # off without a GPU, with a warning


def test_preflight_asks_for_liger_on_a_cuda_machine_before_anything_loads(monkeypatch):
    monkeypatch.setattr(preflight_module, "_has_cuda", lambda: True)  # this machine's answer, not torch's
    cfg = build_config({"model_name_or_path": "builtin:tiny-llama", "template": "chatml", "use_liger_kernel": True})
    with pytest.raises(InstallError, match=r'`use_liger_kernel: true` needs liger_kernel: pip install "lmforge\[liger'):
        preflight_module.preflight(cfg, "check")


def test_every_missing_package_is_named_with_its_install_command():
    present = OptionalPackage(("json",), "pip install json")
    either = OptionalPackage(("no_such_writer", "json"), "pip install writer")  # one of them is enough
    with pytest.raises(InstallError) as raised:
        check_optional_packages({"`a: 1`": OptionalPackage(("no_such_module_a",), "pip install a"), "`b`": present,
                                 "`c: x`": OptionalPackage(("no_such_module_c",), 'pip install "lmforge[c]"'),
                                 "`d`": either})
    assert str(raised.value) == ('`a: 1` needs no_such_module_a: pip install a; '
                                 '`c: x` needs no_such_module_c: pip install "lmforge[c]"')


def test_an_unknown_report_to_is_refused_with_the_closest_name():
    with pytest.raises(ConfigError, match=r"`report_to`: `wandbb` is not one of transformers' integrations \(did "
                                          r"you mean `wandb`\?\): choose from all, none, azure_ml"):
        build_config({"report_to": ["tensorboard", "wandbb"]})
    build_config({"report_to": "all"})


@pytest.mark.slow
def test_check_and_train_refuse_a_run_whose_packages_are_missing_before_anything_loads(tmp_path, monkeypatch):
    hide_packages(monkeypatch, tmp_path / "hide", "deepspeed", "bitsandbytes", "wandb")
    (tmp_path / "ds.json").write_text(json.dumps({"zero_optimization": {"stage": 2}}))
    config = tmp_path / "run.yaml"
    config.write_text(f"model_name_or_path: builtin:tiny-llama\ntemplate: chatml\nstage: sft\nfinetuning_type: lora\n"
                      f"dataset: identity\ndataset_dir: {ROOT / 'examples' / 'data'}\n"
                      f"deepspeed: {tmp_path / 'ds.json'}\noptim: paged_adamw_8bit\nreport_to: [wandb]\n"
                      f"output_dir: {tmp_path / 'out'}\n")
    for command in ("check", "train"):
        result = run_cli(command, str(config))
        assert result.returncode == 1, result.stderr
        said = " ".join(result.stderr.split())
        assert ('`deepspeed` needs deepspeed: pip install "lmforge[zero]"; `optim: paged_adamw_8bit` needs '
                'bitsandbytes: pip install "lmforge[qlora]"; `report_to: wandb` needs wandb: pip install '
                '"lmforge[tracking]"') in said, said
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()  # refused before anything loaded
