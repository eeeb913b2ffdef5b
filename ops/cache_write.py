"""A cache written in place at run-time positions: the key and value cache of decoding.

``data`` (batch, ..., steps, ...) goes into ``cache`` (batch, ..., cache_len, ...), every
other dimension equal, entry ``t`` of batch row ``b`` along the axis into slot
``(position[b] + t) % cache_len``: a ring, so a cache shorter than the text keeps the last
``cache_len`` entries (a sliding window's keys, Mistral's rolling cache). The positions are
read from device memory when the kernel runs, so one bound step (one CUDA graph) serves
every position. The backward reads the same slots back (``gather``).

A position that is not a whole number >= 0 (NaN, negative, fractional) fills that batch
row's whole cache with NaN, so what reads the cache next says so instead of reading a slot
that was never meant.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from ._common import (
    ELEMENTWISE_BLOCK,
    FLOAT_DTYPES,
    INDEX_DTYPES,
    MAX_DIMS,
    KernelArgumentError,
    Launch,
    check_tensor,
    collapse_dims,
    element_block,
    element_offsets,
    overlap,
    store,
    store_result,
    widen,
)

TESTS = ("tests/test_operators.py", "tests/test_gradcheck.py", "tests/test_cache_write.py")
_LARGEST_POSITION = tl.constexpr(2.0 ** 53)  # float64 holds every whole number below it


@triton.jit
def _cache_write_kernel(DATA, CACHE, POSITION, n, sizes, strides, steps, cache_len, row_len, per_batch,
                        GATHER: tl.constexpr, ACCUMULATE: tl.constexpr, BLOCK: tl.constexpr):
    """Element ``e`` of data (row-major over (batch, outer, steps, row_len), through its
    strides) pairs with the contiguous cache's element ``(o * cache_len + slot) * row_len + r``
    (``o = e // (steps * row_len)``, ``r = e % row_len``). Forward copies data's bits into
    it; ``GATHER`` writes (or adds) it into data instead (the gradient)."""
    index, mask = element_block(n, BLOCK)
    t = (index // row_len) % steps
    outer = index // (steps * row_len)
    within = index % row_len
    position = tl.load(POSITION + index // per_batch, mask=mask, other=0).to(tl.float64)
    valid = (position >= 0) & (position == tl.floor(position)) & (position < _LARGEST_POSITION)
    slot = (tl.where(valid, position, 0.0).to(tl.int64) + t) % cache_len
    cached = (outer * cache_len + slot) * row_len + within
    data_at = element_offsets(index, False, sizes, strides)
    if GATHER:
        v = widen(tl.load(CACHE + cached, mask=mask, other=0.0), DATA)
        store_result(DATA, data_at, tl.where(valid, v, float("nan")), mask, ACCUMULATE)
    else:
        # The same dtype both sides: the bits are copied, NaN and all.
        tl.store(CACHE + cached, tl.load(DATA + data_at, mask=mask), mask=mask & valid)
        # An invalid position poisons every slot of its row's cache (once: from the entries
        # at t == 0); no valid entry of another program stores there, so none races it.
        poison = mask & (t == 0) & (valid == 0)
        if tl.max(poison.to(tl.int32), 0) > 0:
            nan = tl.full((BLOCK,), float("nan"), tl.float32)
            for s in range(0, cache_len):
                store(CACHE, (outer * cache_len + s) * row_len + within, nan, poison)


def _check(fn: str, data: torch.Tensor, cache: torch.Tensor, position: torch.Tensor, axis: int) -> int:
    """The axis counted from the front, after checking every argument against the others."""
    check_tensor(fn, "data", data, FLOAT_DTYPES)
    check_tensor(fn, "cache", cache, FLOAT_DTYPES)
    check_tensor(fn, "position", position, FLOAT_DTYPES + INDEX_DTYPES)
    if data.dim() < 2 or not -data.dim() <= axis < data.dim() or axis % data.dim() == 0:
        raise KernelArgumentError(f"{fn}: axis={axis} is not a cache axis of data of shape {tuple(data.shape)} "
                                  "(any axis but the first, the batch's)")
    axis %= data.dim()
    others = [d for d in range(data.dim()) if d != axis]
    if cache.dim() != data.dim() or [cache.shape[d] for d in others] != [data.shape[d] for d in others]:
        raise KernelArgumentError(f"{fn}: cache of shape {tuple(cache.shape)} must equal data's {tuple(data.shape)} "
                                  f"but along axis {axis}")
    if data.shape[axis] > cache.shape[axis]:
        raise KernelArgumentError(f"{fn}: data holds {data.shape[axis]} entries along axis {axis}, more than the "
                                  f"cache's {cache.shape[axis]} slots (one write would fill a slot twice)")
    if cache.dtype != data.dtype or cache.device != data.device:
        raise KernelArgumentError(f"{fn}: cache ({cache.dtype} on {cache.device}) must have data's dtype and device "
                                  f"({data.dtype} on {data.device})")
    if not cache.is_contiguous():
        raise KernelArgumentError(f"{fn}: cache of shape {tuple(cache.shape)} must be contiguous, got strides "
                                  f"{cache.stride()}")
    if tuple(position.shape) != (data.shape[0],) or not position.is_contiguous() or position.device != data.device:
        raise KernelArgumentError(f"{fn}: position must be contiguous of shape ({data.shape[0]},) on {data.device}, "
                                  f"got shape {tuple(position.shape)} on {position.device}")
    if data.numel() and overlap(data, cache):
        raise KernelArgumentError(f"{fn}: data and cache share memory")
    return axis


def plan_cache_write(data: torch.Tensor, cache: torch.Tensor, position: torch.Tensor, axis: int = -2,
                     gather: bool = False, accumulate: bool = False) -> list[Launch]:
    """Write ``data``'s entries along ``axis`` into ``cache`` from slot ``position[b]`` on
    (modulo the cache's length); ``gather``: ``data (+)=`` those slots of ``cache`` (the
    gradient, ``accumulate`` for grad_req add). ``data`` may have any strides."""
    fn = "cache write"
    axis = _check(fn, data, cache, position, axis)
    if data.numel() == 0:
        return []
    sizes, (strides,) = collapse_dims(data.shape, data.stride())
    if len(sizes) > MAX_DIMS:
        raise KernelArgumentError(f"{fn}: data of shape {tuple(data.shape)} and strides {data.stride()} has more "
                                  f"than {MAX_DIMS} dimensions that cannot be merged; pass a contiguous tensor")
    pad = MAX_DIMS - len(sizes)
    sizes, strides = [1] * pad + sizes, [0] * pad + strides
    n = data.numel()
    row_len = math.prod(data.shape[axis + 1:])  # elements from one entry along the axis to the next
    return [Launch(_cache_write_kernel, (triton.cdiv(n, ELEMENTWISE_BLOCK),),
                   [data, cache, position, n, tuple(sizes[1:]), tuple(strides), data.shape[axis], cache.shape[axis],
                    row_len, n // data.shape[0]],
                   dict(GATHER=gather, ACCUMULATE=accumulate, BLOCK=ELEMENTWISE_BLOCK))]


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    # (batch, kv_heads, steps, head_dim): one decoding step's keys, a transposed view as the
    # heads split from a projection are, into a cache of 4096 (large) or 7 positions
    batch, heads, steps, cache_len, dim = (32, 8, 1, 4096, 128) if large else (3, 2, 2, 7, 5)
    data = torch.empty((batch, steps, heads, dim), dtype=dtype).transpose(1, 2)
    cache = torch.empty((batch, heads, cache_len, dim), dtype=dtype)
    position = torch.empty((batch,), dtype=torch.int64)
    return [("cache write", plan_cache_write(data, cache, position)[0]),
            ("cache write, gradient added", plan_cache_write(data, cache, position, gather=True,
                                                             accumulate=True)[0])]
