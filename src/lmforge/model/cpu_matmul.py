"""fp32 linear layers on the CPU through oneDNN, where it is faster than torch's default BLAS.

torch computes an fp32 `linear` on the CPU with the BLAS it was built with (MKL in the PyPI wheels).
MKL chooses its kernels by CPU vendor: on AMD processors it leaves AVX-512 unused, so on a Zen 5
EPYC an fp32 product runs at ~95 GFLOP/s per core where oneDNN (also inside torch, dispatching on
the instruction set) reaches ~230. The arithmetic is the same IEEE fp32, summed in another order.

`cpu_matmul: auto` times both once per process on one product and, when oneDNN is clearly faster,
routes every plain `nn.Linear` of the model being loaded through it (`route_linear_layers`, which gives
those layer instances their own forward; the class and every other model are untouched): forward, and
the input and weight gradients backward (`grad_x = g W`, `grad_W = g^T x`). On CPUs where MKL is as fast
(Intel), on GPUs, under autocast and for other dtypes, nothing changes. `fused_lora` computes its folded
matmul with the kernel of the layer it folds (`is_routed`).
"""

import logging
import time
import types
from typing import Any

import torch
from torch.nn import functional

from lmforge.errors import ModelError

logger = logging.getLogger(__name__)

# `auto` picks oneDNN when its best time on the calibration product beats the BLAS's by this factor.
AUTO_MIN_SPEEDUP = 1.3
CALIBRATION_SHAPE = (1024, 512, 512)  # tokens x in x out: ~0.5 GFLOP, a few ms per product


class _Choice:
    """The last `choose` answer, remembered so that `auto` measures once per process. No layer reads it:
    a model's layers are routed, or not, when it is loaded."""

    use_onednn = False
    decided: str | None = None


def onednn_available() -> bool:
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


def _onednn_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


def _eligible(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> bool:
    """What oneDNN computes here: fp32 on the CPU outside autocast; anything else is torch's own."""
    return (x.device.type == "cpu" and x.dtype == weight.dtype == torch.float32
            and (bias is None or bias.dtype == torch.float32) and not torch.is_autocast_enabled("cpu"))


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, *,
           onednn: bool) -> torch.Tensor:
    """`functional.linear` (x W^T + b), through oneDNN when `onednn` and eligible; no autograd of its own."""
    if onednn and _eligible(x, weight, bias):
        return _onednn_linear(x, weight, bias)
    return functional.linear(x, weight, bias)


class _OneDnnLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return _onednn_linear(x, weight, bias)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        g2 = grad_out.reshape(-1, grad_out.shape[-1])
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = _onednn_linear(g2, weight.t()).view_as(x)
        if ctx.needs_input_grad[1]:
            x2 = x.reshape(-1, x.shape[-1])
            # g^T x; oneDNN copies its (transposed) first operand into place, so that is the narrower one
            if g2.shape[1] <= x2.shape[1]:
                grad_w = _onednn_linear(g2.t(), x2.t())
            else:
                grad_w = _onednn_linear(x2.t(), g2.t()).t().contiguous()
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = g2.sum(0)
        return grad_x, grad_w, grad_b


def _routed_forward(self: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    if not _eligible(x, self.weight, self.bias):
        return functional.linear(x, self.weight, self.bias)
    if torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad
                                    or (self.bias is not None and self.bias.requires_grad)):
        return _OneDnnLinear.apply(x, self.weight, self.bias)
    return _onednn_linear(x, self.weight, self.bias)


def _best_seconds(product: Any, repeats: int = 3) -> float:
    product()  # first call: oneDNN builds its kernel, MKL its buffers
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        product()
        best = min(best, time.perf_counter() - start)
    return best


def _calibrate() -> float:
    """How many times faster oneDNN computes the calibration product than torch's BLAS (best of 3 each)."""
    tokens, fan_in, fan_out = CALIBRATION_SHAPE
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(tokens, fan_in, generator=generator)
    weight = torch.randn(fan_out, fan_in, generator=generator)
    blas = _best_seconds(lambda: functional.linear(x, weight))
    onednn = _best_seconds(lambda: _onednn_linear(x, weight))
    return blas / onednn


def choose(setting: str) -> bool:
    """Decide once per process whether fp32 CPU linears use oneDNN (`auto`, `onednn` or `torch`)."""
    if _Choice.decided == setting:
        return _Choice.use_onednn
    if setting == "onednn" and not onednn_available():
        raise ModelError("`cpu_matmul: onednn` needs torch built with oneDNN (mkldnn), which this torch is not; "
                         "use `cpu_matmul: auto` or `torch`")
    if setting == "auto":
        use = onednn_available() and not torch.cuda.is_available()
        if use:
            try:
                speedup = _calibrate()
            except RuntimeError as err:  # an op this build cannot run here: torch's own path is always there
                logger.warning("cpu_matmul auto: oneDNN's linear failed on this machine (%s); using torch's BLAS",
                               err)
                speedup = 0.0
            use = speedup >= AUTO_MIN_SPEEDUP
            if speedup:
                logger.info("cpu_matmul auto: oneDNN computes fp32 products %.1fx as fast as torch's BLAS here; "
                            "using %s", speedup, "oneDNN" if use else "torch's BLAS")
    else:
        use = setting == "onednn"
    _Choice.use_onednn, _Choice.decided = use, setting
    return use


def is_routed(layer: torch.nn.Module) -> bool:
    """Whether `route_linear_layers` sent this layer through oneDNN."""
    forward = vars(layer).get("forward")
    return getattr(forward, "__func__", None) is _routed_forward


def route_linear_layers(model: torch.nn.Module, setting: str) -> int:
    """Send every plain `nn.Linear` of `model` through the chosen CPU kernel; returns how many were routed
    (0 when torch's own BLAS is the choice). Only these instances' forward differs: their class, parameters
    and state dicts, and every other model, are unchanged."""
    if not choose(setting):
        return 0
    count = 0
    for module in model.modules():
        if type(module) is torch.nn.Linear:
            module.forward = types.MethodType(_routed_forward, module)
            count += 1
    logger.info("cpu_matmul: %d linear layers computed with oneDNN on the CPU", count)
    return count
