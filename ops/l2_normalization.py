"""L2 normalisation of rows: ``y = x / sqrt(sum(x**2) + eps)`` over each row, a contiguous
tensor seen as (outer, C, inner) as LayerNorm's kernels see it (a row: one (outer, inner)
pair, its C elements ``inner`` apart).

The sum of squares overflows float32 from |x| ~ 1e19 and float64 from ~1e154, and
underflows below their square roots' tiny ends: forward first finds each row's largest
magnitude m and sums ``(x / m)**2``, then ``sqrt(sum(x**2) + eps) = m * sqrt(S + eps / m**2)``,
all in float64 whatever the data's dtype, so a row of float32 values near 3e38 normalises
as one of ones does. A training forward keeps each row's ``r = 1 / sqrt(sum(x**2) + eps)``
(float64).

Backward: ``dx = r * (dy - y * sum(dy * y))`` with ``y = x * r``, one row per program (or a
tile of short ones), in float64; no cross-row sums, so the same bits every run.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._common import KernelArgumentError, Launch, check_contiguous_like, check_tensor, store, store_result
from .layer_norm import _tile, _tile_offsets

TESTS = ("tests/test_operators.py", "tests/test_gradcheck.py", "tests/test_l2_normalization.py")


@triton.jit
def _row_rstd(X, rows, row_ok, C, INNER, eps, TILE_ROWS: tl.constexpr, BLOCK: tl.constexpr):
    """Each row's 1 / sqrt(sum(x**2) + eps), in float64, from its largest magnitude."""
    largest = tl.zeros((TILE_ROWS, BLOCK), tl.float64)
    for start in range(0, C, BLOCK):
        offsets, mask, _ = _tile_offsets(rows, row_ok, start, C, INNER, BLOCK)
        x = tl.load(X + offsets, mask=mask, other=0.0).to(tl.float64)
        largest = tl.maximum(largest, tl.abs(x))
    # A NaN (or an infinity: inf * 0) in the row makes its sum S NaN below, whatever m is.
    m = tl.max(largest, axis=1)
    unit = 1.0 / tl.where(m > 0, m, 1.0)  # an all-zero row: sqrt(eps)
    squares = tl.zeros((TILE_ROWS, BLOCK), tl.float64)
    for start in range(0, C, BLOCK):
        offsets, mask, _ = _tile_offsets(rows, row_ok, start, C, INNER, BLOCK)
        scaled = tl.load(X + offsets, mask=mask, other=0.0).to(tl.float64) * unit[:, None]
        squares += scaled * scaled
    s = tl.sum(squares, axis=1)
    eps = eps.to(tl.float64)
    # m is 0 for a row of zeros (sqrt(eps); s * 0 keeps a NaN of s where m > 0 failed on one).
    norm = tl.where(m > 0, m * tl.sqrt(s + eps * unit * unit), tl.sqrt(eps + s * 0.0))
    return 1.0 / norm


@triton.jit
def _forward_kernel(X, Y, KEPT_RSTD, ROWS, C, INNER, eps: tl.float64, KEEP: tl.constexpr, TILE_ROWS: tl.constexpr,
                    BLOCK: tl.constexpr):
    rows = tl.program_id(0).to(tl.int64) * TILE_ROWS + tl.arange(0, TILE_ROWS)
    row_ok = rows < ROWS
    rstd = _row_rstd(X, rows, row_ok, C, INNER, eps, TILE_ROWS, BLOCK)
    for start in range(0, C, BLOCK):
        offsets, mask, _ = _tile_offsets(rows, row_ok, start, C, INNER, BLOCK)
        x = tl.load(X + offsets, mask=mask, other=0.0).to(tl.float64)
        store(Y, offsets, x * rstd[:, None], mask)
    if KEEP:
        store(KEPT_RSTD, rows, rstd, row_ok)


@triton.jit
def _backward_kernel(X, DY, RSTD, DX, ROWS, C, INNER, ACCUMULATE: tl.constexpr, TILE_ROWS: tl.constexpr,
                     BLOCK: tl.constexpr):
    rows = tl.program_id(0).to(tl.int64) * TILE_ROWS + tl.arange(0, TILE_ROWS)
    row_ok = rows < ROWS
    rstd = tl.load(RSTD + rows, mask=row_ok, other=0.0).to(tl.float64)
    dots = tl.zeros((TILE_ROWS, BLOCK), tl.float64)
    for start in range(0, C, BLOCK):
        offsets, mask, _ = _tile_offsets(rows, row_ok, start, C, INNER, BLOCK)
        y = tl.load(X + offsets, mask=mask, other=0.0).to(tl.float64) * rstd[:, None]
        dots += tl.load(DY + offsets, mask=mask, other=0.0).to(tl.float64) * y
    dot = tl.sum(dots, axis=1)
    for start in range(0, C, BLOCK):
        offsets, mask, _ = _tile_offsets(rows, row_ok, start, C, INNER, BLOCK)
        y = tl.load(X + offsets, mask=mask, other=0.0).to(tl.float64) * rstd[:, None]
        dy = tl.load(DY + offsets, mask=mask, other=0.0).to(tl.float64)
        store_result(DX, offsets, rstd[:, None] * (dy - y * dot[:, None]), mask, ACCUMULATE)


def _rows(fn: str, x: torch.Tensor, first: int, last: int, kept: torch.Tensor | None) -> tuple[int, int, int]:
    """(C, inner, rows) of x normalised over its axes ``first`` .. ``last`` (``row_layout``);
    x contiguous, ``kept`` one float64 per row."""
    check_tensor(fn, "x", x)
    if not x.is_contiguous():
        raise KernelArgumentError(f"{fn}: x must be contiguous, got strides {x.stride()}")
    columns, inner, rows = row_layout(x.shape, first, last)
    if kept is not None:
        check_tensor(fn, "rstd", kept, (torch.float64,))
        if kept.numel() != rows or not kept.is_contiguous() or kept.device != x.device:
            raise KernelArgumentError(f"{fn}: rstd must be {rows} contiguous float64 values on {x.device}, got "
                                      f"shape {tuple(kept.shape)}")
    return columns, inner, rows


def row_layout(shape, first: int, last: int) -> tuple[int, int, int]:
    """(C, inner, rows): rows of the axes ``first`` .. ``last`` (consecutive, together) of a
    contiguous tensor of ``shape``."""
    if not 0 <= first <= last < len(shape):
        raise KernelArgumentError(f"l2_normalization: axes {first} .. {last} are not axes of shape {tuple(shape)}")
    outer = inner = columns = 1
    for d, n in enumerate(shape):
        if d < first:
            outer *= n
        elif d > last:
            inner *= n
        else:
            columns *= n
    return columns, inner, outer * inner


def plan_l2_normalization(x: torch.Tensor, out: torch.Tensor, *, first: int, last: int, eps: float,
                          kept_rstd: torch.Tensor | None = None) -> list[Launch]:
    """``out = x / sqrt(sum(x**2) + eps)`` over the axes ``first`` .. ``last`` of x;
    ``kept_rstd`` (for backward) takes each row's ``1 / sqrt(sum(x**2) + eps)``."""
    fn = "l2_normalization"
    columns, inner, rows = _rows(fn, x, first, last, kept_rstd)
    check_contiguous_like(fn, x, out=out)
    if rows == 0 or columns == 0:
        return []
    tile_rows, block = _tile(columns)
    return [Launch(_forward_kernel, (triton.cdiv(rows, tile_rows),),
                   [x, out, x if kept_rstd is None else kept_rstd, rows, columns, inner, float(eps)],
                   dict(KEEP=kept_rstd is not None, TILE_ROWS=tile_rows, BLOCK=block))]


def plan_l2_normalization_backward(x: torch.Tensor, grad_out: torch.Tensor, rstd: torch.Tensor,
                                   grad_x: torch.Tensor, *, first: int, last: int,
                                   accumulate: bool = False) -> list[Launch]:
    """``grad_x (+)=`` the gradient of ``plan_l2_normalization`` from ``grad_out``, with the
    rows' kept ``rstd``."""
    fn = "l2_normalization_backward"
    columns, inner, rows = _rows(fn, x, first, last, rstd)
    check_contiguous_like(fn, x, grad_out=grad_out, grad_x=grad_x)
    if rows == 0 or columns == 0:
        return []
    tile_rows, block = _tile(columns)
    return [Launch(_backward_kernel, (triton.cdiv(rows, tile_rows),), [x, grad_out, rstd, grad_x, rows, columns, inner],
                   dict(ACCUMULATE=accumulate, TILE_ROWS=tile_rows, BLOCK=block))]


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    shape = (32, 256, 28, 28) if large else (3, 5, 4, 2)
    x, dx = torch.empty(shape, dtype=dtype), torch.empty(shape, dtype=dtype)
    launches = []
    for mode, (first, last) in (("instance", (1, 3)), ("channel", (1, 1)), ("spatial", (2, 3))):
        rows = row_layout(shape, first, last)[2]
        rstd = torch.empty(rows, dtype=torch.float64)
        launches += [(f"l2 normalization {mode}", plan_l2_normalization(x, torch.empty_like(x), first=first,
                                                                          last=last, eps=1e-10, kept_rstd=rstd)[0]),
                     (f"l2 normalization {mode} grad", plan_l2_normalization_backward(
                         x, torch.empty_like(x), rstd, dx, first=first, last=last, accumulate=mode == "channel")[0])]
    return launches
