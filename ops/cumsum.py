"""cumsum: the running sum along one axis (MXNet's ``cumsum``), and its gradient, the running
sum of the output gradient taken from the axis's far end.

The data is seen as (outer, length, inner) around the axis. Each program takes a block of
lines and walks the axis in tiles: ``tl.cumsum`` within a tile, plus the running total of
the tiles before (the last sum of the previous tile itself, so the sums never step back).
Floats are summed in float64 whatever their dtype and rounded to the output's at the store,
so a long float32 axis keeps its digits (bfloat16 goes through float32, as every store
here); integers in int64. NaN and the infinities propagate as in any sum.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from ._common import (
    FLOAT_DTYPES,
    INDEX_DTYPES,
    INTERPRET,
    KernelArgumentError,
    Launch,
    along_axis,
    check_tensor,
    prepare_out,
    store_result,
)

TESTS = ("tests/test_operators.py", "tests/test_cumsum.py")
# A program's tile of (lines, elements along the axis); the interpreter prefers few large ones.
TILE = 1 << 14 if INTERPRET else 4096
INTEGER_DTYPES = (torch.int8, torch.int32, torch.int64)


@triton.jit
def _cumsum_kernel(X, OUT, n, length, inner, REVERSE: tl.constexpr, INTEGER: tl.constexpr,
                   ACCUMULATE: tl.constexpr, BLOCK_LINES: tl.constexpr, BLOCK_AXIS: tl.constexpr):
    lines = tl.program_id(0).to(tl.int64) * BLOCK_LINES + tl.arange(0, BLOCK_LINES)
    in_range = lines < n
    base = (lines // inner) * length * inner + lines % inner
    if INTEGER:
        total = tl.zeros((BLOCK_LINES,), tl.int64)
    else:
        total = tl.zeros((BLOCK_LINES,), tl.float64)
    tiles = tl.cdiv(length, BLOCK_AXIS)
    for k in range(0, tiles):
        # The gradient walks the tiles from the far end, each read in ascending addresses (wide
        # loads) and summed from its end by the scan itself.
        start = ((tiles - 1 - k) if REVERSE else k) * BLOCK_AXIS
        r = start + tl.arange(0, BLOCK_AXIS).to(tl.int64)
        mask = in_range[:, None] & (r < length)[None, :]
        offsets = base[:, None] + r[None, :] * inner
        v = tl.load(X + offsets, mask=mask, other=0).to(total.dtype)
        sums = tl.cumsum(v, axis=1, reverse=REVERSE) + total[:, None]
        store_result(OUT, offsets, sums, mask, ACCUMULATE)
        edge = start if REVERSE else tl.minimum(start + BLOCK_AXIS, length) - 1  # the tile's last sum
        total = tl.sum(tl.where(r[None, :] == edge, sums, 0), axis=1)


def _pow2(v: int) -> int:
    return 1 << max(0, math.ceil(math.log2(max(v, 1))))


def plan_cumsum(x: torch.Tensor, out: torch.Tensor, axis: int | None, reverse: bool = False,
                accumulate: bool = False) -> list[Launch]:
    """``out (+)= `` the running sums of ``x`` along ``axis`` (None: the flattened data),
    from the far end with ``reverse`` (the gradient). ``x`` and ``out`` are contiguous, of
    x's number of elements; floats are summed in float64, integers in int64."""
    fn = "cumsum"
    check_tensor(fn, "x", x, FLOAT_DTYPES + INTEGER_DTYPES)
    check_tensor(fn, "out", out, FLOAT_DTYPES + INDEX_DTYPES)
    if not x.is_contiguous():
        raise KernelArgumentError(f"{fn}: x must be contiguous, got strides {x.stride()}")
    if axis is not None and not -x.dim() <= axis < x.dim():
        raise KernelArgumentError(f"{fn}: axis={axis} is out of range for x of shape {tuple(x.shape)}")
    integer = not out.dtype.is_floating_point
    if integer and x.dtype.is_floating_point:
        raise KernelArgumentError(f"{fn}: running sums of {x.dtype} values into {out.dtype} would drop their "
                                  f"fractions; give a float dtype")
    prepare_out(fn, "out", out, out.shape, out.dtype, x.device)
    if out.numel() != x.numel() or not out.is_contiguous():
        raise KernelArgumentError(f"{fn}: out must be contiguous with {x.numel()} elements, got shape "
                                  f"{tuple(out.shape)} strides {out.stride()}")
    if x.numel() == 0:
        return []
    shape = (x.numel(),) if axis is None else tuple(x.shape)
    length, inner, count = along_axis(shape, 0 if axis is None else axis)
    block_axis = min(_pow2(length), TILE)
    block_lines = max(1, min(TILE // block_axis, _pow2(count)))
    return [Launch(_cumsum_kernel, (triton.cdiv(count, block_lines),), [x, out, count, length, inner],
                   dict(REVERSE=reverse, INTEGER=integer, ACCUMULATE=accumulate, BLOCK_LINES=block_lines,
                        BLOCK_AXIS=block_axis))]


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    """A running sum over the last axis (positions from a mask), its gradient accumulating,
    and one over a middle axis."""
    shape = (4096, 8192) if large else (5, 7, 3)
    x = torch.empty(shape, dtype=dtype)
    launches = [("cumsum last axis", plan_cumsum(x, torch.empty_like(x), -1)[0]),
                ("cumsum gradient", plan_cumsum(x, torch.empty_like(x), -1, reverse=True, accumulate=True)[0]),
                ("cumsum middle axis", plan_cumsum(x, torch.empty_like(x), 1)[0])]
    if dtype == torch.float32:
        mask = torch.empty(shape, dtype=torch.int32)
        launches.append(("cumsum int32 into int64", plan_cumsum(mask, torch.empty(shape, dtype=torch.int64), -1)[0]))
    return launches
