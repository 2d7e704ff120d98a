"""Tensors the backward pass keeps, stored as the way to make them again from tensors it keeps anyway.

A training step's backward pass keeps some tensors that are cheap to make again: a weight's half-precision
copy under autocast (a cast of the float32 weight), RMSNorm's normalised input (its input times the scale,
both kept), a gated MLP's product (from `gate(x)` and `up(x)`, both kept). `remade_in_backward(tensor, make)`
is a context: while it is open, autograd stores a saved tensor that is `tensor`, or a view of it, as `make`
and the view's geometry (`torch.autograd.graph.saved_tensors_hooks`), and the backward pass calls `make()`
when it reads it. `make` runs the same operations on the same inputs, so the numbers are the same.

The contexts of one thread share one pack function that looks through all of them, innermost first: a
context inside another (a linear layer's weight copy, inside the MLP product it multiplies) still stores the
outer one's tensor as its recipe, although autograd only calls the innermost hooks. A tensor saved later, by
calls outside the context that made it, is remembered instead (`remember_recipe`, for as long as it lives
unmodified): any context then stores it as its recipe, and `recipe_of` lets a tensor derived from it (the
half-precision copy of an RMSNorm's output that q, k and v read) remember a recipe in turn.

Not inside activation checkpointing: the innermost hooks decide, so checkpointing's own, which drop what a
checkpointed layer saves, would not see the tensors saved inside the context.
"""

import contextlib
import threading
import weakref
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
    remembered = _remembered(storage)
    if remembered is not None and remembered[0].dtype == tensor.dtype:
        return _Recipe(remembered[1], tensor.size(), tensor.stride(), tensor.storage_offset())
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


class _Known(NamedTuple):
    tensor: weakref.ref
    version: int
    make: Callable[[], torch.Tensor]


_KNOWN: dict[int, _Known] = {}  # by storage address, for as long as the tensor lives


def remember_recipe(tensor: torch.Tensor, make: Callable[[], torch.Tensor]) -> None:
    """Let every context above, not only one open around the call that saves it, keep `tensor` (or a view of it)
    as `make` while `tensor` lives unmodified; `recipe_of` hands `make` on to whoever derives a tensor from it
    (shared_casts.py's half-precision copy of a norm's output, saved by the projections that read it)."""
    if tensor.numel() == 0 or tensor.storage_offset() != 0 or not tensor.is_contiguous():
        return
    storage = tensor.untyped_storage().data_ptr()

    def forget(reference: weakref.ref) -> None:
        known = _KNOWN.get(storage)
        if known is not None and known.tensor is reference:
            del _KNOWN[storage]

    _KNOWN[storage] = _Known(weakref.ref(tensor, forget), tensor._version, make)


def _remembered(storage: int) -> tuple[torch.Tensor, Callable[[], torch.Tensor]] | None:
    """(tensor, make) remembered for this storage address, while that tensor lives unmodified."""
    known = _KNOWN.get(storage)
    tensor = known.tensor() if known is not None else None
    if tensor is None or tensor._version != known.version:
        return None
    return tensor, known.make


def recipe_of(tensor: torch.Tensor) -> Callable[[], torch.Tensor] | None:
    """The `make` remembered for this tensor (or a whole view of it, as `hidden[:, 0:]`), unmodified since; else
    None."""
    remembered = _remembered(tensor.untyped_storage().data_ptr()) if tensor.layout == torch.strided else None
    if remembered is None:
        return None
    source, make = remembered
    whole = (tensor.dtype, tensor.size(), tensor.stride(), tensor.storage_offset()) == (
        source.dtype, source.size(), source.stride(), 0)
    return make if whole else None


def same_code(function: Any, reference: Any) -> bool:
    """Whether `function` is spelled exactly as `reference` (bytecode, names, locals): a module's forward is only
    replaced by an equivalent one when it is the expression that one was written against."""
    code, ref = getattr(function, "__code__", None), reference.__code__
    return code is not None and (code.co_code, code.co_names, code.co_varnames) == (ref.co_code, ref.co_names,
                                                                                     ref.co_varnames)
