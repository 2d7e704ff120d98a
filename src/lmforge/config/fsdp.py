"""`fsdp`: LLaMA-Factory's option words (`full_shard auto_wrap offload`) or transformers' own `fsdp: true`, with
`fsdp_config`.

transformers reads the words as a deprecated form (to be removed) and refuses a wrong one in every training
process after the model has loaded; here they are checked when the config loads and handed to transformers in the
form it keeps: `fsdp: true` with the words' meaning in `fsdp_config`.
"""

import json
from pathlib import Path
from typing import Any

# transformers' `fsdp` options; the sharding strategies FSDP2 (its default) lacks
FSDP_OPTIONS = ("full_shard", "shard_grad_op", "no_shard", "hybrid_shard", "hybrid_shard_zero2", "offload",
                "auto_wrap")
FSDP1_ONLY = ("no_shard", "hybrid_shard", "hybrid_shard_zero2")


def fsdp_settings(fsdp_config: dict[str, Any] | str | None) -> dict[str, Any] | None:
    """`fsdp_config` as a mapping (given inline or as a JSON file), its keys without transformers' optional
    `fsdp_` prefix; None when its file cannot be read (transformers reports that)."""
    if isinstance(fsdp_config, str):
        try:
            fsdp_config = json.loads(Path(fsdp_config).read_text())
        except (OSError, ValueError):
            return None
    settings = fsdp_config if isinstance(fsdp_config, dict) else {}
    return {key.removeprefix("fsdp_"): value for key, value in settings.items()}


def fsdp_problem(fsdp: bool | str, fsdp_config: dict[str, Any] | str | None) -> str | None:
    if fsdp is True:
        return None
    options = fsdp.split()
    if unknown := [option for option in options if option not in FSDP_OPTIONS]:
        return f"`fsdp`: {', '.join(unknown)} is not an FSDP option: choose from {', '.join(FSDP_OPTIONS)}"
    settings = fsdp_settings(fsdp_config)
    fsdp1 = [option for option in options if option in FSDP1_ONLY]
    if fsdp1 and settings is not None and int(settings.get("version", 2)) == 2:
        return (f"`fsdp: {fsdp}`: {', '.join(fsdp1)} is a sharding strategy of FSDP1, and transformers runs FSDP2 "
                "unless `fsdp_config: {version: 1}` (deprecated): use `full_shard` or `shard_grad_op`")
    return None


def fsdp_arguments(fsdp: str, fsdp_config: dict[str, Any] | str | None) -> dict[str, Any]:
    """`fsdp: true` and the `fsdp_config` the option words mean (what the config's own `fsdp_config` sets wins):
    a sharding strategy is FSDP2's `reshard_after_forward` (full_shard: true, shard_grad_op: false) or FSDP1's
    strategy name, `offload` is `cpu_offload`, `auto_wrap` is the default wrapping."""
    settings = fsdp_settings(fsdp_config)
    if settings is None:  # an unreadable file: transformers reads the words and says what is wrong
        return {"fsdp": fsdp, "fsdp_config": fsdp_config}
    version = int(settings.get("version", 2))
    meant: dict[str, Any] = {}
    for option in fsdp.split():
        if option == "offload":
            meant["cpu_offload"] = True
        elif option in ("full_shard", "shard_grad_op") and version == 2:
            meant["reshard_after_forward"] = option == "full_shard"
        elif option != "auto_wrap":
            meant["reshard_after_forward"] = option
    return {"fsdp": True, "fsdp_config": {**meant, **settings}}


def wrapped_layers(fsdp: bool | str | None, layer_classes: str | list[str] | None,
                   fsdp_config: dict[str, Any] | str | None) -> tuple[str, ...]:
    """The layer classes the run tells FSDP to wrap (none named: transformers wraps the model's own)."""
    if not fsdp:
        return ()
    named = layer_classes or (fsdp_settings(fsdp_config) or {}).get("transformer_layer_cls_to_wrap") or ()
    return (named,) if isinstance(named, str) else tuple(named)
