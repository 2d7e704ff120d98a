"""The Trainer keys of transformers 4 that transformers 5 renamed or removed.

Configs written for transformers 4's Trainer use them, and so do LLaMA-Factory configs of that time (it passes the
Trainer's keys through). A renamed key is read under its new name (`evaluation_strategy` is `eval_strategy`); a
removed one is dropped where its value asked for nothing that transformers 5 does not do anyway, and refused with
what to write instead where it did.
"""

from collections.abc import Callable
from typing import Any

from lmforge.config.llamafactory import KEEP


def _same(value: Any) -> Any:
    return value


# old key -> (the key transformers 5 reads, how the value reads there; KEEP: nothing asked)
RENAMED: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "evaluation_strategy": ("eval_strategy", _same),
    "per_gpu_train_batch_size": ("per_device_train_batch_size", _same),
    "per_gpu_eval_batch_size": ("per_device_eval_batch_size", _same),
    "no_cuda": ("use_cpu", _same),
    "include_inputs_for_metrics": ("include_for_metrics", lambda on: ["inputs"] if on else KEEP),
    "push_to_hub_model_id": ("hub_model_id", _same),
    "push_to_hub_token": ("hub_token", _same),
    "torchdynamo": ("torch_compile_backend", _same),
    "adafactor": ("optim", lambda on: "adafactor" if on else KEEP),
    "group_by_length": ("train_sampling_strategy", lambda on: "group_by_length" if on else KEEP),
}

# old key -> (whether a value asks for nothing transformers 5 lacks, what to write instead otherwise)
REMOVED: dict[str, tuple[Callable[[Any], bool], str]] = {
    "logging_dir": (lambda _: False, "transformers 5 writes TensorBoard files to output_dir/runs/, or to the folder "
                    "the TENSORBOARD_LOGGING_DIR environment variable names: set that instead"),
    "save_safetensors": (bool, "transformers 5 always saves safetensors: remove the key"),
    "use_mps_device": (lambda _: True, ""),  # transformers 5 uses an Apple GPU by itself
    "jit_mode_eval": (lambda on: not on, "TorchScript evaluation is gone from transformers 5: remove the key "
                      "(`torch_compile: true` compiles the model instead)"),
    "fp16_opt_level": (lambda _: True, ""),  # apex's; transformers 5 has native mixed precision only
    "half_precision_backend": (lambda value: value in ("auto", "amp", "cpu_amp"),
                               "transformers 5 has no apex backend: remove the key (native mixed precision)"),
    "fp16_backend": (lambda value: value in ("auto", "amp", "cpu_amp"),
                     "transformers 5 has no apex backend: remove the key (native mixed precision)"),
    "tpu_num_cores": (lambda _: True, ""),  # read by the TPU launcher, not the Trainer
    "tpu_metrics_debug": (lambda _: True, ""),
    "past_index": (lambda index: index == -1, "transformers 5 no longer feeds a model's past memories back "
                   "(`past_index`): remove the key"),
    "use_legacy_prediction_loop": (lambda on: not on, "transformers 5 has one evaluation loop: remove the key"),
    "mp_parameters": (lambda value: not value, "SageMaker model parallelism is gone from transformers 5: remove "
                      "the key"),
    "ray_scope": (lambda _: True, ""),  # hyperparameter search only, which lmforge does not run
    "include_tokens_per_second": (lambda _: True, ""),  # lmforge's summary always reports tokens per second
    "push_to_hub_organization": (lambda _: False, "write the organisation into `hub_model_id: ORG/NAME`"),
    "fsdp_min_num_params": (lambda count: not count, "transformers 5 reads it inside `fsdp_config`: "
                            "`fsdp_config: {min_num_params: N}`"),
}


def translate_transformers4(raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """`raw` with transformers 4's renamed keys under their new names and its removed ones dropped; which key
    came from which (for messages), and problems (both names set; a removed key whose value asked for something)."""
    out: dict[str, Any] = {}
    came_from: dict[str, str] = {}
    problems: list[str] = []
    for key, value in raw.items():
        if key in RENAMED:
            target, translate = RENAMED[key]
            translated = translate(value)
            if translated is KEEP:
                continue
            if target in raw or target in out:
                problems.append(f"`{key}` (transformers 4's name) and `{target}` set the same thing: keep `{target}`")
                continue
            out[target], came_from[target] = translated, key
        elif key in REMOVED:
            asks_nothing, instead = REMOVED[key]
            if not asks_nothing(value):
                written = str(value).lower() if isinstance(value, bool) else value
                problems.append(f"`{key}: {written}` is a transformers 4 key that transformers 5 removed: {instead}")
        else:
            out[key] = value
    return out, came_from, problems
