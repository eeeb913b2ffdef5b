"""Bilinear resizing of (N, C, H, W) data to (OH, OW) (MXNet's ``contrib.BilinearResize2D``):
output element (oy, ox) interpolates the input at a source position per axis, taken as
MXNet takes it:

- ``align_corners``: ``o (L - 1) / (OL - 1)`` (the corners of both grids meet);
- otherwise: ``max((o + 0.5) L / OL - 0.5, 0)`` (pixel centres scaled);
- 0 where OL is 1 (either way).

Each is a ratio of integers ``max(o m + a, 0) / d`` (``source_fraction``), so the kernels
take the row ``num // d`` and its weight ``(num % d) / d`` exactly, where MXNet rounds the
scale to float32 first; the next row is clamped to the last. A neighbour of weight 0 is
not read (an exact grid point is the grid value, even beside a NaN).

Forward: one thread per output element, 4 loads. Backward: one thread per input element
gathers ``weight * dy`` from every output whose taps hold it, the outputs from the first
whose row is at least y - 1 (solved from the same integers), at most ``cover_h x cover_w``
of them (counted on the host with the kernels' own arithmetic), in a fixed order: the same
bits every run and no atomics.
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

TESTS = ("tests/test_operators.py", "tests/test_gradcheck.py", "tests/test_bilinear_resize.py")


def source_fraction(length: int, out_length: int, align_corners: bool) -> tuple[int, int, int]:
    """(m, a, d): output index o samples the input at ``max(o m + a, 0) / d``."""
    if out_length == 1:
        return 0, 0, 1
    if align_corners:
        return length - 1, 0, out_length - 1
    return 2 * length, length - out_length, 2 * out_length


@triton.jit
def _tap(o, M, A, D, LENGTH, LIKE):
    """Output index o's rows (first, next) and the next one's weight, in LIKE's compute type."""
    num = tl.maximum(o * M + A, 0)
    first = num // D
    weight = widen(num - first * D, LIKE) / D
    return first, tl.minimum(first + 1, LENGTH - 1), weight


@triton.jit
def _forward_kernel(X, Y, n, C, H, W, OH, OW, MH, AH, DH, MW, AW, DW, ACCUMULATE: tl.constexpr,
                    BLOCK: tl.constexpr):
    index, mask = element_block(n, BLOCK)
    b, c, oy, ox = unravel(index, C, OH, OW)
    y0, y1, wy = _tap(oy, MH, AH, DH, H, X)
    x0, x1, wx = _tap(ox, MW, AW, DW, W, X)
    image = (b * C + c) * H * W
    down, right = mask & (wy > 0), mask & (wx > 0)
    top = ((1 - wx) * load_wide(X, image + y0 * W + x0, mask, 0.0)
           + wx * load_wide(X, image + y0 * W + x1, right, 0.0))
    bottom = ((1 - wx) * load_wide(X, image + y1 * W + x0, down, 0.0)
              + wx * load_wide(X, image + y1 * W + x1, down & right, 0.0))
    store_result(Y, index, (1 - wy) * top + tl.where(down, wy * bottom, 0.0), mask, ACCUMULATE)


@triton.jit
def _first_output(i, M, A, D):
    """The first output index whose first row is at least i - 1 (0 where every one's is):
    the least o with o M + A >= (i - 1) D. (For row 1, outputs before it whose position
    clamps to 0 read row 1 with weight 0: skipping them loses nothing.)"""
    need = (i - 1) * D - A
    return tl.where((i >= 1) & (need > 0), (need + M - 1) // tl.maximum(M, 1), 0)


@triton.jit
def _share(o, i, M, A, D, LENGTH, LIKE):
    """The weight output index o gives input row i (0 where it does not read it)."""
    first, next_row, weight = _tap(o, M, A, D, LENGTH, LIKE)
    return tl.where(first == i, 1 - weight, 0.0) + tl.where((next_row == i) & (weight > 0), weight, 0.0)


@triton.jit
def _backward_kernel(DY, DX, n, C, H, W, OH, OW, MH, AH, DH, MW, AW, DW, COVER_H, COVER_W,
                     ACCUMULATE: tl.constexpr, BLOCK: tl.constexpr):
    index, mask = element_block(n, BLOCK)
    b, c, y, x = unravel(index, C, H, W)
    first_oy = _first_output(y, MH, AH, DH)
    first_ox = _first_output(x, MW, AW, DW)
    outputs = (b * C + c) * OH * OW
    acc = widen(tl.zeros((BLOCK,), tl.float32), DX)
    for di in range(0, COVER_H):
        oy = first_oy + di
        share_y = _share(oy, y, MH, AH, DH, H, DX)
        for dj in range(0, COVER_W):
            ox = first_ox + dj
            share = share_y * _share(ox, x, MW, AW, DW, W, DX)
            reads = mask & (oy < OH) & (ox < OW) & (share > 0)
            acc += tl.where(reads, share * load_wide(DY, outputs + oy * OW + ox, reads, 0.0), 0.0)
    store_result(DX, index, acc, mask, ACCUMULATE)


def cover(length: int, out_length: int, align_corners: bool) -> int:
    """The most output indices, from ``_first_output`` on, that the gather of one input row
    must visit to pass every output reading it (the kernels' integer arithmetic)."""
    m, a, d = source_fraction(length, out_length, align_corners)
    most = 1
    o = 0
    for i in range(length):
        need = (i - 1) * d - a
        start = (need + m - 1) // max(m, 1) if i >= 1 and need > 0 else 0
        o = max(o, start)
        while o < out_length and max(o * m + a, 0) // d <= i:  # outputs whose first row is i - 1 or i
            o += 1
        most = max(most, o - start)
    return most


def _geometry(data: torch.Tensor, resized: torch.Tensor, align_corners: bool) -> list[int]:
    """The kernels' sizes and each axis's (m, a, d)."""
    (_, c, h, w), (oh, ow) = data.shape, resized.shape[2:]
    return [c, h, w, oh, ow, *source_fraction(h, oh, align_corners), *source_fraction(w, ow, align_corners)]


def plan_bilinear_resize(x: torch.Tensor, out: torch.Tensor, *, align_corners: bool = True,
                         accumulate: bool = False) -> list[Launch]:
    """``out (+)=`` x resized to out's height and width by bilinear interpolation."""
    fn = "bilinear_resize"
    check_image_pair(fn, x, out, ("x", "out"))
    check_writable(fn, "out", out)
    n = out.numel()
    return [Launch(_forward_kernel, (triton.cdiv(max(n, 1), ELEMENTWISE_BLOCK),),
                   [x, out, n, *_geometry(x, out, align_corners)],
                   dict(ACCUMULATE=accumulate, BLOCK=ELEMENTWISE_BLOCK))]


def plan_bilinear_resize_backward(dy: torch.Tensor, dx: torch.Tensor, *, align_corners: bool = True,
                                  accumulate: bool = False) -> list[Launch]:
    """``dx (+)=`` the gradient of ``plan_bilinear_resize`` from ``dy``."""
    fn = "bilinear_resize backward"
    check_image_pair(fn, dx, dy, ("dx", "dy"))
    check_writable(fn, "dx", dx)
    (h, w), (oh, ow) = dx.shape[2:], dy.shape[2:]
    n = dx.numel()
    return [Launch(_backward_kernel, (triton.cdiv(max(n, 1), ELEMENTWISE_BLOCK),),
                   [dy, dx, n, *_geometry(dx, dy, align_corners), cover(h, oh, align_corners),
                    cover(w, ow, align_corners)], dict(ACCUMULATE=accumulate, BLOCK=ELEMENTWISE_BLOCK))]


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    # DeepLab's decoder: a 64 x 64 map to 4x its size (and, small, an irregular up- and downsizing)
    n, c, h, w = (8, 256, 64, 64) if large else (2, 3, 5, 7)
    x = torch.empty(n, c, h, w, dtype=dtype)
    up = torch.empty(n, c, 4 * h, 4 * w, dtype=dtype) if large else torch.empty(n, c, 9, 4, dtype=dtype)
    return [("bilinear_resize", plan_bilinear_resize(x, up)[0]),
            ("bilinear_resize accumulating", plan_bilinear_resize(x, up, align_corners=False, accumulate=True)[0]),
            ("bilinear_resize grad", plan_bilinear_resize_backward(up, x)[0]),
            ("bilinear_resize grad accumulating", plan_bilinear_resize_backward(up, x, accumulate=True)[0])]
