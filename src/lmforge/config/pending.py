"""LLaMA-Factory keys that lmforge recognises but does not implement yet.

A config using one fails with the feature's name instead of a confusing "unknown key".
"""

PENDING_KEYS: dict[str, str] = {
    **dict.fromkeys(["dpo_label_smoothing", "reward_model", "ppo_epochs", "ppo_target"], "PPO and extra DPO options"),
    **dict.fromkeys(["buffer_size"], "advanced data options"),
    **dict.fromkeys(["export_quantization_dataset", "export_device",
                     "export_hub_model_id"], "GPTQ export and pushing exports to the hub"),
    **dict.fromkeys(["use_galore", "use_apollo", "use_badam", "use_adam_mini", "use_muon", "use_llama_pro",
                     "mixture_of_depths", "shift_attn", "use_unsloth"],
                    "model and optimizer extras"),
    **dict.fromkeys(["task", "task_dir", "lang", "n_shot", "save_dir", "batch_size"],
                    "benchmark evaluation (LLaMA-Factory's `eval` command)"),
    **dict.fromkeys(["ray_run_name", "ray_storage_path", "ray_storage_filesystem", "ray_num_workers",
                     "resources_per_worker", "placement_strategy", "ray_init_kwargs"], "launching on Ray"),
}
