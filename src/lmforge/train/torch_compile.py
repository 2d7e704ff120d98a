"""`torch_compile_mode` and `torch_compile_backend` against what the installed torch offers, before anything loads
(torch refused an unknown one at the first step, as a KeyError or a RuntimeError out of the compiler)."""

import difflib

import torch

from lmforge.errors import ConfigError


def _closest(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=1)
    return f" (did you mean `{close[0]}`?)" if close else ""


def check_torch_compile(mode: str | None, backend: str | None) -> None:
    if mode is not None:
        from torch._inductor import list_mode_options  # what torch.compile's documentation points to for the modes

        modes = list(list_mode_options())
        if mode not in modes:
            raise ConfigError(f"`torch_compile_mode: {mode}` is not a torch.compile mode{_closest(mode, modes)}: "
                              f"choose from {', '.join(modes)}")
    if backend is not None:
        backends = torch.compiler.list_backends(exclude_tags=())
        if backend not in backends:
            raise ConfigError(f"`torch_compile_backend: {backend}` is not a torch.compile backend of torch "
                              f"{torch.__version__}{_closest(backend, backends)}: "
                              f"{', '.join(torch.compiler.list_backends())} (and the debugging ones)")
