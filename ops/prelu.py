"""PReLU (MXNet's LeakyReLU with act_type='prelu'): ``x if x > 0 else gamma[c] * x`` with one
learned slope per channel (axis 1), or one for all. ``gamma`` is read through a stride-0 view
of the data's shape. Backward writes the input gradient and, into an input-shaped scratch
buffer, each element's part of gamma's gradient (``dy * x`` where ``x <= 0``), which one
reduction sums per channel (``reduce.py``): the same order every run, no atomics.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._common import (
    ELEMENTWISE_BLOCK,
    KernelArgumentError,
    Launch,
    check_tensor,
    element_block,
    element_offsets,
    elementwise_launches,
    keep_nan,
    load_wide,
    prepare_out,
    store,
    store_result,
)
from .reduce import plan_reduce

TESTS = ("tests/test_operators.py", "tests/test_gradcheck.py", "tests/test_prelu.py")


@triton.jit
def _prelu_kernel(X, G, Y, n, sizes, x_strides, g_strides, y_strides, FLAT: tl.constexpr, BLOCK: tl.constexpr):
    index, mask = element_block(n, BLOCK)
    x = load_wide(X, element_offsets(index, FLAT, sizes, x_strides), mask, 0.0)
    g = load_wide(G, element_offsets(index, FLAT, sizes, g_strides), mask, 0.0)
    store(Y, element_offsets(index, FLAT, sizes, y_strides), tl.where(x > 0, x, g * x), mask)


@triton.jit
def _prelu_backward_kernel(X, G, DY, DX, DG, n, sizes, x_strides, g_strides, dy_strides, dx_strides, dg_strides,
                           HAS_DX: tl.constexpr, HAS_DG: tl.constexpr, ACCUMULATE: tl.constexpr, FLAT: tl.constexpr,
                           BLOCK: tl.constexpr):
    index, mask = element_block(n, BLOCK)
    x = load_wide(X, element_offsets(index, FLAT, sizes, x_strides), mask, 0.0)
    dy = load_wide(DY, element_offsets(index, FLAT, sizes, dy_strides), mask, 0.0)
    if HAS_DX:
        g = load_wide(G, element_offsets(index, FLAT, sizes, g_strides), mask, 0.0)
        # the slope is chosen by comparing x: at a NaN x the derivative is NaN, as relu's
        store_result(DX, element_offsets(index, FLAT, sizes, dx_strides), keep_nan(x, tl.where(x > 0, dy, dy * g)),
                     mask, ACCUMULATE)
    if HAS_DG:  # a NaN x fails x > 0 and carries its NaN into gamma's gradient
        store(DG, element_offsets(index, FLAT, sizes, dg_strides), tl.where(x > 0, 0.0, dy * x), mask)


def _slopes(fn: str, x: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """gamma as a stride-0 view of x's shape: per channel (axis 1) or one for all."""
    check_tensor(fn, "gamma", gamma)
    if x.dim() < 2:
        raise KernelArgumentError(f"{fn}: x of shape {tuple(x.shape)} needs a channel axis (axis 1)")
    if tuple(gamma.shape) == (1,):
        return gamma.reshape((1,) * x.dim()).expand(x.shape)
    if tuple(gamma.shape) != (x.shape[1],):
        raise KernelArgumentError(f"{fn}: gamma has shape {tuple(gamma.shape)}; x {tuple(x.shape)} needs "
                                  f"({x.shape[1]},) or (1,)")
    return gamma.reshape(1, -1, *([1] * (x.dim() - 2))).expand(x.shape)


def plan_prelu(x: torch.Tensor, gamma: torch.Tensor, out: torch.Tensor | None = None) -> list[Launch]:
    fn = "prelu"
    check_tensor(fn, "x", x)
    g = _slopes(fn, x, gamma)
    out = prepare_out(fn, "out", out, x.shape, x.dtype, x.device)
    return elementwise_launches(fn, x.shape, dict(x=x, g=g, out=out), lambda t, args, flat, grid: Launch(
        _prelu_kernel, grid, [*t.values(), *args], dict(FLAT=flat, BLOCK=ELEMENTWISE_BLOCK)))


def plan_prelu_backward(x: torch.Tensor, gamma: torch.Tensor, grad_out: torch.Tensor, grad_x: torch.Tensor | None,
                        grad_gamma: torch.Tensor | None, scratch: torch.Tensor | None = None, *,
                        accumulate_x: bool = False, accumulate_gamma: bool = False) -> list[Launch]:
    """``grad_x (+)= dy * (x > 0 ? 1 : gamma)``; ``grad_gamma (+)=`` the sum of ``dy * x`` where
    ``x <= 0`` per channel, through ``scratch`` (x's shape) when it is wanted."""
    fn = "prelu_backward"
    check_tensor(fn, "x", x)
    check_tensor(fn, "grad_out", grad_out)
    if tuple(grad_out.shape) != tuple(x.shape):
        raise KernelArgumentError(f"{fn}: grad_out has shape {tuple(grad_out.shape)} but x {tuple(x.shape)}")
    g = _slopes(fn, x, gamma)
    if grad_gamma is not None and (scratch is None or tuple(scratch.shape) != tuple(x.shape)):
        raise KernelArgumentError(f"{fn}: gamma's gradient needs a scratch buffer of x's shape {tuple(x.shape)}")
    if grad_x is None and grad_gamma is None:
        return []
    tensors = dict(x=x, g=g, dy=grad_out, dx=grad_x if grad_x is not None else grad_out,
                   dg=scratch if grad_gamma is not None else grad_out)
    launches = elementwise_launches(fn, x.shape, tensors, lambda t, args, flat, grid: Launch(
        _prelu_backward_kernel, grid, [*t.values(), *args],
        dict(HAS_DX=grad_x is not None, HAS_DG=grad_gamma is not None, ACCUMULATE=accumulate_x, FLAT=flat,
             BLOCK=ELEMENTWISE_BLOCK)))
    if grad_gamma is not None:
        axes = tuple(range(x.dim())) if tuple(gamma.shape) == (1,) else (0, *range(2, x.dim()))
        launches += plan_reduce(scratch, grad_gamma, "sum", axes, accumulate=accumulate_gamma)
    return launches


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    shape = (256, 64, 1024) if large else (5, 3, 7)
    x, gamma = torch.empty(shape, dtype=dtype), torch.empty(shape[1], dtype=dtype)
    return [("prelu", plan_prelu(x, gamma, torch.empty_like(x))[0]),
            ("prelu backward", plan_prelu_backward(x, gamma, x, torch.empty_like(x), torch.empty_like(gamma),
                                                   torch.empty_like(x))[0]),
            ("prelu backward accumulating", plan_prelu_backward(x, gamma, x, torch.empty_like(x), None,
                                                                accumulate_x=True)[0])]
