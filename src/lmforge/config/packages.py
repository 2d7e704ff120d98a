"""The optional packages a training config's settings reach, each with the pip command that installs it.

Without this table a missing one surfaced after the model had loaded, as transformers' or DeepSpeed's own
traceback (a `deepspeed:` file without DeepSpeed failed inside torchrun's worker; `optim: paged_adamw_8bit`
without bitsandbytes at the first step). preflight asks for `needed_packages(cfg, cuda)` and refuses the run, listing
every missing package, before anything loads. QLoRA's bitsandbytes (a version question too) is
`model/quantization.py`'s; the export and serving backends check their own.
"""

from lmforge.config.groups import LmforgeConfig
from lmforge.installed import OptionalPackage

BITSANDBYTES = OptionalPackage(("bitsandbytes",), 'pip install "lmforge[qlora]"')
TRACKING = 'pip install "lmforge[tracking]"'

# transformers' `optim` choices that import a package of their own (the rest are torch's own optimizers)
OPTIM_PACKAGES: dict[str, OptionalPackage] = {
    **dict.fromkeys(("adamw_bnb_8bit", "adamw_8bit", "ademamix", "ademamix_8bit", "lion_8bit", "lion_32bit",
                     "paged_adamw_32bit", "paged_adamw_8bit", "paged_ademamix_32bit", "paged_ademamix_8bit",
                     "paged_lion_32bit", "paged_lion_8bit", "rmsprop_bnb", "rmsprop_bnb_8bit", "rmsprop_bnb_32bit"),
                    BITSANDBYTES),
    **dict.fromkeys(("adamw_torch_4bit", "adamw_torch_8bit"), OptionalPackage(("torchao",), "pip install torchao")),
    "adamw_anyprecision": OptionalPackage(("torchdistx",), "pip install torchdistx"),
    "adamw_torch_xla": OptionalPackage(("torch_xla",), "pip install torch_xla (a TPU machine)"),
    "adamw_torch_npu_fused": OptionalPackage(("torch_npu",), "pip install torch-npu (an Ascend NPU machine)"),
    **dict.fromkeys(("galore_adamw", "galore_adamw_8bit", "galore_adafactor", "galore_adamw_layerwise",
                     "galore_adamw_8bit_layerwise", "galore_adafactor_layerwise"),
                    OptionalPackage(("galore_torch",), 'pip install "lmforge[galore]"')),
    **dict.fromkeys(("apollo_adamw", "apollo_adamw_layerwise"),
                    OptionalPackage(("apollo_torch",), 'pip install "lmforge[apollo]"')),
    **dict.fromkeys(("lomo", "adalomo"), OptionalPackage(("lomo_optim",), "pip install lomo-optim")),
    "grokadamw": OptionalPackage(("grokadamw",), "pip install grokadamw"),
    **dict.fromkeys(("schedule_free_radam", "schedule_free_adamw", "schedule_free_sgd"),
                    OptionalPackage(("schedulefree",), "pip install schedulefree")),
    "stable_adamw": OptionalPackage(("optimi",), "pip install torch-optimi"),
}

# transformers' `report_to` integrations and what each imports (tensorboard: either writer)
REPORT_TO_PACKAGES: dict[str, OptionalPackage | None] = {
    "azure_ml": OptionalPackage(("azureml",), "pip install azureml-core"),
    "clearml": OptionalPackage(("clearml",), "pip install clearml"),
    "codecarbon": OptionalPackage(("codecarbon",), "pip install codecarbon"),
    "comet_ml": OptionalPackage(("comet_ml",), "pip install comet-ml"),
    "dagshub": OptionalPackage(("dagshub",), "pip install dagshub mlflow"),
    "dvclive": OptionalPackage(("dvclive",), "pip install dvclive"),
    "flyte": OptionalPackage(("flytekit",), "pip install flytekit"),
    "kubeflow": None,  # no package: transformers reports when KUBEFLOW_TRAINER_SERVER_URL is set
    "mlflow": OptionalPackage(("mlflow",), TRACKING),
    "neptune": OptionalPackage(("neptune",), "pip install neptune"),
    "swanlab": OptionalPackage(("swanlab",), 'pip install "lmforge[swanlab]"'),
    "tensorboard": OptionalPackage(("tensorboard", "tensorboardX"), TRACKING),
    "trackio": OptionalPackage(("trackio",), "pip install trackio"),
    "wandb": OptionalPackage(("wandb",), TRACKING),
}

# LLaMA-Factory's optimizer methods (`use_galore: true`, ...) and the package each one's optimizer comes from
METHOD_PACKAGES: dict[str, OptionalPackage] = {
    "use_galore": OPTIM_PACKAGES["galore_adamw"],
    "use_apollo": OPTIM_PACKAGES["apollo_adamw"],
    "use_badam": OptionalPackage(("badam",), 'pip install "lmforge[badam]"'),
    "use_adam_mini": OptionalPackage(("adam_mini",), 'pip install "lmforge[adam-mini]"'),
}
DEEPSPEED = OptionalPackage(("deepspeed",), 'pip install "lmforge[zero]"')
LIGER = OptionalPackage(("liger_kernel",), 'pip install "lmforge[liger]"')


def report_targets(report_to: str | list[str] | None) -> list[str]:
    """The integrations `report_to` names (`all` and `none` name no particular one)."""
    names = [report_to] if isinstance(report_to, str) else list(report_to or [])
    return [name for name in names if name not in ("all", "none")]


def liger_switches(cfg: LmforgeConfig) -> list[str]:
    """The switches set that ask for Liger's kernels: lmforge's (at load) and transformers' (at the first step)."""
    switches = {"enable_liger_kernel": cfg.model.enable_liger_kernel, "use_liger_kernel": cfg.training.use_liger_kernel}
    return [name for name, on in switches.items() if on]


def reports_to_mlflow(report_to: str | list[str] | None) -> bool:
    """`report_to` names MLflow, or is `all` with MLflow installed (transformers then reports to every one)."""
    names = [report_to] if isinstance(report_to, str) else list(report_to or [])
    return "mlflow" in names or ("all" in names and REPORT_TO_PACKAGES["mlflow"].installed())


def needed_packages(cfg: LmforgeConfig, cuda: bool) -> dict[str, OptionalPackage]:
    """Each setting of this training config that needs an optional package (`key: value` -> the package);
    `cuda`: the run has a CUDA GPU, the only place Liger's Triton kernels run (elsewhere they are switched off)."""
    training, optimizer = cfg.training, cfg.optimizer
    needed: dict[str, OptionalPackage] = {}
    if cuda:
        needed.update({f"`{switch}: true`": LIGER for switch in liger_switches(cfg)})
    if training.deepspeed is not None:
        needed["`deepspeed`"] = DEEPSPEED
    if training.optim in OPTIM_PACKAGES:
        needed[f"`optim: {training.optim}`"] = OPTIM_PACKAGES[training.optim]
    for method, package in METHOD_PACKAGES.items():
        if getattr(optimizer, method):
            needed[f"`{method}: true`"] = package
    for name in report_targets(training.report_to):
        if REPORT_TO_PACKAGES.get(name):
            needed[f"`report_to: {name}`"] = REPORT_TO_PACKAGES[name]
    if cfg.swanlab.use_swanlab:
        needed["`use_swanlab: true`"] = REPORT_TO_PACKAGES["swanlab"]
    return needed
