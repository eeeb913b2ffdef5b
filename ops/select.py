"""Choosing between values elementwise: ``where(condition, x, y)`` and ``clip(x, a_min, a_max)``,
with their gradients, as MXNet defines them.

- ``where``: x where the condition is not 0 (a NaN condition is not 0: x), else y; x's
  gradient is the output's where it was chosen, y's where it was not; the condition takes
  none. A condition of shape (len(x),) picks whole rows (MXNet's 1-d condition).
- ``clip``: x limited to [a_min, a_max]; NaN stays NaN; the gradient is 0 where a bound
  held x (x < a_min or x > a_max) and passes elsewhere: both ends included and a NaN, as
  in MXNet.
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
    check_tensor,
    element_block,
    element_offsets,
    elementwise_launches,
    load_wide,
    prepare_out,
    store,
    store_result,
)

TESTS = ("tests/test_operators.py", "tests/test_gradcheck.py", "tests/test_select.py")


@triton.jit
def _where_kernel(COND, X, Y, OUT, n, sizes, c_strides, x_strides, y_strides, out_strides,
                  FLAT: tl.constexpr, BLOCK: tl.constexpr):
    index, mask = element_block(n, BLOCK)
    c = tl.load(COND + element_offsets(index, FLAT, sizes, c_strides), mask=mask, other=0)
    x = load_wide(X, element_offsets(index, FLAT, sizes, x_strides), mask, 0.0)
    y = load_wide(Y, element_offsets(index, FLAT, sizes, y_strides), mask, 0.0)
    store(OUT, element_offsets(index, FLAT, sizes, out_strides), tl.where(c != 0, x, y), mask)


@triton.jit
def _where_backward_kernel(COND, DOUT, DX, DY, n, sizes, c_strides, g_strides, dx_strides, dy_strides,
                           HAS_DX: tl.constexpr, HAS_DY: tl.constexpr, ACCUMULATE_DX: tl.constexpr,
                           ACCUMULATE_DY: tl.constexpr, FLAT: tl.constexpr, BLOCK: tl.constexpr):
    index, mask = element_block(n, BLOCK)
    chosen = tl.load(COND + element_offsets(index, FLAT, sizes, c_strides), mask=mask, other=0) != 0
    g = load_wide(DOUT, element_offsets(index, FLAT, sizes, g_strides), mask, 0.0)
    if HAS_DX:
        store_result(DX, element_offsets(index, FLAT, sizes, dx_strides), tl.where(chosen, g, 0.0), mask,
                     ACCUMULATE_DX)
    if HAS_DY:
        store_result(DY, element_offsets(index, FLAT, sizes, dy_strides), tl.where(chosen, 0.0, g), mask,
                     ACCUMULATE_DY)


@triton.jit
def _clip_kernel(X, OUT, a_min: tl.float64, a_max: tl.float64, n, sizes, x_strides, out_strides,
                 FLAT: tl.constexpr, BLOCK: tl.constexpr):
    index, mask = element_block(n, BLOCK)
    x = load_wide(X, element_offsets(index, FLAT, sizes, x_strides), mask, 0.0)
    low, high = a_min.to(x.dtype), a_max.to(x.dtype)
    r = tl.where(x < low, low, tl.where(x > high, high, x))  # a NaN fails both tests: it stays
    store(OUT, element_offsets(index, FLAT, sizes, out_strides), r, mask)


@triton.jit
def _clip_backward_kernel(X, DOUT, DX, a_min: tl.float64, a_max: tl.float64, n, sizes, x_strides, g_strides,
                          dx_strides, ACCUMULATE: tl.constexpr, FLAT: tl.constexpr, BLOCK: tl.constexpr):
    index, mask = element_block(n, BLOCK)
    x = load_wide(X, element_offsets(index, FLAT, sizes, x_strides), mask, 0.0)
    g = load_wide(DOUT, element_offsets(index, FLAT, sizes, g_strides), mask, 0.0)
    # a NaN is neither below nor above a bound: it stayed, and takes the gradient (as MXNet's)
    held = (x < a_min.to(x.dtype)) | (x > a_max.to(x.dtype))
    store_result(DX, element_offsets(index, FLAT, sizes, dx_strides), tl.where(held, 0.0, g), mask, ACCUMULATE)


def _condition(fn: str, cond: torch.Tensor, shape) -> torch.Tensor:
    """The condition as a view of ``shape``: itself, or a 1-d one repeated along the rows."""
    check_tensor(fn, "condition", cond, FLOAT_DTYPES + INDEX_DTYPES)
    if tuple(cond.shape) == tuple(shape):
        return cond
    if cond.dim() == 1 and len(shape) >= 1 and cond.shape[0] == shape[0]:
        return cond.reshape(cond.shape[0], *([1] * (len(shape) - 1))).expand(shape)
    raise KernelArgumentError(f"{fn}: condition has shape {tuple(cond.shape)}; it must be {tuple(shape)} or "
                              f"({shape[0] if shape else '?'},)")


def _same(fn: str, shape, **tensors):
    for name, t in tensors.items():
        if t is not None:
            check_tensor(fn, name, t)
            if tuple(t.shape) != tuple(shape):
                raise KernelArgumentError(f"{fn}: {name} has shape {tuple(t.shape)} but x has {tuple(shape)}")


def plan_where(cond: torch.Tensor, x: torch.Tensor, y: torch.Tensor, out: torch.Tensor | None = None):
    fn = "where"
    _same(fn, x.shape, x=x, y=y)
    if x.dtype != y.dtype:
        raise KernelArgumentError(f"{fn}: x ({x.dtype}) and y ({y.dtype}) must share a dtype")
    cond = _condition(fn, cond, x.shape)
    out = prepare_out(fn, "out", out, x.shape, x.dtype, x.device)
    return elementwise_launches(fn, x.shape, dict(c=cond, x=x, y=y, out=out), lambda t, args, flat, grid: Launch(
        _where_kernel, grid, [*t.values(), *args], dict(FLAT=flat, BLOCK=ELEMENTWISE_BLOCK)))


def plan_where_backward(cond: torch.Tensor, grad_out: torch.Tensor, grad_x: torch.Tensor | None,
                        grad_y: torch.Tensor | None, accumulate_x: bool = False, accumulate_y: bool = False):
    fn = "where_backward"
    _same(fn, grad_out.shape, grad_out=grad_out, grad_x=grad_x, grad_y=grad_y)
    if grad_x is None and grad_y is None:
        return []
    cond = _condition(fn, cond, grad_out.shape)
    tensors = dict(c=cond, g=grad_out, dx=grad_x if grad_x is not None else grad_out,
                   dy=grad_y if grad_y is not None else grad_out)
    return elementwise_launches(fn, grad_out.shape, tensors, lambda t, args, flat, grid: Launch(
        _where_backward_kernel, grid, [*t.values(), *args],
        dict(HAS_DX=grad_x is not None, HAS_DY=grad_y is not None, ACCUMULATE_DX=accumulate_x,
             ACCUMULATE_DY=accumulate_y, FLAT=flat, BLOCK=ELEMENTWISE_BLOCK)))


def _check_bounds(fn: str, a_min: float, a_max: float) -> None:
    if not a_min <= a_max:
        raise KernelArgumentError(f"{fn}: a_min={a_min} must not exceed a_max={a_max}")


def plan_clip(x: torch.Tensor, out: torch.Tensor | None, a_min: float, a_max: float):
    fn = "clip"
    _same(fn, x.shape, x=x)
    _check_bounds(fn, a_min, a_max)
    out = prepare_out(fn, "out", out, x.shape, x.dtype, x.device)
    return elementwise_launches(fn, x.shape, dict(x=x, out=out), lambda t, args, flat, grid: Launch(
        _clip_kernel, grid, [*t.values(), float(a_min), float(a_max), *args], dict(FLAT=flat, BLOCK=ELEMENTWISE_BLOCK)))


def plan_clip_backward(x: torch.Tensor, grad_out: torch.Tensor, grad_x: torch.Tensor, a_min: float, a_max: float,
                       accumulate: bool = False):
    fn = "clip_backward"
    _same(fn, x.shape, x=x, grad_out=grad_out, grad_x=grad_x)
    _check_bounds(fn, a_min, a_max)
    return elementwise_launches(fn, x.shape, dict(x=x, g=grad_out, dx=grad_x), lambda t, args, flat, grid: Launch(
        _clip_backward_kernel, grid, [*t.values(), float(a_min), float(a_max), *args],
        dict(ACCUMULATE=accumulate, FLAT=flat, BLOCK=ELEMENTWISE_BLOCK)))


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    shape = (4096, 4096) if large else (5, 3, 7)
    x = torch.empty(shape, dtype=dtype)
    rows = torch.empty(shape[0], dtype=dtype)
    return [("where", plan_where(x, x, x, torch.empty_like(x))[0]),
            ("where of rows", plan_where(rows, x, x, torch.empty_like(x))[0]),
            ("where backward", plan_where_backward(x, x, x, x)[0]),
            ("where backward accumulating", plan_where_backward(x, x, x, None, True)[0]),
            ("clip", plan_clip(x, torch.empty_like(x), -1.0, 1.0)[0]),
            ("clip backward", plan_clip_backward(x, x, torch.empty_like(x), -1.0, 1.0)[0]),
            ("clip backward accumulating", plan_clip_backward(x, x, torch.empty_like(x), -1.0, 1.0, True)[0])]
