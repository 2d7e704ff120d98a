"""A reward model as a reward: a sequence-classification checkpoint (one scalar head) scores each prompt +
completion, in the same process as the policy.

`reward_model` is a folder with a trained head: a full `*ForSequenceClassification` model, or a LoRA adapter
trained with `stage: rm` (peft's SEQ_CLS task, head saved with it), merged into its base. When the reward
model shares the policy's vocabulary it reads exactly the token ids it was trained on: the prompt as the
template renders it, then the completion as generated, end-of-turn token included (what `stage: rm` trains
on); otherwise the prompt and completion texts are tokenized by its own tokenizer.
"""

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lmforge.errors import RewardError
from lmforge.model.loading import TRANSFORMERS_FORMAT
from lmforge.train.rewards import Reward

REWARD_MODEL_NAME = "reward_model"
SCORE_BATCH = 16  # sequences scored per forward pass


def _reward_adapter_settings(folder: Path, key: str) -> dict[str, Any]:
    """A `stage: rm` adapter's settings (a SEQ_CLS adapter, head included)."""
    settings = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    if settings.get("task_type") != "SEQ_CLS":
        raise RewardError(f"{key} is a {settings.get('task_type')} adapter, not a reward model: train one with "
                          "`stage: rm`")
    return settings


def _reward_adapter_base(folder: Path, key: str) -> str:
    """The base model a `stage: rm` adapter folder was trained on."""
    base = _reward_adapter_settings(folder, key).get("base_model_name_or_path")
    if not base or not Path(base).is_dir():
        raise RewardError(f"{key}: the adapter's base model {base!r} is not a local folder")
    return str(base)


def _load(folder: Path, dtype: Any, trust_remote_code: bool, adapters: Sequence[str] = (),
          loading: dict[str, Any] | None = None) -> tuple[Any, Any]:
    """The reward model in `folder` with `adapters` (LLaMA-Factory's `reward_model_adapters`) merged in order;
    `loading`: more `from_pretrained` arguments (quantization)."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    from lmforge.model.lora import merge_adapters
    from lmforge.model.quantization import keep_cpu_kernel_to_packable_layers

    key = f"`reward_model: {folder}`"
    if (folder / "value_head.safetensors").is_file() or (folder / "value_head.bin").is_file():
        raise RewardError(f"{key} is LLaMA-Factory's value-head reward model, which lmforge cannot load: train the "
                          "reward model with `lmforge train` and `stage: rm` (same data and keys) and point "
                          "`reward_model` at its output_dir")
    kwargs = dict(num_labels=1, dtype=dtype, trust_remote_code=trust_remote_code, **(loading or {}))
    base = None
    to_apply: list[str] = []  # each brings its trained head (`stage: rm` saves the score layer with the adapter)
    if (folder / "adapter_config.json").is_file():
        base = _reward_adapter_base(folder, key)
        model = AutoModelForSequenceClassification.from_pretrained(base, **kwargs)
        to_apply.append(str(folder))
    else:
        if not (folder / "config.json").is_file():
            raise RewardError(f"{key}: no model there (neither config.json nor adapter_config.json)")
        architectures = AutoConfig.from_pretrained(folder, trust_remote_code=trust_remote_code).architectures or []
        if not adapters and not any(name.endswith("ForSequenceClassification") for name in architectures):
            raise RewardError(f"{key} is a {', '.join(architectures) or 'model'} without a trained reward head: "
                              "train one with `stage: rm` and use its output_dir (or its adapter as "
                              "`reward_model_adapters`)")
        model = AutoModelForSequenceClassification.from_pretrained(folder, **kwargs)
    for adapter in adapters:
        path = Path(adapter).expanduser()
        if not (path / "adapter_config.json").is_file():
            raise RewardError(f"`reward_model_adapters: {adapter}`: no adapter there (no adapter_config.json)")
        _reward_adapter_settings(path, f"`reward_model_adapters: {adapter}`")
        to_apply.append(str(path))
    keep_cpu_kernel_to_packable_layers(model)
    model = merge_adapters(model, to_apply)  # merged in order; kept beside quantized weights
    own_tokenizer = (folder / "tokenizer_config.json").is_file() or base is None
    tokenizer = AutoTokenizer.from_pretrained(folder if own_tokenizer else base, trust_remote_code=trust_remote_code,
                                              **TRANSFORMERS_FORMAT)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.pad_token_id  # the head reads the last non-pad token
    return model.eval().requires_grad_(False), tokenizer


def reward_model_reward(path: str, policy_tokenizer: Any, *, dtype: Any, device: Any,
                        trust_remote_code: bool = False, adapters: Sequence[str] = (),
                        loading: dict[str, Any] | None = None) -> Reward:
    """`path`'s reward model with `adapters` merged in, loaded once, as a reward; `loading`: more
    `from_pretrained` arguments (a quantized model is placed by its `device_map` and not moved)."""
    import torch

    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise RewardError(f"`reward_model: {path}`: no such folder")
    model, tokenizer = _load(folder, dtype, trust_remote_code, adapters, loading)
    if not loading:
        model.to(device)
    device = model.device
    same_ids = tokenizer.get_vocab() == policy_tokenizer.get_vocab()

    def reward_model(prompts: list[str], completions: list[Any], completion_ids: list[list[int]],
                     **_: Any) -> list[float | None]:
        if same_ids:
            prompt_ids = tokenizer(prompts, add_special_tokens=False)["input_ids"]
            rows = [list(p) + list(c) for p, c in zip(prompt_ids, completion_ids, strict=True)]
        else:
            texts = [p + (c if isinstance(c, str) else c[0]["content"]) for p, c in zip(prompts, completions,
                                                                                         strict=True)]
            rows = tokenizer(texts, add_special_tokens=False)["input_ids"]
        scores: list[float | None] = []
        for start in range(0, len(rows), SCORE_BATCH):
            batch = tokenizer.pad({"input_ids": rows[start:start + SCORE_BATCH]}, padding=True, padding_side="right",
                                  return_tensors="pt").to(device)
            with torch.inference_mode():
                scores += model(**batch).logits[:, 0].float().tolist()
        return scores

    return Reward(REWARD_MODEL_NAME, reward_model, (), f"reward model {folder}")
