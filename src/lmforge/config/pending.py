"""LLaMA-Factory keys that lmforge recognises but does not implement yet.

A config using one fails with the feature's name instead of a confusing "unknown key".
"""

PENDING_KEYS: dict[str, str] = {
    **dict.fromkeys(["quantization_bit", "quantization_method", "double_quantization", "quantization_type"],
                    "QLoRA / quantized training"),
    **dict.fromkeys(["pref_beta", "pref_ftx", "pref_loss", "simpo_gamma", "dpo_label_smoothing",
                     "kto_chosen_weight", "kto_rejected_weight", "ref_model", "reward_model",
                     "ppo_epochs", "ppo_target"], "preference and reward stages"),
    **dict.fromkeys(["use_dora", "use_rslora", "pissa_init", "pissa_iter", "pissa_convert",
                     "loraplus_lr_ratio", "additional_target", "create_new_adapter", "lora_dropout_rank",
                     "freeze_trainable_layers", "freeze_trainable_modules", "freeze_extra_modules"],
                    "adapter variants (DoRA, rsLoRA, PiSSA, LoRA+, freeze)"),
    **dict.fromkeys(["freeze_vision_tower", "freeze_multi_modal_projector", "freeze_language_model"],
                    "multimodal training"),
    **dict.fromkeys(["buffer_size", "tool_format"], "advanced data options"),
    **dict.fromkeys(["export_quantization_bit", "export_quantization_dataset", "export_device",
                     "export_hub_model_id"], "quantized export"),
    **dict.fromkeys(["infer_backend", "vllm_maxlen", "vllm_gpu_util"], "the vLLM backend"),
    **dict.fromkeys(["use_galore", "use_apollo", "use_badam", "use_adam_mini", "use_muon", "use_llama_pro",
                     "mixture_of_depths", "enable_liger_kernel", "flash_attn", "shift_attn", "rope_scaling",
                     "use_unsloth", "train_from_scratch", "add_tokens", "add_special_tokens"],
                    "model and optimizer extras"),
    **dict.fromkeys(["predict_with_generate", "compute_accuracy"], "prediction and evaluation metrics"),
    **dict.fromkeys(["task", "task_dir", "lang", "n_shot", "save_dir", "batch_size"],
                    "benchmark evaluation (LLaMA-Factory's `eval` command)"),
    **dict.fromkeys(["ray_run_name", "ray_storage_path", "ray_storage_filesystem", "ray_num_workers",
                     "resources_per_worker", "placement_strategy", "ray_init_kwargs"], "launching on Ray"),
}
