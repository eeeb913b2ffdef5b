"""Adaptive average pooling of (N, C, H, W) data to (OH, OW) cells (MXNet's
``contrib.AdaptiveAvgPooling2D``, PyTorch's ``adaptive_avg_pool2d``): cell (i, j) is the mean
of rows [floor(i H / OH), ceil((i + 1) H / OH)) and of the columns likewise, windows that
overlap where OH does not divide H and repeat rows where OH exceeds H.

Forward: one thread per output element sums its window. Backward: one thread per input
element gathers ``dy / area`` from every cell whose window holds it, the cells
[floor(y OH / H), ceil((y + 1) OH / H)) by rows and likewise by columns, at most
``cover_h x cover_w`` of them (counted on the host), in a fixed order: the same bits every
run and no atomics.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._common import (
    ELEMENTWISE_BLOCK,
    Launch,
    check_image_pair,
    check_writable,
    element_block,
    load_wide,
    store_result,
    unravel,
    widen,
)

TESTS = ("tests/test_operators.py", "tests/test_gradcheck.py", "tests/test_adaptive_pooling.py")


@triton.jit
def _window(i, length, cells):
    """The rows [start, end) of cell i of ``cells`` over ``length`` rows."""
    return (i * length) // cells, ((i + 1) * length + cells - 1) // cells


@triton.jit
def _forward_kernel(X, Y, n, C, H, W, OH, OW, MAX_KH, MAX_KW, ACCUMULATE: tl.constexpr, BLOCK: tl.constexpr):
    index, mask = element_block(n, BLOCK)
    b, c, oy, ox = unravel(index, C, OH, OW)
    top, bottom = _window(oy, H, OH)
    left, right = _window(ox, W, OW)
    image = (b * C + c) * H * W
    acc = widen(tl.zeros((BLOCK,), tl.float32), X)
    for dy in range(0, MAX_KH):
        for dx in range(0, MAX_KW):
            inside = mask & (top + dy < bottom) & (left + dx < right)
            acc += load_wide(X, image + (top + dy) * W + left + dx, inside, 0.0)
    area = ((bottom - top) * (right - left)).to(acc.dtype)
    store_result(Y, index, acc / area, mask, ACCUMULATE)


@triton.jit
def _backward_kernel(DY, DX, n, C, H, W, OH, OW, COVER_H, COVER_W, ACCUMULATE: tl.constexpr, BLOCK: tl.constexpr):
    index, mask = element_block(n, BLOCK)
    b, c, y, x = unravel(index, C, H, W)
    first_i, end_i = _window(y, OH, H)  # the cells whose rows hold row y
    first_j, end_j = _window(x, OW, W)
    cells = (b * C + c) * OH * OW
    acc = widen(tl.zeros((BLOCK,), tl.float32), DX)
    for di in range(0, COVER_H):
        i = first_i + di
        top, bottom = _window(i, H, OH)
        for dj in range(0, COVER_W):
            j = first_j + dj
            left, right = _window(j, W, OW)
            holds = mask & (i < end_i) & (j < end_j)
            grad = load_wide(DY, cells + i * OW + j, holds, 0.0)
            acc += tl.where(holds, grad / ((bottom - top) * (right - left)).to(acc.dtype), 0.0)
    store_result(DX, index, acc, mask, ACCUMULATE)


def _most(length: int, cells: int) -> int:
    """The most rows one of ``cells`` windows over ``length`` rows holds (and, with the
    arguments swapped, the most cells that hold one row)."""
    return max(-(-(i + 1) * length // cells) - i * length // cells for i in range(cells))


def plan_adaptive_avg_pool(x: torch.Tensor, out: torch.Tensor, accumulate: bool = False) -> list[Launch]:
    """``out (+)=`` x averaged over out's (OH, OW) adaptive windows."""
    fn = "adaptive_avg_pool"
    check_image_pair(fn, x, out, ("x", "out"))
    check_writable(fn, "out", out)
    (_, c, h, w), (oh, ow) = x.shape, out.shape[2:]
    n = out.numel()
    return [Launch(_forward_kernel, (triton.cdiv(max(n, 1), ELEMENTWISE_BLOCK),),
                   [x, out, n, c, h, w, oh, ow, _most(h, oh), _most(w, ow)],
                   dict(ACCUMULATE=accumulate, BLOCK=ELEMENTWISE_BLOCK))]


def plan_adaptive_avg_pool_backward(dy: torch.Tensor, dx: torch.Tensor, accumulate: bool = False) -> list[Launch]:
    """``dx (+)=`` the gradient of ``plan_adaptive_avg_pool`` from ``dy``."""
    fn = "adaptive_avg_pool backward"
    check_image_pair(fn, dx, dy, ("dx", "dy"))
    check_writable(fn, "dx", dx)
    (_, c, h, w), (oh, ow) = dx.shape, dy.shape[2:]
    n = dx.numel()
    return [Launch(_backward_kernel, (triton.cdiv(max(n, 1), ELEMENTWISE_BLOCK),),
                   [dy, dx, n, c, h, w, oh, ow, _most(oh, h), _most(ow, w)],
                   dict(ACCUMULATE=accumulate, BLOCK=ELEMENTWISE_BLOCK))]


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    # PSPNet's pyramid: a 60 x 60 map pooled to 6 x 6 (and back over overlapping windows at 7 x 5)
    n, c, h, w = (16, 512, 60, 60) if large else (2, 3, 7, 5)
    x = torch.empty(n, c, h, w, dtype=dtype)
    cells, uneven = torch.empty(n, c, 6, 6, dtype=dtype), torch.empty(n, c, 4, 3, dtype=dtype)
    return [("adaptive_avg_pool", plan_adaptive_avg_pool(x, cells)[0]),
            ("adaptive_avg_pool overlapping windows accumulating", plan_adaptive_avg_pool(x, uneven, True)[0]),
            ("adaptive_avg_pool grad", plan_adaptive_avg_pool_backward(cells, x)[0]),
            ("adaptive_avg_pool grad accumulating", plan_adaptive_avg_pool_backward(uneven, x, True)[0])]
