"""The profiler group: LLaMA-Factory's torch profiler keys (traces of chosen training steps)."""

from pydantic import Field, field_validator

from lmforge.config.groups_base import Group, split_list


class ProfilerGroup(Group):
    enable_torch_profiler: bool = Field(
        False, description="Record torch.profiler traces (Chrome / TensorBoard JSON) of some training steps.")
    profiler_output_dir: str | None = Field(
        None, description="Folder of the traces, one `rank_N` folder per process; default output_dir/profiler.")
    profiler_wait_steps: int = Field(1, ge=0, description="Steps skipped at the start of each profiling cycle.")
    profiler_warmup_steps: int = Field(1, ge=0, description="Steps the profiler warms up on per cycle (not kept).")
    profiler_active_steps: int = Field(1, ge=1, description="Steps recorded per cycle.")
    profiler_repeat: int = Field(1, ge=0, description="Profiling cycles; 0 repeats until training ends.")
    profiler_record_shapes: bool = Field(True, description="Record the input shapes of each operator.")
    profiler_profile_memory: bool = Field(True, description="Record tensor memory allocations.")
    profiler_with_stack: bool = Field(True, description="Record the Python stack of each operator.")
    profile_modules: list[str] | None = Field(
        None, description="Module name patterns (comma-separated, fnmatch: `*.layers.0.self_attn,*.layers.*.mlp`) "
                          "whose forward and backward time is printed at every logging step (CUDA events on a GPU, "
                          "the wall clock on the CPU).")

    _split = field_validator("profile_modules", mode="before")(split_list)
