"""The optimizer group: LLaMA-Factory's optimizer methods (GaLore, APOLLO, BAdam, Adam-mini, Muon).

GaLore and APOLLO become transformers' own `optim` choices (`galore_adamw`, `apollo_adamw`, their
layer-wise variants); BAdam and Adam-mini come from their packages (optional extras); Muon is torch's.
"""

from typing import Literal

from pydantic import Field, field_validator, model_validator

from lmforge.config.groups_base import Group, split_list

OPTIMIZER_METHODS = ("use_galore", "use_apollo", "use_badam", "use_adam_mini", "use_muon")
# The `optim` a low-rank method builds on (transformers' default when unset) -> its low-rank optimizer.
GALORE_OF = {None: "galore_adamw", "adamw_torch": "galore_adamw", "adamw_torch_fused": "galore_adamw",
             "adamw_8bit": "galore_adamw_8bit", "adamw_bnb_8bit": "galore_adamw_8bit",
             "paged_adamw_8bit": "galore_adamw_8bit", "adafactor": "galore_adafactor"}
APOLLO_OF = {None: "apollo_adamw", "adamw_torch": "apollo_adamw", "adamw_torch_fused": "apollo_adamw"}
# Keys of the low-rank optimizers that transformers reads from `optim_args`, by lmforge key suffix.
LOW_RANK_ARGS = {"use_galore": {"rank": "rank", "update_interval": "update_proj_gap", "scale": "scale",
                                "proj_type": "proj_type"},
                 "use_apollo": {"rank": "rank", "update_interval": "update_proj_gap", "scale": "scale",
                                "proj": "proj", "proj_type": "proj_type", "scale_type": "scale_type"}}


class OptimizerGroup(Group):
    use_galore: bool = Field(
        False, description="GaLore: Adam moments of the target matrices kept in a low-rank projection of their "
                           "gradients (transformers' `galore_adamw`; needs `pip install \"lmforge[galore]\"`).")
    galore_target: list[str] = Field(
        default_factory=lambda: ["all"],
        description="GaLore: linear modules projected, comma-separated; `all`: every linear layer of the language "
                    "model (not the output head).")
    galore_rank: int = Field(16, gt=0, description="GaLore: rank of the gradient projection.")
    galore_update_interval: int = Field(200, gt=0, description="GaLore: steps between projection updates.")
    galore_scale: float = Field(2.0, gt=0, description="GaLore: scale of the projected-back update.")
    galore_proj_type: Literal["std", "reverse_std", "right", "left", "full"] = Field(
        "std", description="GaLore: which side of each matrix is projected.")
    galore_layerwise: bool = Field(
        False, description="GaLore: update each weight as soon as its gradient is ready (less memory; no gradient "
                           "accumulation, one process).")
    use_apollo: bool = Field(
        False, description="APOLLO: AdamW scaled per channel from a low-rank auxiliary state (transformers' "
                           "`apollo_adamw`; needs `pip install \"lmforge[apollo]\"`).")
    apollo_target: list[str] = Field(
        default_factory=lambda: ["all"], description="APOLLO: linear modules, as `galore_target`.")
    apollo_rank: int = Field(16, gt=0, description="APOLLO: rank of the auxiliary projection.")
    apollo_update_interval: int = Field(200, gt=0, description="APOLLO: steps between projection updates.")
    apollo_scale: float = Field(32.0, gt=0, description="APOLLO: gradient scaling factor.")
    apollo_proj: Literal["svd", "random"] = Field("random", description="APOLLO: projection (random or SVD).")
    apollo_proj_type: Literal["std", "right", "left"] = Field("std", description="APOLLO: projected side.")
    apollo_scale_type: Literal["channel", "tensor"] = Field(
        "channel", description="APOLLO: one scaling factor per channel or per tensor.")
    apollo_layerwise: bool = Field(False, description="APOLLO: layer-wise updates, as `galore_layerwise`.")
    apollo_scale_front: bool = Field(
        False, description="APOLLO: apply the norm-growth limiter before the gradient scaling instead of after "
                           "(apollo_torch's `scale_front`); not with `apollo_layerwise`.")
    use_badam: bool = Field(
        False, description="BAdam: Adam on one block of parameters at a time (needs `pip install \"lmforge[badam]\"`, "
                           "full fine-tuning, one process).")
    badam_mode: Literal["layer", "ratio"] = Field(
        "layer", description="BAdam: update one decoder layer at a time (layer) or a share of every matrix (ratio).")
    badam_start_block: int | None = Field(None, ge=0, description="BAdam layer mode: the block trained first.")
    badam_switch_mode: Literal["ascending", "descending", "random", "fixed"] = Field(
        "ascending", description="BAdam layer mode: the order blocks are trained in.")
    badam_switch_interval: int = Field(
        50, ge=-1, description="BAdam layer mode: optimizer steps per block; -1 never switches.")
    badam_update_ratio: float = Field(0.05, gt=0, le=1, description="BAdam ratio mode: share of each matrix updated.")
    badam_mask_mode: Literal["adjacent", "scatter"] = Field(
        "adjacent", description="BAdam ratio mode: the updated entries adjacent or scattered.")
    badam_verbose: int = Field(0, ge=0, le=2, description="BAdam: 1 prints the block, 2 the trainable parameters.")
    use_adam_mini: bool = Field(
        False, description="Adam-mini: one second moment per parameter block (needs `pip install "
                           "\"lmforge[adam-mini]\"`).")
    use_muon: bool = Field(
        False, description="Muon (torch.optim.Muon) on the hidden 2-D weight matrices, scaled to match AdamW's update "
                           "size; AdamW on embeddings, the output head and 1-D weights.")

    _split = field_validator("galore_target", "apollo_target", mode="before")(split_list)

    @model_validator(mode="after")
    def _scale_front_not_layerwise(self) -> "OptimizerGroup":
        if self.use_apollo and self.apollo_scale_front and self.apollo_layerwise:
            # transformers builds the layer-wise optimizers itself, one per weight, with no way to pass it
            raise ValueError("`apollo_scale_front` with `apollo_layerwise`: lmforge passes scale_front to the one "
                             "APOLLO optimizer, and transformers builds the layer-wise ones itself: keep one")
        return self

    def low_rank_optim(self, base: str | None) -> str | None:
        """transformers' `optim` name for GaLore/APOLLO on top of `base` (the configured `optim`), None when
        neither is on; KeyError: `base` has no low-rank variant."""
        method = self.method()
        if method not in LOW_RANK_ARGS:
            return None
        prefix = method.removeprefix("use_")
        name = (GALORE_OF if method == "use_galore" else APOLLO_OF)[base]
        return name + "_layerwise" if getattr(self, f"{prefix}_layerwise") else name

    def low_rank_optim_args(self) -> str:
        """transformers' `optim_args` string of the GaLore/APOLLO settings (`rank=16, update_proj_gap=200, ...`)."""
        method = self.method()
        prefix = str(method).removeprefix("use_")
        return ", ".join(f"{arg}={getattr(self, f'{prefix}_{key}')}" for key, arg in LOW_RANK_ARGS[str(method)].items())

    def method(self) -> str | None:
        """The one optimizer method switched on (`use_galore`, ...), or None."""
        chosen = [name for name in OPTIMIZER_METHODS if getattr(self, name)]
        return chosen[0] if chosen else None
