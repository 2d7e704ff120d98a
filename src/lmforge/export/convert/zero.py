"""`--from zero`: a DeepSpeed ZeRO (stage 1/2/3) checkpoint -> a safetensors folder.

The partitioned fp32 master weights are gathered by DeepSpeed's own `zero_to_fp32` utilities, then
placed into the model the config describes. SOURCE is the folder holding `latest` and the
`global_stepN/` folder (what HF Trainer writes as `checkpoint-N/`), or a `global_stepN/` folder.
"""

from pathlib import Path

from rich.console import Console

from lmforge.errors import ExportError
from lmforge.export.convert.common import (
    ConversionResult,
    build_model,
    load_tokenizer_if_any,
    read_hf_config,
    save_and_verify,
)


def _checkpoint_root_and_tag(source: Path) -> tuple[Path, str | None]:
    if (source / "latest").is_file():
        return source, None
    if list(source.glob("*_optim_states.pt")) or list(source.glob("*model_states.pt")):
        return source.parent, source.name  # a global_stepN folder itself
    steps = sorted(source.glob("global_step*"))
    if steps:
        return source, steps[-1].name
    raise ExportError(f"{source} is not a DeepSpeed checkpoint: expected a `latest` file or `global_stepN/` "
                      "folders holding *_optim_states.pt and *_model_states.pt")


def convert(source: Path, out_dir: Path, *, config: Path | None = None,
            console: Console | None = None) -> ConversionResult:
    try:
        from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint
    except ImportError:
        raise ExportError("converting ZeRO checkpoints needs DeepSpeed: `pip install deepspeed` "
                          "(it runs on CPU for this)") from None
    root, tag = _checkpoint_root_and_tag(source)
    hf_config = read_hf_config(root, what=f"ZeRO checkpoint {source}", config_path=config)
    state = get_fp32_state_dict_from_zero_checkpoint(str(root), tag=tag)
    model = build_model(hf_config, dict(state), what=f"ZeRO checkpoint {source}")
    notes = [f"gathered {len(state)} fp32 tensors from the ZeRO partitions of {root / (tag or '')}"]
    return save_and_verify(model, out_dir, what=f"ZeRO checkpoint {source.name}",
                           tokenizer=load_tokenizer_if_any(root), side_files=root, notes=notes, console=console)
