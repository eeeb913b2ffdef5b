"""pick: one element along an axis per position, chosen by an index array, and its gradient.

The data is seen as (outer, length, inner) around the axis, the index (and the output) as
(outer, inner). An index may be a float or an integer. ``mode="clip"`` moves one outside
``[0, length)`` to the nearest end, ``"wrap"`` takes it modulo the length (both MXNet's);
one that is not a whole number (NaN, 1.5) gives its position NaN and no gradient, so a wrong
index shows instead of picking some element (MXNet truncates it).

Backward writes each position's output gradient into the one element it picked: no two
positions share an element, so no atomics and the same bits every run. The rest of the data's
gradient is zero (a fill first) or untouched when accumulating.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._common import (
    ELEMENTWISE_BLOCK,
    FLOAT_DTYPES,
    INDEX_DTYPES,
    KernelArgumentError,
    Launch,
    along_axis,
    check_tensor,
    element_block,
    load_wide,
    prepare_out,
    store,
    store_result,
)
from .memory import plan_fill

TESTS = ("tests/test_operators.py", "tests/test_gradcheck.py", "tests/test_pick.py")
MODES = ("clip", "wrap")


@triton.jit
def _picked(IDX, index, mask, length, WRAP: tl.constexpr):
    """Each position's element along the axis (int64; 0 where invalid) and whether its index is whole."""
    k = tl.load(IDX + index, mask=mask, other=0).to(tl.float64)
    valid = mask & (k == tl.floor(k))  # NaN and 1.5 fail; +-inf pass here and are clipped or refused below
    if WRAP:
        valid = valid & (tl.abs(k) < 4611686018427387904.0)  # below 2**62 the int64 modulo is exact
        w = tl.where(valid, k, 0.0).to(tl.int64) % length
        k = tl.where(w < 0, w + length, w)
    else:
        k = tl.minimum(tl.maximum(k, 0.0), length - 1.0).to(tl.int64)  # no .to: a length of 1 is compiled in
    return tl.where(valid, k, 0), valid


@triton.jit
def _pick_kernel(X, IDX, OUT, n, length, inner, WRAP: tl.constexpr, BLOCK: tl.constexpr):
    index, mask = element_block(n, BLOCK)
    k, valid = _picked(IDX, index, mask, length, WRAP)
    at = (index // inner) * length * inner + k * inner + index % inner
    x = load_wide(X, at, mask & valid, 0.0)
    store(OUT, index, tl.where(valid, x, float("nan")), mask)


@triton.jit
def _pick_backward_kernel(DY, IDX, DX, n, length, inner, WRAP: tl.constexpr, ACCUMULATE: tl.constexpr,
                          BLOCK: tl.constexpr):
    index, mask = element_block(n, BLOCK)
    k, valid = _picked(IDX, index, mask, length, WRAP)
    at = (index // inner) * length * inner + k * inner + index % inner
    store_result(DX, at, load_wide(DY, index, mask, 0.0), mask & valid, ACCUMULATE)


def _checked(fn: str, x_shape, axis: int, index: torch.Tensor, mode: str) -> tuple[int, int, int]:
    if mode not in MODES:
        raise KernelArgumentError(f"{fn}: mode={mode!r} is not one of {', '.join(MODES)}")
    if not -len(x_shape) <= axis < len(x_shape):
        raise KernelArgumentError(f"{fn}: axis={axis} is out of range for data of shape {tuple(x_shape)}")
    check_tensor(fn, "index", index, FLOAT_DTYPES + INDEX_DTYPES)
    length, inner, count = along_axis(x_shape, axis)
    if index.numel() != count:
        raise KernelArgumentError(f"{fn}: index has {index.numel()} elements (shape {tuple(index.shape)}) but data of "
                                  f"shape {tuple(x_shape)} has {count} positions along axis {axis}")
    if not index.is_contiguous():
        raise KernelArgumentError(f"{fn}: index must be contiguous, got strides {index.stride()}")
    return length, inner, count


def plan_pick(x: torch.Tensor, index: torch.Tensor, out: torch.Tensor | None, axis: int,
              mode: str = "clip") -> list[Launch]:
    """``out[o, i] = x[o, index[o, i], i]`` around ``axis``; ``out`` holds index's positions (any shape)."""
    fn = "pick"
    check_tensor(fn, "x", x)
    length, inner, count = _checked(fn, x.shape, axis, index, mode)
    if not x.is_contiguous():
        raise KernelArgumentError(f"{fn}: x must be contiguous, got strides {x.stride()}")
    out = prepare_out(fn, "out", out, out.shape if out is not None else index.shape, x.dtype, x.device)
    if out.numel() != count or not out.is_contiguous():
        raise KernelArgumentError(f"{fn}: out must be contiguous with {count} elements, got shape "
                                  f"{tuple(out.shape)} strides {out.stride()}")
    grid = (triton.cdiv(max(count, 1), ELEMENTWISE_BLOCK),)
    return [Launch(_pick_kernel, grid, [x, index, out, count, length, inner],
                   dict(WRAP=mode == "wrap", BLOCK=ELEMENTWISE_BLOCK))]


def plan_pick_backward(grad_out: torch.Tensor, index: torch.Tensor, grad_x: torch.Tensor, axis: int,
                       mode: str = "clip", accumulate: bool = False) -> list[Launch]:
    """``grad_x (+)=`` ``grad_out`` written at the picked elements (0 elsewhere)."""
    fn = "pick_backward"
    check_tensor(fn, "grad_out", grad_out)
    check_tensor(fn, "grad_x", grad_x)
    length, inner, count = _checked(fn, grad_x.shape, axis, index, mode)
    for name, t in (("grad_out", grad_out), ("grad_x", grad_x)):
        if not t.is_contiguous():
            raise KernelArgumentError(f"{fn}: {name} must be contiguous, got strides {t.stride()}")
    if grad_out.numel() != count:
        raise KernelArgumentError(f"{fn}: grad_out has {grad_out.numel()} elements but there are {count} positions")
    zero = [] if accumulate else plan_fill(grad_x, 0.0)
    grid = (triton.cdiv(max(count, 1), ELEMENTWISE_BLOCK),)
    return zero + [Launch(_pick_backward_kernel, grid, [grad_out, index, grad_x, count, length, inner],
                          dict(WRAP=mode == "wrap", ACCUMULATE=accumulate, BLOCK=ELEMENTWISE_BLOCK))]


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    """pick (clip, float indices; wrap, int64 indices) and its backward (writing, accumulating)."""
    shape = (4096, 32000) if large else (5, 7, 3)
    x = torch.empty(shape, dtype=dtype)
    axis = 1 if not large else -1
    positions = (4096,) if large else (5, 3)
    floats, ints = torch.empty(positions), torch.empty(positions, dtype=torch.int64)
    out = torch.empty(positions, dtype=dtype)
    # an axis of one element: Triton compiles the length 1 in as a constant
    single = torch.empty((shape[0], 1, *shape[2:]), dtype=dtype)
    return [("pick clip", plan_pick(x, floats, out, axis)[0]),
            ("pick clip axis of one", plan_pick(single, floats, out, 1)[0]),
            ("pick wrap", plan_pick(x, ints, out, axis, "wrap")[0]),
            ("pick backward", plan_pick_backward(out, floats, x, axis)[-1]),
            ("pick backward accumulating", plan_pick_backward(out, ints, x, axis, "wrap", accumulate=True)[0])]
