"""Every LLaMA-Factory key in `llamafactory_keys.tsv` does what the data says, and the data covers the
keys LLaMA-Factory's own example configs use."""

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from lmforge.config import build_config
from lmforge.config.groups import GROUPS
from lmforge.config.llamafactory import LLAMAFACTORY_KEYS, LLAMAFACTORY_VALUES
from lmforge.config.loader import KEY_TO_GROUP
from lmforge.errors import ConfigError
from tests.refdata import refdata

STATUSES = {"implemented", "mapped", "pending", "refused"}
DATACLASSES = ("ModelArguments", "DataArguments", "FinetuningArguments", "GeneratingArguments", "TrainingArguments",
               "Seq2SeqTrainingArguments", "EvaluationArguments", "MegatronBridgeArguments")
# Values for implemented keys whose default would trip a cross-field rule when set on its own.
SAMPLES: dict[str, Any] = {"do_train": True, "finetuning_type": "lora", "stage": "sft"}
# Keys that only apply next to another key (freeze options need the freeze method).
COMPANIONS: dict[str, dict[str, Any]] = {
    **{key: {"finetuning_type": "freeze"}
       for key in ("freeze_trainable_layers", "freeze_trainable_modules", "freeze_extra_modules")},
    **{key: {"finetuning_type": "oft"} for key in ("oft_rank", "oft_block_size", "oft_target", "module_dropout")}}
# Each mapped key: a LLaMA-Factory value and what its lmforge key must hold afterwards.
MAPPED: dict[str, tuple[Any, Any]] = {
    "new_special_tokens": ("<a>,<b>", ["<a>", "<b>"]),
    "new_special_tokens_config": (str(Path(__file__).with_name("special_tokens.yaml")),
                                  ["<|begin_plan|>", "<|end_plan|>"]),
    "disable_gradient_checkpointing": (True, False),
    "use_reentrant_gc": (False, {"use_reentrant": False}),
    "disable_shuffling": (True, "sequential"),
    "eval_num_beams": (4, 4),
    "generation_num_beams": (3, 3),
    "sortish_sampler": (True, "group_by_length"),
}


def _by_status(status: str) -> list[str]:
    return sorted(key for key, entry in LLAMAFACTORY_KEYS.items() if entry.status == status)


def _landed(cfg: Any, target: str) -> Any:
    group, key = target.split(".", 1)
    return getattr(getattr(cfg, group), key)


def test_key_data_is_well_formed():
    assert len(LLAMAFACTORY_KEYS) >= 270
    for entry in LLAMAFACTORY_KEYS.values():
        assert entry.status in STATUSES, entry
        assert entry.dataclass.startswith(DATACLASSES), entry
        if entry.status in ("implemented", "mapped"):
            group, key = entry.target.split(".", 1)
            assert key in GROUPS[group].model_fields, entry
        if entry.status == "implemented":
            assert entry.target.split(".", 1)[1] == entry.key, entry
        if entry.status in ("pending", "refused"):
            assert entry.note, entry
            json.loads(entry.default or "null")
        else:
            assert not entry.default, entry
        if entry.status == "refused":  # hardware lmforge does not run on, or a feature with a reason in its note
            assert entry.target and re.search(r"Megatron|KTransformers|Ascend|NPU|\(.+\)", entry.note), entry


@pytest.mark.parametrize("key", _by_status("implemented"))
def test_implemented_key_is_accepted_where_the_data_says(key):
    target = LLAMAFACTORY_KEYS[key].target
    group, name = target.split(".", 1)
    assert KEY_TO_GROUP[key] == group
    value = SAMPLES.get(key, GROUPS[group].model_fields[name].get_default(call_default_factory=True))
    cfg = build_config({**COMPANIONS.get(key, {}), key: value})
    assert _landed(cfg, target) == value
    assert key in getattr(cfg, group).model_fields_set


def test_every_mapped_key_has_a_behaviour_test():
    assert set(MAPPED) == set(_by_status("mapped"))


@pytest.mark.parametrize("key", sorted(MAPPED))
def test_mapped_key_lands_on_its_lmforge_key(key):
    value, expected = MAPPED[key]
    target = LLAMAFACTORY_KEYS[key].target
    cfg = build_config({key: value})
    assert _landed(cfg, target) == expected
    with pytest.raises(ConfigError, match=rf"`{key}` and `{target.split('.', 1)[1]}` set the same thing"):
        build_config({key: value, target.split(".", 1)[1]: expected})


@pytest.mark.parametrize("key", _by_status("pending") + _by_status("refused"))
def test_unsupported_key_names_its_feature(key):
    entry = LLAMAFACTORY_KEYS[key]
    with pytest.raises(ConfigError) as err:
        build_config({key: entry.default != "true"}, source="run.yaml")  # a value that switches the feature on
    message = str(err.value)
    assert f"`{key}` belongs to {entry.note}" in message
    if entry.status == "refused":
        assert f"use {entry.target} instead" in message
    else:
        assert "does not support yet" in message


@pytest.mark.parametrize("key", [k for k in _by_status("pending") + _by_status("refused")
                                 if LLAMAFACTORY_KEYS[k].default])
def test_unsupported_key_at_its_default_is_inert(key):
    """LLaMA-Factory's default leaves the feature off, as lmforge has it: accepted, and nothing changes."""
    assert build_config({key: json.loads(LLAMAFACTORY_KEYS[key].default)}).flat() == build_config({}).flat()


def test_a_fully_written_config_with_features_left_off_loads():
    cfg = build_config({"use_galore": False, "galore_rank": 16, "use_unsloth": False, "upcast_layernorm": False,
                        "sglang_maxlen": 4096, "ignore_pad_token_for_loss": True, "lora_rank": 4})
    assert cfg.finetuning.lora_rank == 4
    with pytest.raises(ConfigError, match=r"`sglang_maxlen` belongs to .*SGLang.* set it to its default, 4096"):
        build_config({"sglang_maxlen": 4096.5})


def _example_configs() -> list[Path]:
    root = refdata("llamafactory_examples_v0.9.3")
    return sorted(path for path in root.rglob("*.yaml") if path.parent.name != "accelerate")  # accelerate's own


def test_the_key_data_covers_every_key_of_the_v093_examples():
    for example in _example_configs():
        keys = set(yaml.safe_load(example.read_text()))
        unknown = sorted(k for k in keys if k not in LLAMAFACTORY_KEYS and k not in KEY_TO_GROUP)
        assert not unknown, f"{example.name}: {unknown}"


# What a user changes: where the model, data and outputs are. DeepSpeed configs become files of their stage.
PATHS = {"model_name_or_path": "/models/base", "adapter_name_or_path": "/models/adapter", "output_dir": "/out/run",
         "export_dir": "/out/export", "dataset_dir": "/data", "tokenized_path": "/data/tokenized", "media_dir": "/data"}


def _with_local_paths(raw: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    raw = {**raw, **{key: value for key, value in PATHS.items() if key in raw}}
    if "deepspeed" in raw:
        stage = int(re.search(r"z(\d)", raw["deepspeed"]).group(1))  # examples/deepspeed/ds_z3_config.json
        path = tmp_path / f"ds_z{stage}.json"
        path.write_text(json.dumps({"zero_optimization": {"stage": stage}}))
        raw["deepspeed"] = str(path)
    return raw


def test_v093_examples_validate_after_changing_only_paths(tmp_path):
    """Each example passes, or fails naming only keys of features that are pending or refused."""
    passed, failed = [], {}
    for example in _example_configs():
        raw = _with_local_paths(yaml.safe_load(example.read_text()), tmp_path)
        try:
            build_config(raw, source=example.name)
            passed.append(example)
        except ConfigError as err:
            failed[example] = str(err)
    for example, message in failed.items():
        unsupported = [k for k, v in yaml.safe_load(example.read_text()).items() if k in LLAMAFACTORY_KEYS
                       and LLAMAFACTORY_KEYS[k].status in ("pending", "refused")
                       and not LLAMAFACTORY_KEYS[k].is_inert(v)]
        assert unsupported, f"{example.name} uses only supported keys but fails:\n{message}"
        lines = message.splitlines()[1:]
        assert len(lines) == len(unsupported) and all("belongs to" in line for line in lines), message
    assert len(passed) >= 37, [p.name for p in failed]


# The v0.9.3 examples that still fail `lmforge check` after changing only paths: the keys that fail, and why.
STILL_FAILING: dict[str, tuple[list[str], str]] = {}


def test_v093_examples_that_still_fail_are_the_listed_ones_for_the_listed_keys(tmp_path):
    root = refdata("llamafactory_examples_v0.9.3")
    failing: dict[str, str] = {}
    for example in _example_configs():
        try:
            build_config(_with_local_paths(yaml.safe_load(example.read_text()), tmp_path), source=example.name)
        except ConfigError as err:
            failing[str(example.relative_to(root))] = str(err)
    now_pass = sorted(set(STILL_FAILING) - set(failing))
    assert not now_pass, f"these examples pass now: remove them from STILL_FAILING: {now_pass}"
    assert sorted(failing) == sorted(STILL_FAILING), {k: v for k, v in failing.items() if k not in STILL_FAILING}
    for name, message in failing.items():
        keys, _ = STILL_FAILING[name]
        assert len(message.splitlines()[1:]) == len(keys), message
        assert all(f"`{key}` belongs to" in message for key in keys), message
    assert len(_example_configs()) - len(failing) == 39


@pytest.mark.parametrize(("key", "value"), sorted(LLAMAFACTORY_VALUES))
def test_value_of_a_feature_not_built_yet_names_it(key, value):
    entry = LLAMAFACTORY_VALUES[(key, value)]
    assert LLAMAFACTORY_KEYS[key].status == "implemented"
    with pytest.raises(ConfigError) as err:
        build_config({key: value}, source="run.yaml")
    assert str(err.value).splitlines()[1:] == [f"  run.yaml: {entry.message()}"]
    assert entry.note in entry.message()


def test_a_pending_value_names_what_to_use_meanwhile():
    with pytest.raises(ConfigError, match=r"HQQ while loading yet\), which lmforge does not support yet; "
                                          r"`quantization_method: bnb` quantizes with bitsandbytes"):
        build_config({"quantization_method": "hqq", "quantization_bit": 4})
    assert LLAMAFACTORY_VALUES[("quantization_method", "awq")].message().endswith("; choose another value")
