"""Local response normalization across channels (AlexNet's; MXNet's LRN), forward and backward.

For data seen as (batch, channels, positions), each element is divided by a power of the
sum of squares of its channel window at its position:

    s_c = knorm + alpha / nsize * sum(x_k ** 2 for k in [c - nsize // 2, c + nsize // 2])
    y_c = x_c * s_c ** -beta

(channels outside the data count as 0). The gradient, over the same (symmetric) windows:

    dx_j = dy_j * s_j ** -beta - 2 * alpha * beta / nsize * x_j * sum(t_k for k in window(j)),
    t_k  = dy_k * x_k * s_k ** (-beta - 1)

Every pass is elementwise, each element reading its window (nsize is small: 5 in AlexNet)
from cache; s is computed again where it is needed rather than kept, so a training bind
keeps nothing beyond the input. Backward writes ``t`` into scratch of the compute type
(float32 for half precision, float64 for float64) and then sums it over each window. The
power is exp(-beta log s): a non-positive s (knorm <= 0 and a zero window) gives inf or NaN,
as C's pow does in MXNet.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._common import (
    ELEMENTWISE_BLOCK,
    FLOAT_DTYPES,
    KernelArgumentError,
    Launch,
    check_tensor,
    element_block,
    load_wide,
    store,
    store_result,
)

TESTS = ("tests/test_operators.py", "tests/test_gradcheck.py", "tests/test_lrn.py")


@triton.jit
def _window_scale(X, index, mask, c, channels, inner, half, alpha_over_n, knorm):
    """s at each element: knorm plus alpha / nsize times its channel window's sum of squares."""
    acc = tl.zeros(index.shape, tl.float64 if X.dtype.element_ty == tl.float64 else tl.float32)
    for d in range(-half, half + 1):
        inside = mask & (c + d >= 0) & (c + d < channels)
        v = load_wide(X, tl.where(inside, index + d * inner, 0), inside, 0.0)
        acc += v * v
    return knorm + alpha_over_n * acc


@triton.jit
def _lrn_forward_kernel(X, Y, n, channels, inner, half, alpha_over_n: tl.float64, beta: tl.float64,
                        knorm: tl.float64, BLOCK: tl.constexpr):
    index, mask = element_block(n, BLOCK)
    c = (index // inner) % channels
    x = load_wide(X, index, mask, 0.0)
    s = _window_scale(X, index, mask, c, channels, inner, half, alpha_over_n.to(x.dtype), knorm.to(x.dtype))
    store(Y, index, x * tl.exp(-beta.to(x.dtype) * tl.log(s)), mask)


@triton.jit
def _lrn_terms_kernel(X, DY, T, n, channels, inner, half, alpha_over_n: tl.float64, beta: tl.float64,
                      knorm: tl.float64, BLOCK: tl.constexpr):
    """t = dy * x * s ** (-beta - 1), the term each element gives its window's gradients."""
    index, mask = element_block(n, BLOCK)
    c = (index // inner) % channels
    x = load_wide(X, index, mask, 0.0)
    dy = load_wide(DY, index, mask, 0.0)
    s = _window_scale(X, index, mask, c, channels, inner, half, alpha_over_n.to(x.dtype), knorm.to(x.dtype))
    tl.store(T + index, dy * x * tl.exp((-beta.to(x.dtype) - 1.0) * tl.log(s)), mask=mask)


@triton.jit
def _lrn_backward_kernel(X, DY, T, DX, n, channels, inner, half, alpha_over_n: tl.float64, beta: tl.float64,
                         knorm: tl.float64, ACCUMULATE: tl.constexpr, BLOCK: tl.constexpr):
    index, mask = element_block(n, BLOCK)
    c = (index // inner) % channels
    x = load_wide(X, index, mask, 0.0)
    dy = load_wide(DY, index, mask, 0.0)
    b = beta.to(x.dtype)
    s = _window_scale(X, index, mask, c, channels, inner, half, alpha_over_n.to(x.dtype), knorm.to(x.dtype))
    total = tl.zeros(x.shape, x.dtype)
    for d in range(-half, half + 1):
        inside = mask & (c + d >= 0) & (c + d < channels)
        total += tl.load(T + tl.where(inside, index + d * inner, 0), mask=inside, other=0.0)
    dx = dy * tl.exp(-b * tl.log(s)) - 2.0 * alpha_over_n.to(x.dtype) * b * x * total
    store_result(DX, index, dx, mask, ACCUMULATE)


def scratch_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype of backward's scratch ``t``: the compute type."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _layout(fn: str, x: torch.Tensor, nsize: int) -> tuple[int, int, int]:
    """(elements, channels, positions per channel) of x, checked."""
    check_tensor(fn, "x", x, FLOAT_DTYPES)
    if x.dim() < 2:
        raise KernelArgumentError(f"{fn}: x must have a batch and a channel axis, got shape {tuple(x.shape)}")
    if not x.is_contiguous():
        raise KernelArgumentError(f"{fn}: x must be contiguous, got strides {x.stride()}")
    if nsize < 1 or nsize % 2 == 0:
        raise KernelArgumentError(f"{fn}: nsize={nsize} must be odd and positive (a window centred on its channel)")
    return x.numel(), x.shape[1], x.numel() // max(1, x.shape[0] * x.shape[1])


def _check_like(fn: str, x: torch.Tensor, **tensors: torch.Tensor) -> None:
    """Each of ``tensors`` contiguous of x's shape on its device, of x's dtype (the scratch
    ``t``: checked against ``scratch_dtype`` by its caller)."""
    for name, t in tensors.items():
        check_tensor(fn, name, t, FLOAT_DTYPES if name == "t" else (x.dtype,))
        if t.shape != x.shape or not t.is_contiguous() or t.device != x.device:
            raise KernelArgumentError(f"{fn}: {name} must be contiguous of x's shape {tuple(x.shape)} on {x.device}, "
                                      f"got shape {tuple(t.shape)} strides {t.stride()} on {t.device}")


def plan_lrn(x: torch.Tensor, y: torch.Tensor, nsize: int, alpha: float, beta: float, knorm: float) -> list[Launch]:
    """``y = x * s ** -beta`` (the module docstring's s) over the channels of axis 1."""
    fn = "LRN"
    n, channels, inner = _layout(fn, x, nsize)
    _check_like(fn, x, y=y)
    if n == 0:
        return []
    return [Launch(_lrn_forward_kernel, (triton.cdiv(n, ELEMENTWISE_BLOCK),),
                   [x, y, n, channels, inner, nsize // 2, alpha / nsize, float(beta), float(knorm)],
                   dict(BLOCK=ELEMENTWISE_BLOCK))]


def plan_lrn_backward(x: torch.Tensor, dy: torch.Tensor, t: torch.Tensor, dx: torch.Tensor, nsize: int, alpha: float,
                      beta: float, knorm: float, accumulate: bool = False) -> list[Launch]:
    """``dx`` (``accumulate``: ``+=``) from the output gradient ``dy``, through ``t``, scratch
    of x's shape in ``scratch_dtype(x.dtype)``."""
    fn = "LRN_backward"
    n, channels, inner = _layout(fn, x, nsize)
    _check_like(fn, x, dy=dy, dx=dx, t=t)
    if t.dtype != scratch_dtype(x.dtype):
        raise KernelArgumentError(f"{fn}: t must be {scratch_dtype(x.dtype)} for x of {x.dtype}, got {t.dtype}")
    if n == 0:
        return []
    scalars = [n, channels, inner, nsize // 2, alpha / nsize, float(beta), float(knorm)]
    grid = (triton.cdiv(n, ELEMENTWISE_BLOCK),)
    return [Launch(_lrn_terms_kernel, grid, [x, dy, t, *scalars], dict(BLOCK=ELEMENTWISE_BLOCK)),
            Launch(_lrn_backward_kernel, grid, [x, dy, t, dx, *scalars],
                   dict(ACCUMULATE=accumulate, BLOCK=ELEMENTWISE_BLOCK))]


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    """AlexNet's first LRN (96 channels of 55x55, nsize 5), or an irregular small one."""
    shape = (64, 96, 55, 55) if large else (3, 7, 5, 2)
    x = torch.empty(shape, dtype=dtype)
    y, t = torch.empty_like(x), torch.empty(shape, dtype=scratch_dtype(dtype))
    backward = plan_lrn_backward(x, y, t, y, 5, 1e-4, 0.75, 2.0)
    return [("LRN forward", plan_lrn(x, y, 5, 1e-4, 0.75, 2.0)[0]), ("LRN gradient terms", backward[0]),
            ("LRN backward", backward[1]),
            ("LRN backward added", plan_lrn_backward(x, y, t, y, 5, 1e-4, 0.75, 2.0, accumulate=True)[1])]
