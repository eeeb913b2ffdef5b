"""Nearest-neighbour upsampling of (N, C, H, W) data by whole factors (sh, sw): each output
element (y, x) copies the input element (y // sh, x // sw), into a channel slice of the
output (``out`` may be a view of a wider tensor: several inputs concatenated along the
channels) or added onto what it holds (several inputs summed).

The gradient of an input element is the sum of its sh x sw output block, read in a fixed
order by one program per input element: the same bits every run, no atomics. (Bilinear
upsampling is a transposed convolution with a fixed kernel: it runs on
``ops/deconvolution.py``.)
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
    check_writable,
    element_block,
    load_wide,
    store_result,
    unravel,
)

TESTS = ("tests/test_operators.py", "tests/test_gradcheck.py", "tests/test_upsampling.py")


@triton.jit
def _nearest_kernel(X, Y, n, C, H, W, OH, OW, y_batch_stride, SH, SW, ACCUMULATE: tl.constexpr,
                    BLOCK: tl.constexpr):
    index, mask = element_block(n, BLOCK)
    b, c, oy, ox = unravel(index, C, OH, OW)
    v = load_wide(X, ((b * C + c) * H + oy // SH) * W + ox // SW, mask, 0.0)
    store_result(Y, b * y_batch_stride + (c * OH + oy) * OW + ox, v, mask, ACCUMULATE)


@triton.jit
def _nearest_grad_kernel(DY, DX, n, C, H, W, OH, OW, dy_batch_stride, SH, SW, ACCUMULATE: tl.constexpr,
                         BLOCK: tl.constexpr):
    index, mask = element_block(n, BLOCK)
    b, c, i, j = unravel(index, C, H, W)
    corner = b * dy_batch_stride + (c * OH + i * SH) * OW + j * SW
    acc = load_wide(DY, corner, mask, 0.0)  # the block row by row
    for t in range(1, SW):
        acc += load_wide(DY, corner + t, mask, 0.0)
    for a in range(1, SH):
        for t in range(0, SW):
            acc += load_wide(DY, corner + a * OW + t, mask, 0.0)
    store_result(DX, index, acc, mask, ACCUMULATE)


def _check(fn: str, small: torch.Tensor, big: torch.Tensor, names: tuple[str, str]) -> tuple[int, int]:
    """``small`` (N, C, H, W), contiguous, and ``big`` (N, C, H * sh, W * sw), each image
    contiguous (a channel slice of a wider tensor is): the factors (sh, sw)."""
    for name, t in zip(names, (small, big)):
        check_tensor(fn, name, t, FLOAT_DTYPES)
        if t.dim() != 4:
            raise KernelArgumentError(f"{fn}: {name} of shape {tuple(t.shape)} must be (batch, channels, height, "
                                      f"width)")
    if small.dtype != big.dtype or small.device != big.device:
        raise KernelArgumentError(f"{fn}: {names[0]} ({small.dtype} on {small.device}) and {names[1]} ({big.dtype} on "
                                  f"{big.device}) must have one dtype and device")
    (n, c, h, w), (bn, bc, bh, bw) = small.shape, big.shape
    if (n, c) != (bn, bc) or min(h, w) < 1 or bh % h or bw % w:
        raise KernelArgumentError(f"{fn}: {names[1]} of shape {tuple(big.shape)} is not {names[0]} of shape "
                                  f"{tuple(small.shape)} upsampled by whole factors")
    if not small.is_contiguous():
        raise KernelArgumentError(f"{fn}: {names[0]} must be contiguous (strides {small.stride()})")
    if big.stride()[1:] != (bh * bw, bw, 1):
        raise KernelArgumentError(f"{fn}: {names[1]} must hold each sample contiguously (strides {big.stride()})")
    return bh // h, bw // w


def plan_nearest(x: torch.Tensor, out: torch.Tensor, accumulate: bool = False) -> list[Launch]:
    """``out (+)= x`` upsampled to ``out``'s height and width (whole multiples of x's) by
    copying; ``out`` may be a channel slice of a wider tensor."""
    fn = "upsampling nearest"
    sh, sw = _check(fn, x, out, ("x", "out"))
    check_writable(fn, "out", out)
    _, c, h, w = x.shape
    n = out.numel()
    return [Launch(_nearest_kernel, (triton.cdiv(max(n, 1), ELEMENTWISE_BLOCK),),
                   [x, out, n, c, h, w, out.shape[2], out.shape[3], out.stride(0), sh, sw],
                   dict(ACCUMULATE=accumulate, BLOCK=ELEMENTWISE_BLOCK))]


def plan_nearest_backward(dy: torch.Tensor, dx: torch.Tensor, accumulate: bool = False) -> list[Launch]:
    """``dx (+)=`` the gradient of ``plan_nearest`` from ``dy`` (which may be a channel slice):
    each element of dx the sum of its block of dy."""
    fn = "upsampling nearest backward"
    sh, sw = _check(fn, dx, dy, ("dx", "dy"))
    _, c, h, w = dx.shape
    n = dx.numel()
    return [Launch(_nearest_grad_kernel, (triton.cdiv(max(n, 1), ELEMENTWISE_BLOCK),),
                   [dy, dx, n, c, h, w, dy.shape[2], dy.shape[3], dy.stride(0), sh, sw],
                   dict(ACCUMULATE=accumulate, BLOCK=ELEMENTWISE_BLOCK))]


def bilinear_geometry(scale: int) -> dict:
    """The transposed convolution MXNet's bilinear upsampling by ``scale`` is, per axis:
    kernel 2 scale - scale % 2, stride scale, pad ceil((scale - 1) / 2); the output is
    exactly ``scale`` times the input."""
    return dict(kernel=2 * scale - scale % 2, stride=scale, pad=scale // 2)


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    n, c, h, w = (32, 64, 56, 56) if large else (2, 3, 5, 4)
    x = torch.empty(n, c, h, w, dtype=dtype)
    wide = torch.empty(n, 2 * c, 2 * h, 2 * w, dtype=dtype)
    return [("upsampling nearest", plan_nearest(x, wide[:, :c])[0]),
            ("upsampling nearest accumulating", plan_nearest(x, wide[:, c:], accumulate=True)[0]),
            ("upsampling nearest grad", plan_nearest_backward(wide[:, c:], x)[0]),
            ("upsampling nearest grad accumulating", plan_nearest_backward(wide[:, :c], x, accumulate=True)[0])]
