"""When pt/sft batches go padding-free: the batch's examples one after another in one row (`data.padding_free`).

A padded batch computes every row to its longest example's length: the quickstart's identity rows (52-91
tokens, 8 a batch) are 22% padding. Put in one row with positions restarting at each example, the batch is
computed as packed rows are, each example attending only to itself (`model/packed_attention.py`); the
loss is the same (each row's first label stays out of it, as in a padded row). TRL calls this
`padding_free`, Axolotl `batch_flattening`.

`padding_free: true` asks for it and is refused where it cannot hold: outside pt/sft (the stage's data
rule), on media rows or an encoder-decoder (`prepare_data`), on a decoder whose layers mix the examples of
a row (preflight, with packing's own reason), and with the keys below, which read a row as one sequence.
Unset, lmforge turns it on where it is measured to pay and changes nothing else: CPU training of text
rows, not packed, on a decoder that keeps packed examples apart, through lmforge's packed SDPA.
"""

from typing import Any

from lmforge.config import LmforgeConfig
from lmforge.data.packable_decoder import mixing_reasons


def _whole_row_keys(cfg: LmforgeConfig) -> list[str]:
    """The set keys that read a batch row as one sequence, or supervise its padding."""
    keys = [f"`{key}`" for key, value in (("shift_attn", cfg.model.shift_attn),
                                          ("mixture_of_depths", cfg.model.mixture_of_depths),
                                          ("neftune_noise_alpha", cfg.training.neftune_noise_alpha)) if value]
    return keys + ([] if cfg.data.ignore_pad_token_for_loss else ["`ignore_pad_token_for_loss: false`"])


def padding_free_problem(cfg: LmforgeConfig) -> str | None:
    """The keys `padding_free: true` cannot go with (a pt/sft stage check, run by preflight)."""
    if cfg.data.padding_free and (keys := _whole_row_keys(cfg)):
        return (f"`padding_free: true` puts a batch's examples in one row without padding, which {', '.join(keys)} "
                "cannot go with (S²-Attn's groups, MoD's top-k and NEFTune's noise scale read a row as one sequence; "
                "there would be no padding to supervise): remove one of them")
    return None


def padding_free_batches(cfg: LmforgeConfig, model: Any, *, packed: bool) -> bool:
    """Whether the text batches of this pt/sft run's decoder are padding-free: `padding_free` when set (checked
    before loading), else on for CPU training of unpacked rows where the model's attention keeps examples apart."""
    import torch  # the stage registry imports this module without torch

    if cfg.data.padding_free is not None:
        return cfg.data.padding_free
    config = model.config
    return (not torch.cuda.is_available() and not packed and not _whole_row_keys(cfg) and cfg.model.packed_attention
            and config._attn_implementation == "sdpa" and not mixing_reasons(config))
