"""The attention's rotary position embedding in one autograd function, its output in the compute dtype.

transformers' Llama-style attention rotates query and key with `q * cos + rotate_half(q) * sin` through
autograd. Under CPU autocast the projections' outputs are bf16 and cos/sin float32, so the rotation runs in
float32 (a negation, a concatenation, two products and a sum over the query and key states) and leaves float32
states that the attention function then casts back to bf16; its backward pass reverses each of those
operations, rounds both branches' gradients to bf16 and sums them there. On a SmolLM2 LoRA step of 4 x 512 tokens
on a 2-core CPU ~150 ms of elementwise work.

`rotate_in_one_function` gives each such attention of one model its own forward: the same projections and
attention call, with the rotation computed by `_Rotation`: the same float32 products and sums, in the same order
(the same values), written once in the dtype autocast would cast them to (what the attention function reads);
its backward pass computes the input's gradient in float32 from the closed form (g * cos, plus g's halves
swapped times sin) and rounds it once. Only attentions whose forward is spelled exactly as Llama's, Qwen2's or
Mistral's (their code is compared), in modules whose rotation is Llama's, are changed, and only a call with
gradients, without a cache and with cos/sin of the head's whole width takes the new path (generation keeps
transformers' forward; so does a rotation of part of a head). On SmolLM2's LoRA job, with model/rms_norm.py's
written-out norm, 1.05x (BENCHMARKS.md).
"""

import inspect
import sys
import types
from collections.abc import Callable
from typing import Any

import torch
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.models.llama import modeling_llama
from transformers.models.mistral.modeling_mistral import MistralAttention
from transformers.models.qwen2.modeling_qwen2 import Qwen2Attention

from lmforge.model.saved_recipes import same_code


class _Rotation(torch.autograd.Function):
    """states * cos + rotate_half(states) * sin in the promoted dtype's arithmetic, written in `dtype`."""

    @staticmethod
    def forward(ctx: Any, states: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                dtype: torch.dtype) -> torch.Tensor:
        half = states.shape[-1] // 2
        rotated = states * cos
        # rotate_half(x) = [-x2, x1]: x1 * cos1 + (-x2) * sin1 and x2 * cos2 + x1 * sin2, as transformers sums them
        rotated[..., :half] -= states[..., half:] * sin[..., :half]
        rotated[..., half:] += states[..., :half] * sin[..., half:]
        ctx.save_for_backward(cos, sin)
        ctx.states_dtype = states.dtype
        return rotated.to(dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:
        cos, sin = ctx.saved_tensors
        half = grad.shape[-1] // 2
        with torch.autocast(grad.device.type, enabled=False):
            grad_states = grad * cos
            grad_states[..., :half] += grad[..., half:] * sin[..., half:]
            grad_states[..., half:] -= grad[..., :half] * sin[..., :half]
        return grad_states.to(ctx.states_dtype), None, None, None


def _rotated(states: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)  # over the heads, as apply_rotary_pos_emb's unsqueeze_dim=1
    dtype = torch.promote_types(states.dtype, cos.dtype)
    if torch.is_autocast_enabled(states.device.type):  # the attention function's first operation casts to it
        dtype = torch.get_autocast_dtype(states.device.type)
    return _Rotation.apply(states, cos, sin, dtype)


def _no_window(module: Any) -> dict[str, Any]:
    return {}


# transformers' spellings of the attention forward, by the class that spells it, and what each passes the
# attention function beyond Llama's arguments
_SPELLINGS: dict[type, Callable[[Any], dict[str, Any]]] = {
    modeling_llama.LlamaAttention: _no_window,
    Qwen2Attention: lambda module: {"sliding_window": module.sliding_window},
    MistralAttention: lambda module: {"sliding_window": getattr(module.config, "sliding_window", None)},
}


def _rotates_as_llama(rotation: Callable[..., tuple[torch.Tensor, torch.Tensor]]) -> bool:
    """Whether a module's `apply_rotary_pos_emb` (a function, or transformers' hub-kernel wrapper of one) gives
    `_Rotation`'s values on a small example: a model spelled as Llama may rotate otherwise (interleaved, partial)."""
    generator = torch.Generator().manual_seed(0)
    states = torch.randn(1, 2, 3, 8, generator=generator)
    cos, sin = torch.randn(1, 3, 8, generator=generator), torch.randn(1, 3, 8, generator=generator)
    with torch.no_grad():
        return torch.equal(rotation(states, states, cos, sin)[0],
                           _Rotation.apply(states, cos.unsqueeze(1), sin.unsqueeze(1), torch.float32))


def _extra_arguments(module: torch.nn.Module) -> Callable[[Any], dict[str, Any]] | None:
    forward = inspect.unwrap(type(module).forward)
    for spelling, extra in _SPELLINGS.items():
        if same_code(forward, inspect.unwrap(spelling.forward)):
            return extra
    return None


def _forward(self: Any, hidden_states: torch.Tensor,
             position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
             attention_mask: torch.Tensor | None = None, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    caching = kwargs.get("cache") is not None or kwargs.get("past_key_values") is not None
    if (caching or position_embeddings is None or not torch.is_grad_enabled()
            # [batch, length, head_dim] as Llama's: a module's rotation may also rotate part of a head (cos narrower
            # than the head: dots3_note's audio tower), which the small example in `_rotates_as_llama` cannot see
            or position_embeddings[0].dim() != 3 or position_embeddings[0].shape[-1] != self.head_dim
            or any(part.requires_grad for part in position_embeddings)):  # `_Rotation` does not differentiate them
        return type(self).forward(self, hidden_states, position_embeddings, attention_mask, **kwargs)
    kwargs.pop("cache", None)
    kwargs.pop("past_key_values", None)
    input_shape = hidden_states.shape[:-1]
    hidden_shape = (*input_shape, -1, self.head_dim)
    query = self.q_proj(hidden_states).view(hidden_shape).transpose(1, 2)
    key = self.k_proj(hidden_states).view(hidden_shape).transpose(1, 2)
    value = self.v_proj(hidden_states).view(hidden_shape).transpose(1, 2)
    cos, sin = position_embeddings
    query, key = _rotated(query, cos, sin), _rotated(key, cos, sin)
    extra, eager = self.__dict__["_lmforge_attention"]
    attention = ALL_ATTENTION_FUNCTIONS.get_interface(self.config._attn_implementation, eager)
    output, weights = attention(self, query, key, value, attention_mask,
                                dropout=0.0 if not self.training else self.attention_dropout, scaling=self.scaling,
                                **extra(self), **kwargs)
    return self.o_proj(output.reshape(*input_shape, -1).contiguous()), weights


def rotate_in_one_function(model: torch.nn.Module) -> int:
    """Give every attention of `model` spelled as Llama's, Qwen2's or Mistral's, in a module whose rotation is
    Llama's, with no forward of its own, the forward above; returns how many."""
    changed = 0
    for module in model.modules():
        extra = None if "forward" in module.__dict__ else _extra_arguments(module)
        defining = vars(sys.modules[type(module).__module__]) if extra is not None else {}
        if ("eager_attention_forward" not in defining or "apply_rotary_pos_emb" not in defining
                or not _rotates_as_llama(defining["apply_rotary_pos_emb"])):
            continue
        module.__dict__["_lmforge_attention"] = (extra, defining["eager_attention_forward"])
        module.forward = types.MethodType(_forward, module)
        changed += 1
    return changed
