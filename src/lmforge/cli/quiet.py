"""Output a user cannot act on is hidden during a command; `lmforge --verbose ...` shows it.

Hidden: library progress bars and info logs, tqdm bars written into a log file (stderr not a terminal),
DeepSpeed's "Setting accelerator to CPU" notice, bitsandbytes' offline optional-kernel notices and its 8-bit
matmul's note at every call that it computes in float16,
deprecation notices about calls inside the libraries
(`all_gather_into_tensor` and `reduce_scatter_tensor` from DeepSpeed's ZeRO-3, DeepSpeed 0.16's `torch.jit.script`,
transformers' `past_key_values` renaming, trl switching checkpointing off around its rollouts and reference
passes by transformers' old names),
torch's note that a CPU machine has no CUDA while DeepSpeed builds its CPU ops, and what accelerate
says about settings it chose itself (the CPU threads of a process group, DeepSpeed's gradient accumulation
where the Trainer, which accumulates itself, gave accelerate 1). Real warnings stay. Everything here is the
standard logging/warnings machinery of this process (and the training workers it launches, which run the same
command): no library is changed.
"""

import logging
import os
import re
import sys
import warnings

_state = {"verbose": False}

# (message regex, category) of deprecation notices about calls the libraries make among themselves, and of
# accelerate's note that it set a process group's CPU threads (to the cores per process: what torch uses anyway)
LIBRARY_WARNINGS = (
    (r"`torch\.distributed\.all_gather_into_tensor` is deprecated", FutureWarning),
    (r"`torch\.distributed\.reduce_scatter_tensor` is deprecated", FutureWarning),
    (r"`past_key_values` is deprecated", FutureWarning),
    (r"`gradient_checkpointing_(enable|disable)` is deprecated", FutureWarning),  # trl's checkpointing switch
    (r"`torch\.jit\.script` is deprecated", FutureWarning),  # DeepSpeed 0.16 scripts functions with it
    (r"OMP_NUM_THREADS/MKL_NUM_THREADS unset, we set it at", UserWarning),
)
# (logger, message start) of notices logged while a library loads that no user action changes: DeepSpeed picking
# the CPU; bitsandbytes (on CPUs with AVX-512-BF16) trying to fetch an optional kernel from the hub when the hub is
# offline, and the `kernels` package saying it skips its check for that same fetch; torch finding no CUDA when
# DeepSpeed builds its shared-memory communication op on a CPU machine; accelerate taking the DeepSpeed config's
# gradient accumulation over the 1 the Trainer gives it (the Trainer accumulates itself, with the config's value);
# bitsandbytes' 8-bit matmul saying, at every call, that it casts float32 inputs to float16 (how it computes)
LIBRARY_NOTICES = (
    ("DeepSpeed", "Setting accelerator to CPU"),
    ("DeepSpeed", "Setting ds_accelerator to cpu"),  # the same notice, as DeepSpeed 0.16 words it
    ("torch.utils.cpp_extension", "No CUDA runtime is found"),
    ("bitsandbytes.backends.cpu.ops", "Failed to load CPU gemm_4bit_forward"),
    ("kernels._internals.hf_hub", "Skipping publisher trust check"),
    ("accelerate.accelerator", "Gradient accumulation steps mismatch"),
    ("bitsandbytes.autograd._functions", "MatMul8bitLt: inputs will be cast"),
)


class _DropMessage(logging.Filter):
    def __init__(self, start: str) -> None:
        super().__init__()
        self.start = start

    def filter(self, record: logging.LogRecord) -> bool:
        # after accelerate's "[RANK n] " prefix, where its logger adds one
        return not re.sub(r"^\[RANK \d+\] ", "", record.getMessage()).startswith(self.start)


def hide_unactionable_output(verbose: bool) -> None:
    """Set once per command, before the libraries load (DeepSpeed's notice comes at its import)."""
    _state["verbose"] = verbose
    if verbose:
        return
    for message, category in LIBRARY_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    for logger, start in LIBRARY_NOTICES:
        logging.getLogger(logger).addFilter(_DropMessage(start))
    if not sys.stderr.isatty():  # a log file: a bar's redraws would be thousands of lines of noise
        os.environ.setdefault("TQDM_DISABLE", "1")


def is_verbose() -> bool:
    return _state["verbose"]


def quiet_libraries() -> None:
    """Library chatter (progress bars, info logs) is not the user's concern during a command."""
    if _state["verbose"]:
        return
    import transformers

    transformers.utils.logging.set_verbosity_warning()
    transformers.utils.logging.disable_progress_bar()
    if "datasets" in sys.modules:
        sys.modules["datasets"].disable_progress_bars()
    else:  # read when datasets loads: a command that never reads a dataset (chat, api) does not import it
        os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
