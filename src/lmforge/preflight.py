"""Checks that run before any model or dataset is loaded, so a bad run fails in seconds.

It sits above `data`, `model` and the stage registry (`train/stages`) and below the runner: it imports
config, hub, data and model's checks and asks the configured stage for its own.
"""

from pathlib import Path
from typing import Literal

from lmforge.config import LmforgeConfig
from lmforge.config.fsdp import wrapped_layers
from lmforge.config.packages import liger_switches, needed_packages, reports_to_mlflow
from lmforge.data.registry import check_datasets
from lmforge.data.templates.select import select_template
from lmforge.errors import ConfigError, ModelError
from lmforge.hub.resolve import check_model_reference
from lmforge.hub.upload import hub_upload_problem
from lmforge.installed import check_installed_requirements, check_optional_packages
from lmforge.model.kind import ModelKind

Command = Literal["train", "chat", "eval", "export", "check"]


def preflight(cfg: LmforgeConfig, command: Command) -> ModelKind:
    """Check everything that can be checked cheaply; returns what kind of model the run uses.

    The model, adapter and template references come first: checking them needs no torch; then the stage's
    rules and the datasets (the stage registry loads no trainer, transformers' light top level only). The
    FP8 and model-skeleton checks import torch, transformers' model code and peft, so they come last. First of all,
    the installed libraries against lmforge's requirements (an older trl fails halfway through loading otherwise)."""
    check_installed_requirements()
    check_model_reference(cfg.model.model_name_or_path, hub=cfg.model.model_hub)
    for adapter in cfg.model.adapter_paths():
        check_model_reference(adapter, what="adapter_name_or_path")
    for adapter in cfg.finetuning.ref_model_adapters or []:
        check_model_reference(adapter, what="ref_model_adapters")
    template = select_template(cfg.model.template, cfg.model.model_name_or_path, cfg.model.tool_format,
                               cfg.model.template_file)
    if template is not None and template.remote_code and not cfg.model.trust_remote_code:  # before a download
        raise ModelError(f"template `{template.name}` is made for checkpoints whose model and processor are their "
                         "own code (not in transformers): set `trust_remote_code: true` (for a checkpoint whose "
                         "code you trust)")
    from lmforge.train.stages import configured_stage

    packs_examples = None
    if command in ("train", "check"):
        stage = configured_stage(cfg, train=command == "train")  # a known name (did you mean?), and its own rules
        # bin-packed examples with restarting positions; pt's default packing cuts one document stream instead
        if stage.data.packing(cfg.data) and not stage.data.packs_while_tokenizing:
            packs_examples = "packing"
        elif cfg.data.padding_free:  # unset, it stays off on such a decoder (train/padding_free.py)
            packs_examples = "padding_free"
    if command in ("train", "check") and cfg.data.dataset:  # after the stage: its rules say more (ppo's reward model)
        check_datasets(cfg.data)
    if command in ("train", "check"):
        # DeepSpeed, the optimizer's and the trackers' packages; Liger's where there is a GPU for it (asking torch
        # costs its import: only then)
        check_optional_packages(needed_packages(cfg, cuda=bool(liger_switches(cfg)) and _has_cuda()))
        training = cfg.training
        if training.push_to_hub and (problem := _push_problem(cfg)):
            raise ConfigError(problem)
        if reports_to_mlflow(training.report_to):
            from lmforge.train.mlflow_store import mlflow_store_problem

            if problem := mlflow_store_problem():
                raise ConfigError(problem)
        # imports torch: after the checks that need none
        from lmforge.train.checkpoints import check_resume_checkpoint
        from lmforge.train.optimizers import check_optimizer_runs
        from lmforge.train.schedules import check_lr_scheduler
        from lmforge.train.torch_compile import check_torch_compile

        check_optimizer_runs(cfg.optimizer)  # what the installed torch lacks
        check_lr_scheduler(training.lr_scheduler_type, training.lr_scheduler_kwargs)
        check_torch_compile(training.torch_compile_mode, training.torch_compile_backend)
        if training.resume_from_checkpoint:
            check_resume_checkpoint(training.resume_from_checkpoint)
    if command == "train":
        if not cfg.data.dataset:
            raise ConfigError("`lmforge train` needs `dataset` (names in dataset_info.json or file paths)")
        if not cfg.training.output_dir:
            raise ConfigError("`lmforge train` needs `output_dir`, the folder the trained model goes to")
        from lmforge.model.quantization import check_bits_supported
        from lmforge.train.fp8 import check_fp8

        check_fp8(cfg.training)  # the hardware and library FP8 needs
        check_bits_supported(cfg.finetuning.ref_model_quantization_bit, "ref_model_quantization_bit")
        check_bits_supported(cfg.rl.reward_model_quantization_bit, "reward_model_quantization_bit")
    if command == "export" and not cfg.export.export_dir:
        raise ConfigError("`lmforge export` needs `export_dir`, the folder the merged model goes to")
    from lmforge.model.fit import check_model_fit

    training = cfg.training
    wrapped = wrapped_layers(training.fsdp, training.fsdp_transformer_layer_cls_to_wrap, training.fsdp_config) \
        if command in ("train", "check") else ()
    return check_model_fit(cfg.model, cfg.finetuning, template, command, packs_examples=packs_examples,
                           fsdp_wrapped=wrapped)


def _push_problem(cfg: LmforgeConfig) -> str | None:
    training = cfg.training
    output_dir = training.output_dir or "output_dir"
    repo_id = training.hub_model_id or Path(output_dir).name
    token = training.hub_token or (cfg.model.hf_hub_token.get_secret_value() if cfg.model.hf_hub_token else None)
    return hub_upload_problem("`push_to_hub: true`", repo_id, output_dir, token)


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()
