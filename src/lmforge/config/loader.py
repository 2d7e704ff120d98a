"""Read a YAML config (plus `key=value` overrides) into a validated `LmforgeConfig`."""

import difflib
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from lmforge.config.groups import GROUPS, LmforgeConfig
from lmforge.config.llamafactory import not_supported_message, translate_llamafactory
from lmforge.config.llamafactory_v1 import is_v1_config, translate_v1
from lmforge.config.rules import check_rules
from lmforge.config.transformers4 import translate_transformers4
from lmforge.data.registry import SOURCE_KEYS
from lmforge.errors import ConfigError

KEY_TO_GROUP: dict[str, str] = {
    key: group for group, model in GROUPS.items() for key in model.model_fields
}


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must be a mapping of `key: value` lines, got {type(data).__name__}")
    return data


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """`key=value` pairs from the command line; values are read as YAML scalars (1e-4 too)."""
    parsed: dict[str, Any] = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} must look like key=value")
        parsed[key.strip()] = yaml.safe_load(raw) if raw.strip() else None
    return parsed


def _unknown_key_message(key: str, where: str) -> str:
    if (reason := not_supported_message(key)) is not None:
        return f"{where}: {reason}"
    close = difflib.get_close_matches(key, list(KEY_TO_GROUP), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(f'`{c}`' for c in close)}?" if close else ""
    return f"{where}: unknown key `{key}`{hint}"


def _describe_errors(err: ValidationError, raw: dict[str, Any], where: Callable[[str], str]) -> list[str]:
    """One line per offending key (a union type reports once per member; keep the first)."""
    seen: dict[str, str] = {}
    for error in err.errors():
        key = str(error["loc"][0]) if error["loc"] else "?"
        if key not in seen:
            seen[key] = f"{where(key)}: key `{key}` = {raw.get(key, error.get('input'))!r}: {error['msg']}"
    return list(seen.values())


COMMAND_LINE = "command-line override"


def build_config(raw: dict[str, Any], source: str | None = None,
                 overridden: Collection[str] = ()) -> LmforgeConfig:
    """Route flat keys into the typed groups, validate them, then apply the cross-field rules.
    A problem with a key in `overridden` is said to come from the command line, not from `source`."""
    notices: tuple[str, ...] = ()
    if is_v1_config(raw):  # LLaMA-Factory v1's names and plugin mappings, as v0.9's flat keys
        raw, notice = translate_v1(raw, overridden)
        notices = (notice,)
    raw, came_from, translation_problems = translate_llamafactory(raw)  # LLaMA-Factory's names and inert keys
    raw, came_from_transformers4, transformers4_problems = translate_transformers4(raw)  # its Trainer's old keys
    came_from.update(came_from_transformers4)
    translation_problems += transformers4_problems

    def where(key: str) -> str:
        return COMMAND_LINE if came_from.get(key, key) in overridden else source or "config"

    per_group: dict[str, dict[str, Any]] = {name: {} for name in GROUPS}
    problems: list[str] = [f"{source or 'config'}: {problem}" for problem in translation_problems]
    for key, value in raw.items():
        group = KEY_TO_GROUP.get(str(key))
        if group is None:
            problems.append(_unknown_key_message(str(key), where(str(key))))
        else:
            per_group[group][key] = value
    groups: dict[str, BaseModel] = {}
    for name, model in GROUPS.items():
        try:
            groups[name] = model(**per_group[name])
        except ValidationError as err:
            problems.extend(_describe_errors(err, per_group[name], where))
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    config = LmforgeConfig(**groups, source=source, notices=notices)
    check_rules(config)
    return config


# Files that sit beside training configs (LLaMA-Factory's examples/accelerate, examples/deepspeed, data/) and
# get passed in their place: recognised by keys only they have (all of them for accelerate's, any for DeepSpeed's),
# so the error names the file's real use.
ACCELERATE_KEYS = frozenset({"compute_environment", "distributed_type"})
DEEPSPEED_KEYS = frozenset({"zero_optimization", "train_micro_batch_size_per_gpu"})


def _other_config_kind(raw: dict[str, Any], path: str | Path) -> str | None:
    """What `raw` is when it is not a training config: an accelerate or DeepSpeed config, a dataset_info.json
    (every value a mapping naming its data) or a file of new special tokens (every key `<...>`, every value text)."""
    if raw.keys() >= ACCELERATE_KEYS:
        return ("an accelerate launcher config, not a training config: launch with it, `accelerate launch "
                f"--config_file {path} -m lmforge.cli.main train run.yaml`, or let lmforge launch (`lmforge train "
                "run.yaml --nproc N`)")
    if DEEPSPEED_KEYS & raw.keys():
        return f"a DeepSpeed config, not a training config: name it in your training config (`deepspeed: {path}`)"
    if raw and all(isinstance(value, dict) and SOURCE_KEYS & value.keys() for value in raw.values()):
        return ("a dataset_info.json (dataset names and their files), not a training config: name its folder "
                f"(`dataset_dir: {Path(path).parent}`) and a dataset (`dataset: {next(iter(raw))}`) in your "
                "training config")
    if raw and all(str(key).startswith("<") and str(key).endswith(">") and isinstance(value, str)
                   for key, value in raw.items()):
        return ("a file of new special tokens and their descriptions, not a training config: name it in your "
                f"training config (`new_special_tokens_config: {path}`)")
    return None


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> LmforgeConfig:
    """Load `path` (may be None: overrides only) and apply `key=value` overrides on top."""
    raw = read_yaml(path) if path is not None else {}
    if path is not None and (kind := _other_config_kind(raw, path)) is not None:
        raise ConfigError(f"{path} is {kind}")
    overridden = parse_overrides(overrides or [])
    raw.update(overridden)
    return build_config(raw, source=str(path) if path is not None else None, overridden=overridden)
