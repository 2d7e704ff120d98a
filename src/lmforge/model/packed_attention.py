"""Attention of packed rows computed within each packed sequence ("varlen" attention) with SDPA.

A packed row holds several examples whose position ids restart at 0. transformers turns that into
a block-diagonal mask, and masked SDPA then scores every query against every key of the row: on a
512-token row of three examples about four times the work of attending inside each example
(fwd+bwd on the benchmark's shapes: 102 ms masked, 25 ms per sequence). flash-attention's varlen
kernels avoid that waste on CUDA; this does the same everywhere SDPA runs, CPU included.

On the CPU (no dropout) the per-sequence calls go straight to ATen's flash-attention kernel inside one
autograd function, writing each sequence's output and gradients into whole tensors: slicing the
row's q/k/v for SDPA instead makes autograd zero-fill and accumulate a full-size gradient per slice
(a sixth of the attention's time on the benchmark's rows). Same kernel, same numbers. A training call
whose sequences are all short (at most `CPU_MATH_MAX_KEYS`: a `padding_free` batch of chat examples) puts
them in a padded batch of their own instead and attends once with a causal mask (a sequence's padding comes
after it, where the mask hides it; `_ShortSequencesAttention`: SDPA's math kernel's float32 arithmetic, written
out with its backward): per-sequence calls would pay the kernels' fixed costs once per sequence and layer (on the
quickstart's batches twice the operators of the padded step).

The trainer passes the sequence boundaries (`packed_sequence_kwargs`) under transformers' own
names for them (`cu_seq_lens_q`, ... as flash-attention uses), and the model forwards them to its
attention function. `packed_sdpa_attention` is registered with transformers' `AttentionInterface` under
its own name, `PACKED_SDPA` (with SDPA's mask function under the same name), and `use_packed_attention`
selects it on one model: "sdpa" stays transformers' own for every other model of the process. Without
those keys, or for non-causal or cached attention, it is transformers' SDPA, where one choice is lmforge's:
on the CPU, a training call (gradients on) over at most `CPU_MATH_MAX_KEYS` keys runs SDPA's math kernel
instead of the CPU flash kernel, whose backward pays a fixed cost per block that short rows never earn
back. fwd+bwd, bf16, SmolLM2's heads (9 query, 3 key/value, dim 64), masked, 8 rows, AMD EPYC with
AVX-512-BF16 at 2 threads: 64 keys 8.2 ms flash, 4.9 ms math; 128 keys 16.4 / 11.2 ms; 192 keys 21.3 /
23.0 ms; 512 keys x 4 rows 66 / 110 ms. Forward alone (evaluation, generation) flash is faster at every
length and keeps it. Both kernels compute the same attention (fp32 accumulation).
"""

import contextlib
import functools
import itertools
import math
from typing import Any

import torch
from packaging.version import Version
from torch.nn import functional
from torch.nn.attention import SDPBackend, sdpa_kernel
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

# The name the model's config selects. It contains "sdpa" so that transformers checks the model can run
# SDPA before selecting it (`PreTrainedModel.get_correct_attn_implementation`).
PACKED_SDPA = "lmforge_packed_sdpa"
# Key lengths up to which a CPU training call runs SDPA's math kernel (measured crossover: ~176 keys).
CPU_MATH_MAX_KEYS = 128
# Sequence lengths up to which the CPU flash kernel's backward of a half-precision sequence runs in float32 instead
# (see `_CpuFlashPerSequence`).
CPU_FLASH_FLOAT32_BACKWARD_MAX_KEYS = 384
# The CPU flash kernel reads grouped key/value heads (fewer than the query's) from torch 2.9 on; torch 2.6-2.8's reads
# past them and returns garbage without an error, so there `_CpuFlashPerSequence` repeats them per query head.
CPU_FLASH_READS_GROUPED_HEADS = Version(torch.__version__).release >= (2, 9)


def packed_sequence_kwargs(position_ids: torch.Tensor) -> dict[str, Any]:
    """Cumulative sequence starts over the flattened batch: a sequence starts where positions restart
    (and at every row). Padding at the end of a row must continue its own positions (the collator does)."""
    flat = position_ids.reshape(-1)
    starts = torch.ones_like(flat, dtype=torch.bool)
    starts[1:] = flat[1:] != flat[:-1] + 1
    starts[:: position_ids.shape[-1]] = True
    end = torch.tensor([flat.numel()], device=flat.device)  # the trainer calls this on the model's device
    cu = torch.cat([starts.nonzero().flatten(), end]).to(torch.int32)
    longest = int((cu[1:] - cu[:-1]).max())
    return {"cu_seq_lens_q": cu, "cu_seq_lens_k": cu, "max_length_q": longest, "max_length_k": longest}


def _flat(states: torch.Tensor) -> torch.Tensor:
    """[B, H, L, D] -> [1, H, B*L, D]: the batch's rows one after another."""
    batch, heads, length, dim = states.shape
    return states.transpose(0, 1).reshape(1, heads, batch * length, dim)


def _unflat(states: torch.Tensor, batch: int) -> torch.Tensor:
    """[1, H, B*L, D] -> [B, H, L, D] (a view), the inverse of `_flat`."""
    _, heads, total, dim = states.shape
    return states.reshape(heads, batch, total // batch, dim).transpose(0, 1)


class _CpuFlashPerSequence(torch.autograd.Function):
    """Causal attention within each sequence of the flattened rows, output as [B, L, H, D]. A half-precision sequence
    of at most `CPU_FLASH_FLOAT32_BACKWARD_MAX_KEYS` keys takes the kernel's float32 backward on float32 copies: its
    half-precision backward pays a fixed cost the float32 one does not (SmolLM2's heads, Intel Xeon with AMX, 2
    threads, casts included: 64 keys 0.95 vs 0.28 ms, 128 keys 2.02 / 0.75, 256 keys 2.84 / 2.30, 384 keys 4.80 /
    4.79, 512 keys 7.56 / 8.61), and its gradients are the closer to exact of the two (test)."""

    @staticmethod
    def forward(ctx: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, bounds: list[int],
                scaling: float | None) -> torch.Tensor:
        q, k, v = _flat(query), _flat(key), _flat(value)
        ctx.repeats = 1 if CPU_FLASH_READS_GROUPED_HEADS else query.shape[1] // key.shape[1]
        if ctx.repeats > 1:
            k, v = k.repeat_interleave(ctx.repeats, dim=1), v.repeat_interleave(ctx.repeats, dim=1)
        out = torch.empty_like(q)
        logsumexps = []
        for start, end in itertools.pairwise(bounds):
            piece, logsumexp = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
                q[:, :, start:end], k[:, :, start:end], v[:, :, start:end], 0.0, True, scale=scaling)
            out[:, :, start:end] = piece
            logsumexps.append(logsumexp)
        ctx.save_for_backward(q, k, v, out, *logsumexps)
        ctx.bounds, ctx.scaling, ctx.batch = bounds, scaling, query.shape[0]
        heads, total, dim = out.shape[1:]
        return out.reshape(heads, ctx.batch, total // ctx.batch, dim).permute(1, 2, 0, 3)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        q, k, v, out, *logsumexps = ctx.saved_tensors
        grad = grad_out.permute(2, 0, 1, 3).reshape(out.shape)  # [B, L, H, D] -> [1, H, B*L, D]
        grad_q, grad_k, grad_v = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
        half = q.dtype in (torch.bfloat16, torch.float16)
        for (start, end), logsumexp in zip(itertools.pairwise(ctx.bounds), logsumexps, strict=True):
            part = slice(start, end)
            inputs = [states[:, :, part] for states in (grad, q, k, v, out)]
            if half and end - start <= CPU_FLASH_FLOAT32_BACKWARD_MAX_KEYS:
                inputs = [states.float() for states in inputs]
            grad_q[:, :, part], grad_k[:, :, part], grad_v[:, :, part] = (
                torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward(
                    *inputs, logsumexp, 0.0, True, scale=ctx.scaling))
        if ctx.repeats > 1:  # each key/value head's gradient: the sum over the query heads it was repeated for
            heads, total, dim = grad_k.shape[1:]
            grad_k, grad_v = (grad.view(1, heads // ctx.repeats, ctx.repeats, total, dim).sum(2)
                              for grad in (grad_k, grad_v))
        return _unflat(grad_q, ctx.batch), _unflat(grad_k, ctx.batch), _unflat(grad_v, ctx.batch), None, None


@functools.lru_cache(maxsize=8)
def _padded_layout(bounds: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int, int]:
    """For sequences at `bounds` of a flattened row of T tokens, padded into `count` sequences of `longest` slots:
    each slot's token (T, a zero row appended below the T tokens, for a padding slot), the same with a padding
    slot reading the last token instead (its value is never used: see `_ShortSequencesAttention`), each token's
    slot, `count` and `longest`."""
    starts, ends = torch.tensor(bounds[:-1]), torch.tensor(bounds[1:])
    longest = int((ends - starts).max())
    slots = torch.arange(longest)
    real = slots < (ends - starts)[:, None]
    token = torch.where(real, starts[:, None] + slots, bounds[-1]).flatten()
    return token, token.clamp(max=bounds[-1] - 1), real.flatten().nonzero().flatten(), len(starts), longest


@functools.lru_cache(maxsize=8)
def _grouped_causal_bias(length: int, groups: int) -> torch.Tensor:
    """[groups * length, length]: 0 on and below the diagonal, -inf above, once per query head of a group."""
    hidden = torch.ones(length, length, dtype=torch.bool).triu_(1)
    return torch.zeros(length, length).masked_fill_(hidden, float("-inf")).repeat(groups, 1)


def _dense(states: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """`states` as a contiguous tensor of `dtype`: the cast and the layout change in one pass."""
    return torch.empty(states.shape, dtype=dtype, device=states.device).copy_(states)


class _ShortSequencesAttention(torch.autograd.Function):
    """Causal attention within each sequence of a flattened row, the sequences padded into a batch of their own, in
    float32 for half-precision inputs as SDPA's math kernel computes it. Written out with its backward because on
    short rows the operators' fixed cost is most of the time: 164 ATen calls a layer, forward and backward, where
    the same computation through autograd made 371 (quickstart rows). The query heads that share a key/value head
    are stacked as rows of one product, so key and value are never repeated. A padding slot's query reads a real
    token (finite, its output is dropped) and its gradient reads zeros, so it adds nothing to any gradient; its key
    is hidden by the causal mask."""

    @staticmethod
    def forward(ctx: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, bounds: list[int],
                scaling: float | None) -> torch.Tensor:
        batch, heads, length, dim = query.shape
        kv_heads = key.shape[1]
        groups = heads // kv_heads
        layout = _padded_layout(tuple(bounds))
        _, token, slot, count, longest = layout
        compute = torch.float32 if query.dtype in (torch.bfloat16, torch.float16) else query.dtype
        scale = scaling if scaling is not None else 1.0 / math.sqrt(dim)
        with torch.autocast(query.device.type, enabled=False):
            rows = query.transpose(1, 2).reshape(batch * length, heads, dim).index_select(0, token)
            grouped = rows.view(count, longest, kv_heads, groups, dim).permute(2, 0, 3, 1, 4)
            q = _dense(grouped, compute).view(kv_heads * count, groups * longest, dim)

            def padded(states: torch.Tensor) -> torch.Tensor:  # [B, h, L, D] -> [h * count, longest, D]
                flat = states.to(compute).transpose(0, 1).reshape(kv_heads, batch * length, dim)
                return flat.index_select(1, token).view(kv_heads * count, longest, dim)

            k, v = padded(key), padded(value)
            bias = _grouped_causal_bias(longest, groups).to(query.device, compute)
            probs = torch.softmax(torch.baddbmm(bias, q, k.transpose(1, 2), alpha=scale), -1)
            out = torch.bmm(probs, v).view(kv_heads, count, groups, longest, dim).permute(1, 3, 0, 2, 4)
            out = _dense(out, query.dtype).view(count * longest, heads, dim)
        ctx.save_for_backward(q, k, v, probs)
        ctx.layout, ctx.dtype, ctx.scale, ctx.shape = layout, query.dtype, scale, (batch, length, heads, kv_heads, dim)
        return out.index_select(0, slot).view(batch, length, heads, dim)  # the layout attention functions return

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        q, k, v, probs = ctx.saved_tensors
        token, _, slot, count, longest = ctx.layout
        batch, length, heads, kv_heads, dim = ctx.shape
        groups = heads // kv_heads
        with torch.autocast(grad_out.device.type, enabled=False):
            rows = torch.cat([grad_out.reshape(batch * length, heads, dim), grad_out.new_zeros(1, heads, dim)])
            grouped = rows.index_select(0, token).view(count, longest, kv_heads, groups, dim).permute(2, 0, 3, 1, 4)
            grad = _dense(grouped, q.dtype).view(q.shape)
            grad_v = torch.bmm(probs.transpose(1, 2), grad)
            grad_scores = torch._softmax_backward_data(torch.bmm(grad, v.transpose(1, 2)), probs, -1, q.dtype)
            grad_q = torch.bmm(grad_scores, k).mul_(ctx.scale)
            grad_k = torch.bmm(grad_scores.transpose(1, 2), q).mul_(ctx.scale)

        def unpadded(padded: torch.Tensor, shape: tuple[int, ...], order: tuple[int, ...]) -> torch.Tensor:
            tokens_first = padded.view(shape).permute(order)  # -> [count, longest, heads..., D]
            dense = _dense(tokens_first, ctx.dtype).view(count * longest, -1, dim)
            return dense.index_select(0, slot).view(batch, length, -1, dim).transpose(1, 2)

        return (unpadded(grad_q, (kv_heads, count, groups, longest, dim), (1, 3, 0, 2, 4)),
                unpadded(grad_k, (kv_heads, count, longest, dim), (1, 2, 0, 3)),
                unpadded(grad_v, (kv_heads, count, longest, dim), (1, 2, 0, 3)), None, None)


def _per_sequence(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, bounds: list[int],
                  dropout: float, scaling: float | None) -> torch.Tensor:
    if torch.is_autocast_enabled(query.device.type):
        # what SDPA does under autocast; the CPU flash op called directly is not cast, and its inputs differ
        # (RoPE leaves query and key in the fp32 of the residual stream, value comes from a bf16 product)
        dtype = torch.get_autocast_dtype(query.device.type)
        query, key, value = query.to(dtype), key.to(dtype), value.to(dtype)
    if query.device.type == "cpu" and not dropout:
        training = torch.is_grad_enabled() and query.requires_grad
        if training and max(b - a for a, b in itertools.pairwise(bounds)) <= CPU_MATH_MAX_KEYS:
            return _ShortSequencesAttention.apply(query, key, value, bounds, scaling)
        return _CpuFlashPerSequence.apply(query, key, value, bounds, scaling)
    batch, heads, length, dim = query.shape
    q, k, v = _flat(query), _flat(key), _flat(value)
    gqa = key.shape[1] != heads
    outputs = [functional.scaled_dot_product_attention(
        q[:, :, start:end], k[:, :, start:end], v[:, :, start:end], is_causal=True, dropout_p=dropout,
        scale=scaling, enable_gqa=gqa) for start, end in itertools.pairwise(bounds)]
    # [1, H, B*L, D] -> [B, L, H, D], the layout attention functions return
    return torch.cat(outputs, dim=2).reshape(heads, batch, length, dim).permute(1, 2, 0, 3).contiguous()


def packed_sdpa_attention(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                          attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                          **kwargs: Any) -> tuple[torch.Tensor, None]:
    bounds = kwargs.get("cu_seq_lens_q")
    window = kwargs.get("sliding_window")
    usable = (bounds is not None and kwargs.get("is_causal", getattr(module, "is_causal", True))
              and query.shape[2] == key.shape[2] and kwargs.get("softcap") is None
              and (window is None or kwargs.get("max_length_q", 0) <= window))
    if not usable:
        short_cpu_training = (query.device.type == "cpu" and key.shape[2] <= CPU_MATH_MAX_KEYS
                              and torch.is_grad_enabled() and query.requires_grad)
        with sdpa_kernel(SDPBackend.MATH) if short_cpu_training else contextlib.nullcontext():
            return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                          scaling=scaling, **kwargs)
    return _per_sequence(query, key, value, bounds.tolist(), dropout, scaling), None


def register() -> None:
    """Add `PACKED_SDPA` to transformers' attention functions, with SDPA's masks (the fallback above takes
    them; without a mask function transformers would build no mask at all). Idempotent; no name changes."""
    AttentionInterface.register(PACKED_SDPA, packed_sdpa_attention)
    AttentionMaskInterface.register(PACKED_SDPA, sdpa_mask)


def _where_sdpa(config: Any) -> dict[str, Any]:
    """`set_attn_implementation`'s nested form: `PACKED_SDPA` for each (sub-)model that uses "sdpa", the
    others as they are (a vision tower on eager stays eager)."""
    own = config._attn_implementation
    wanted: dict[str, Any] = {"": PACKED_SDPA if own == "sdpa" else own}
    for key in config.sub_configs:
        if (sub := getattr(config, key, None)) is not None:
            wanted[key] = _where_sdpa(sub)
    return wanted


def use_packed_attention(model: Any) -> bool:
    """Select the packed attention on `model` (a transformers or peft model) where it uses "sdpa";
    returns whether its own attention now is. Nothing else in the process changes."""
    register()
    config = model.config
    if config._attn_implementation != "sdpa":  # eager, flash-attention (varlen already) or another choice
        return False
    model.set_attn_implementation(_where_sdpa(config))
    return config._attn_implementation == PACKED_SDPA
