"""argmax and argmin along one axis: the index of the largest (smallest) element, as a
float in the data's dtype (MXNet's), the first one where several tie.

A NaN wins both (NaN in gives NaN's place out): the index is that of the first NaN, as numpy's
and MXNet's are. The data is seen as (outer, length, inner) around the axis; each program
takes a block of positions and scans the axis in blocks, keeping the best value and its
index so far (a later block replaces it only when strictly better, so the first tie stays).
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from ._common import (
    INTERPRET,
    KernelArgumentError,
    Launch,
    along_axis,
    check_tensor,
    load_wide,
    prepare_out,
    store,
)

TESTS = ("tests/test_operators.py", "tests/test_arg_reduce.py")
KINDS = ("argmax", "argmin")
# A program's tile of (positions, elements along the axis); the interpreter prefers few large ones.
TILE = 1 << 14 if INTERPRET else 2048
# The largest index each dtype holds exactly (every integer up to it): float16's 11-bit and
# bfloat16's 8-bit significands.
EXACT_INDEX = {torch.float64: 1 << 53, torch.float32: 1 << 24, torch.float16: 1 << 11, torch.bfloat16: 1 << 8}


@triton.jit
def _arg_reduce_kernel(X, OUT, n, length, inner, MAX: tl.constexpr, BLOCK_OUT: tl.constexpr,
                       BLOCK_RED: tl.constexpr):
    positions = tl.program_id(0).to(tl.int64) * BLOCK_OUT + tl.arange(0, BLOCK_OUT)
    in_range = positions < n
    base = (positions // inner) * length * inner + positions % inner
    none = length  # an index past every element: "not found yet"
    best = tl.full((BLOCK_OUT,), float("-inf") if MAX else float("inf"), tl.float64)
    best_at = tl.full((BLOCK_OUT,), none, tl.int64)
    nan_at = tl.full((BLOCK_OUT,), none, tl.int64)
    for start in range(0, length, BLOCK_RED):
        r = start + tl.arange(0, BLOCK_RED).to(tl.int64)
        mask = in_range[:, None] & (r < length)[None, :]
        v = load_wide(X, base[:, None] + r[None, :] * inner, mask, 0.0).to(tl.float64)
        at = tl.broadcast_to(r[None, :], (BLOCK_OUT, BLOCK_RED))
        nan_at = tl.minimum(nan_at, tl.min(tl.where(mask & (v != v), at, none), axis=1))
        ordered = mask & (v == v)
        if MAX:
            top = tl.max(tl.where(ordered, v, float("-inf")), axis=1)
        else:
            top = tl.min(tl.where(ordered, v, float("inf")), axis=1)
        top_at = tl.min(tl.where(ordered & (v == top[:, None]), at, none), axis=1)
        better = (top > best) if MAX else (top < best)
        take = (better | (best_at == none)) & (top_at < none)
        best = tl.where(take, top, best)
        best_at = tl.where(take, top_at, best_at)
    result = tl.where(nan_at < none, nan_at, best_at)
    store(OUT, positions, result.to(tl.float64), in_range)


def _pow2(v: int) -> int:
    return 1 << max(0, math.ceil(math.log2(max(v, 1))))


def plan_arg_reduce(x: torch.Tensor, out: torch.Tensor | None, kind: str, axis: int | None) -> list[Launch]:
    """``out = kind(x)`` along ``axis`` (None: over the flattened data); ``out`` holds the
    other positions in order (any 1s), in x's dtype."""
    fn = kind
    if kind not in KINDS:
        raise KernelArgumentError(f"arg_reduce: kind={kind!r} is not one of {', '.join(KINDS)}")
    check_tensor(fn, "x", x)
    if not x.is_contiguous():
        raise KernelArgumentError(f"{fn}: x must be contiguous, got strides {x.stride()}")
    shape = (x.numel(),) if axis is None else tuple(x.shape)
    if axis is not None and not -x.dim() <= axis < x.dim():
        raise KernelArgumentError(f"{fn}: axis={axis} is out of range for x of shape {tuple(x.shape)}")
    length, inner, count = along_axis(shape, 0 if axis is None else axis)
    if length == 0:
        raise KernelArgumentError(f"{fn}: the {kind} of no elements (axis {axis} of shape {tuple(x.shape)})")
    if length - 1 > EXACT_INDEX[x.dtype]:
        raise KernelArgumentError(f"{fn}: an axis of length {length} has indices {x.dtype} cannot hold exactly "
                                  f"(every integer only up to {EXACT_INDEX[x.dtype]}); cast the data to a wider "
                                  f"dtype first")
    out = prepare_out(fn, "out", out, out.shape if out is not None else (count,), x.dtype, x.device)
    if out.numel() != count or not out.is_contiguous():
        raise KernelArgumentError(f"{fn}: out must be contiguous with {count} elements, got shape "
                                  f"{tuple(out.shape)} strides {out.stride()}")
    block_red = min(_pow2(length), TILE)
    block_out = max(1, min(TILE // block_red, _pow2(count)))
    return [Launch(_arg_reduce_kernel, (triton.cdiv(count, block_out),), [x, out, count, length, inner],
                   dict(MAX=kind == "argmax", BLOCK_OUT=block_out, BLOCK_RED=block_red))]


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    """argmax over the last axis (a classifier's prediction), argmin over a middle one."""
    shape = (4096, 32000 if dtype in (torch.float64, torch.float32) else 256) if large else (5, 7, 3)
    x = torch.empty(shape, dtype=dtype)
    last = torch.empty(shape[:-1], dtype=dtype)
    middle = torch.empty((shape[0], *shape[2:]), dtype=dtype)
    # an axis of one element: Triton compiles the length 1 in as a constant
    single = torch.empty((*shape[:-1], 1), dtype=dtype)
    return [("argmax last axis", plan_arg_reduce(x, last, "argmax", -1)[0]),
            ("argmax axis of one", plan_arg_reduce(single, last, "argmax", -1)[0]),
            ("argmin middle axis", plan_arg_reduce(x, middle, "argmin", 1)[0])]
