"""moments: the mean and the (population) variance over any set of axes, and their gradient.

Forward is ``reduce.py``'s loop twice over each output's reduced elements, in one program:
the sum first, then the squared deviations from the mean, so the variance never subtracts
two large sums (no cancellation where the mean is large beside the spread). Backward is one
elementwise pass: ``dx = dmean / n + dvar * 2 (x - mean) / n`` (the second term 0 where dvar
is 0: an unused variance adds no NaN), with the mean and both head gradients read broadcast
along the reduced axes. float16/bfloat16 accumulate in float32.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from ._common import (
    ELEMENTWISE_BLOCK,
    KernelArgumentError,
    Launch,
    check_tensor,
    element_offsets,
    elementwise_args,
    elementwise_launches,
    load_wide,
    store,
    store_result,
)
from .memory import plan_fill
from .reduce import TILE, _at_zero, _check_axes, _pow2

TESTS = ("tests/test_operators.py", "tests/test_gradcheck.py", "tests/test_moments.py")


@triton.jit
def _moments_kernel(X, MEAN, VAR, n, sizes, x_strides, mean_strides, var_strides, n_red, red_sizes, red_strides,
                    FLAT: tl.constexpr, FLAT_RED: tl.constexpr, BLOCK_OUT: tl.constexpr, BLOCK_RED: tl.constexpr):
    index = tl.program_id(0).to(tl.int64) * BLOCK_OUT + tl.arange(0, BLOCK_OUT)
    out_mask = index < n
    base = element_offsets(index, FLAT, sizes, x_strides)
    ACC = tl.float64 if X.dtype.element_ty == tl.float64 else tl.float32
    acc = tl.zeros((BLOCK_OUT, BLOCK_RED), ACC)
    for start in range(0, n_red, BLOCK_RED):
        r = start + tl.arange(0, BLOCK_RED).to(tl.int64)
        mask = out_mask[:, None] & (r < n_red)[None, :]
        acc += load_wide(X, base[:, None] + element_offsets(r, FLAT_RED, red_sizes, red_strides)[None, :], mask, 0.0)
    mean = tl.sum(acc, axis=1) / n_red
    acc = tl.zeros((BLOCK_OUT, BLOCK_RED), ACC)
    for start in range(0, n_red, BLOCK_RED):
        r = start + tl.arange(0, BLOCK_RED).to(tl.int64)
        mask = out_mask[:, None] & (r < n_red)[None, :]
        v = load_wide(X, base[:, None] + element_offsets(r, FLAT_RED, red_sizes, red_strides)[None, :], mask, 0.0)
        d = tl.where(mask, v - mean[:, None], 0.0)
        acc += d * d
    store(MEAN, element_offsets(index, FLAT, sizes, mean_strides), mean, out_mask)
    store(VAR, element_offsets(index, FLAT, sizes, var_strides), tl.sum(acc, axis=1) / n_red, out_mask)


@triton.jit
def _moments_backward_kernel(X, MEAN, DMEAN, DVAR, DX, n, sizes, x_strides, mean_strides, dmean_strides,
                             dvar_strides, dx_strides, count: tl.float64, ACCUMULATE: tl.constexpr,
                             FLAT: tl.constexpr, BLOCK: tl.constexpr):
    index = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = index < n
    x = load_wide(X, element_offsets(index, FLAT, sizes, x_strides), mask, 0.0)
    mean = load_wide(MEAN, element_offsets(index, FLAT, sizes, mean_strides), mask, 0.0).to(x.dtype)
    dmean = load_wide(DMEAN, element_offsets(index, FLAT, sizes, dmean_strides), mask, 0.0).to(x.dtype)
    dvar = load_wide(DVAR, element_offsets(index, FLAT, sizes, dvar_strides), mask, 0.0).to(x.dtype)
    scale = 1.0 / count.to(x.dtype)
    # a variance nobody reads (a zero head gradient) adds nothing, also beside a NaN in the data
    spread = tl.where(dvar == 0.0, 0.0, 2.0 * dvar * (x - mean))
    store_result(DX, element_offsets(index, FLAT, sizes, dx_strides), (dmean + spread) * scale, mask, ACCUMULATE)


def _kept(fn: str, x: torch.Tensor, axes, named: dict[str, torch.Tensor]) -> tuple[tuple[int, ...], tuple]:
    """(the reduced axes, the kept shape with 1s in their place), each of ``named`` checked to
    hold the kept axes."""
    axes = _check_axes(fn, x, axes)
    kept = tuple(1 if d in axes else n for d, n in enumerate(x.shape))
    for name, t in named.items():
        check_tensor(fn, name, t, (x.dtype,))
        if t.numel() != math.prod(kept) or t.device != x.device:
            raise KernelArgumentError(f"{fn}: {name} has shape {tuple(t.shape)} on {t.device}; reducing "
                                      f"{tuple(x.shape)} over axes {axes} keeps {kept} on {x.device}")
    return axes, kept


def plan_moments(x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor, axes) -> list[Launch]:
    """``mean`` and ``var`` (the population variance) of ``x`` over ``axes``; both hold the
    kept axes in order (any 1s in the reduced places)."""
    fn = "moments"
    check_tensor(fn, "x", x)
    axes, kept = _kept(fn, x, axes, {"mean": mean, "var": var})
    count = math.prod(x.shape[d] for d in axes)
    if mean.numel() == 0:
        return []
    kept_shape = tuple(n for d, n in enumerate(x.shape) if d not in axes) or (1,)
    if count == 0:  # no elements: 0/0, as numpy's and torch's
        return plan_fill(mean, float("nan")) + plan_fill(var, float("nan"))
    values = _at_zero(x, axes).reshape(kept_shape)
    reduced = _at_zero(x, set(range(x.dim())) - set(axes))
    args, flat, _ = elementwise_args(fn, kept_shape, x=values, mean=mean.reshape(kept_shape),
                                     var=var.reshape(kept_shape))
    red_args, flat_red, _ = elementwise_args(fn, reduced.shape, r=reduced)
    block_red = min(_pow2(count), TILE)
    block_out = max(1, min(TILE // block_red, _pow2(mean.numel())))
    return [Launch(_moments_kernel, (triton.cdiv(mean.numel(), block_out),),
                   [x, mean, var, *args, *red_args],
                   dict(FLAT=flat, FLAT_RED=flat_red, BLOCK_OUT=block_out, BLOCK_RED=block_red))]


def plan_moments_backward(x: torch.Tensor, mean: torch.Tensor, dmean: torch.Tensor, dvar: torch.Tensor,
                          dx: torch.Tensor, axes, accumulate: bool = False) -> list[Launch]:
    """``dx (+)= dmean / n + dvar * 2 (x - mean) / n`` (n the reduced count); ``mean``,
    ``dmean`` and ``dvar`` hold the kept axes."""
    fn = "moments_backward"
    check_tensor(fn, "x", x)
    check_tensor(fn, "dx", dx, (x.dtype,))
    if tuple(dx.shape) != tuple(x.shape):
        raise KernelArgumentError(f"{fn}: dx has shape {tuple(dx.shape)} but x {tuple(x.shape)}")
    axes, kept = _kept(fn, x, axes, {"mean": mean, "dmean": dmean, "dvar": dvar})
    count = math.prod(x.shape[d] for d in axes)
    tensors = dict(x=x, mean=mean.reshape(kept).expand(x.shape), dmean=dmean.reshape(kept).expand(x.shape),
                   dvar=dvar.reshape(kept).expand(x.shape), dx=dx)
    return elementwise_launches(fn, x.shape, tensors, lambda t, args, flat, grid: Launch(
        _moments_backward_kernel, grid, [*t.values(), *args, float(count)],
        dict(ACCUMULATE=accumulate, FLAT=flat, BLOCK=ELEMENTWISE_BLOCK)))


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    """Moments over the last axis (a normalization's statistics) and over the outer axes."""
    shape = (64, 512, 1024) if large else (5, 3, 7)
    x = torch.empty(shape, dtype=dtype)
    rows, cols = torch.empty(shape[0], shape[1], dtype=dtype), torch.empty(shape[1], dtype=dtype)
    dx = torch.empty_like(x)
    return [("moments of the last axis", plan_moments(x, rows, rows, (2,))[0]),
            ("moments of the outer axes", plan_moments(x, cols, cols, (0, 2))[0]),
            ("moments backward", plan_moments_backward(x, rows, rows, rows, dx, (2,))[0]),
            ("moments backward added", plan_moments_backward(x, cols, cols, cols, dx, (0, 2), accumulate=True)[0])]
