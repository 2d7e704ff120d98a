"""Tensors the backward pass keeps, stored as the way to make them again from tensors it keeps anyway.

A training step's backward pass keeps some tensors that are cheap to make again: a weight's half-precision
copy under autocast (a cast of the float32 weight), RMSNorm's normalised input (its input times the scale,
both kept), a gated MLP's product (from `gate(x)` and `up(x)`, both kept). `remade_in_backward(tensor, make)`
is a context: while it is open, autograd stores a saved tensor that is `tensor`, or a view of it, as `make`
and the view's geometry (`torch.autograd.graph.saved_tensors_hooks`), and the backward pass calls `make()`
when it reads it. `make` runs the same operations on the same inputs, so the numbers are the same.

The contexts of one thread share one pack function that looks through all of them, innermost first: a
context inside another (a linear layer's weight copy, inside the MLP product it multiplies) still stores the
outer one's tensor as its recipe, although autograd only calls the innermost hooks.

Not inside activation checkpointing: the innermost hooks decide, so checkpointing's own, which drop what a
checkpointed layer saves, would not see the tensors saved inside the context.
"""

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import torch


class _Recipe(NamedTuple):
    make: Callable[[], torch.Tensor]
    size: torch.Size
    stride: tuple[int, ...]
    offset: int


class _Open(threading.local):
    def __init__(self) -> None:
        self.contexts: list[tuple[int, torch.dtype, Callable[[], torch.Tensor]]] = []


_OPEN = _Open()


def _pack(tensor: torch.Tensor) -> Any:
    if tensor.layout != torch.strided:
        return tensor
    storage = tensor.untyped_storage().data_ptr()
    for source, dtype, make in reversed(_OPEN.contexts):
        if storage == source and tensor.dtype == dtype:
            return _Recipe(make, tensor.size(), tensor.stride(), tensor.storage_offset())
    return tensor


def _unpack(packed: Any) -> torch.Tensor:
    if not isinstance(packed, _Recipe):
        return packed
    with torch.no_grad():
        return packed.make().as_strided(packed.size, packed.stride, packed.offset)


@contextlib.contextmanager
def remade_in_backward(tensor: torch.Tensor, make: Callable[[], torch.Tensor]) -> Iterator[None]:
    """Within the context, a saved `tensor` (or view of it) is kept as `make`, which returns its values in a
    fresh contiguous tensor; a tensor that is not itself contiguous from its storage's start is kept as it is."""
    # anything else is kept as it is: empty tensors share data pointer 0, and `make()`'s layout must match
    if tensor.numel() == 0 or tensor.storage_offset() != 0 or not tensor.is_contiguous():
        yield
        return
    _OPEN.contexts.append((tensor.untyped_storage().data_ptr(), tensor.dtype, make))
    try:
        with torch.autograd.graph.saved_tensors_hooks(_pack, _unpack):
            yield
    finally:
        _OPEN.contexts.pop()


def same_code(function: Any, reference: Any) -> bool:
    """Whether `function` is spelled exactly as `reference` (bytecode, names, locals): a module's forward is only
    replaced by an equivalent one when it is the expression that one was written against."""
    code, ref = getattr(function, "__code__", None), reference.__code__
    return code is not None and (code.co_code, code.co_names, code.co_varnames) == (ref.co_code, ref.co_names,
                                                                                     ref.co_varnames)
