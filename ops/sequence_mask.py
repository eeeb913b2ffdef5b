"""Length masks: the positions of a sequence axis at or past each sequence's length replaced
by a value (MXNet's SequenceMask; softmax's ``use_length`` masks with -inf before the softmax
and zeroes the masked positions' gradients).

The data is seen as (outer, length, inner) around the sequence axis; a position's length is
read at ``outer_index * outer_stride + (inner_index // inner_div) * inner_stride``, which
covers softmax's lengths (one per row: the data's shape without the axis) and SequenceMask's
(one per batch entry, along the other of the first two axes). A length that is not a whole
number in [0, axis length] (NaN, 2.5, -1) makes its positions NaN in forward, so a wrong
length shows; backward passes no gradient there.
"""

from __future__ import annotations

import math

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
    load_wide,
    prepare_out,
    store_result,
)

TESTS = ("tests/test_operators.py", "tests/test_gradcheck.py", "tests/test_sequence_mask.py")


@triton.jit
def _length_mask_kernel(X, LENGTH, OUT, n, steps, inner, inner_div, outer_stride, inner_stride, value: tl.float64,
                        INVALID_NAN: tl.constexpr, ACCUMULATE: tl.constexpr, BLOCK: tl.constexpr):
    index, mask = element_block(n, BLOCK)
    i = index % inner
    rest = index // inner
    position = rest % steps
    o = rest // steps
    length = tl.load(LENGTH + o * outer_stride + (i // inner_div) * inner_stride, mask=mask, other=0).to(tl.float64)
    valid = (length >= 0) & (length <= steps) & (length == tl.floor(length))
    x = load_wide(X, index, mask, 0.0)
    r = tl.where(valid & (position.to(tl.float64) < length), x, value.to(x.dtype))
    if INVALID_NAN:
        r = tl.where(valid, r, float("nan"))
    store_result(OUT, index, r, mask, ACCUMULATE)


def _layout(fn: str, x: torch.Tensor, axis: int, length: torch.Tensor, batch_axis: int | None):
    """(steps, inner, inner_div, outer_stride, inner_stride) for data ``x`` masked along
    ``axis``; lengths per row (``batch_axis`` None: the data's shape without ``axis``) or per
    entry of ``batch_axis``."""
    check_tensor(fn, "length", length, FLOAT_DTYPES + INDEX_DTYPES)
    if not length.is_contiguous():
        raise KernelArgumentError(f"{fn}: length must be contiguous, got strides {length.stride()}")
    axis = axis % x.dim()
    steps, inner = x.shape[axis], math.prod(x.shape[axis + 1:])
    if batch_axis is None:
        want = tuple(d for k, d in enumerate(x.shape) if k != axis)
        if tuple(length.shape) != want:
            raise KernelArgumentError(f"{fn}: length has shape {tuple(length.shape)}; data {tuple(x.shape)} masked "
                                      f"along axis {axis} needs {want}")
        return steps, inner, 1, inner, 1
    batch_axis = batch_axis % x.dim()
    if tuple(length.shape) != (x.shape[batch_axis],):
        raise KernelArgumentError(f"{fn}: length has shape {tuple(length.shape)}; it needs one per entry of axis "
                                  f"{batch_axis} of data {tuple(x.shape)}: ({x.shape[batch_axis]},)")
    if batch_axis < axis:  # (batch..., steps, inner): the batch entry is the outer index
        if math.prod(x.shape[:batch_axis]) != 1 or math.prod(x.shape[batch_axis + 1:axis]) != 1:
            raise KernelArgumentError(f"{fn}: the batch axis {batch_axis} must be the only axis before axis {axis}")
        return steps, inner, 1, 1, 0
    if batch_axis != axis + 1:
        raise KernelArgumentError(f"{fn}: the batch axis {batch_axis} must follow the sequence axis {axis}")
    return steps, inner, math.prod(x.shape[batch_axis + 1:]), 0, 1


def plan_length_mask(x: torch.Tensor, length: torch.Tensor, out: torch.Tensor | None, axis: int, value: float,
                     batch_axis: int | None = None, accumulate: bool = False,
                     invalid_nan: bool = True) -> list[Launch]:
    """``out (+)= x`` with the positions along ``axis`` at or past their length set to ``value``
    (``invalid_nan``: NaN for lengths that are not whole numbers in [0, steps])."""
    fn = "length_mask"
    check_tensor(fn, "x", x)
    if not x.is_contiguous():
        raise KernelArgumentError(f"{fn}: x must be contiguous, got strides {x.stride()}")
    if not -x.dim() <= axis < x.dim():
        raise KernelArgumentError(f"{fn}: axis={axis} is out of range for shape {tuple(x.shape)}")
    steps, inner, inner_div, outer_stride, inner_stride = _layout(fn, x, axis, length, batch_axis)
    out = prepare_out(fn, "out", out, x.shape, x.dtype, x.device)
    if not out.is_contiguous():
        raise KernelArgumentError(f"{fn}: out must be contiguous, got strides {out.stride()}")
    n = x.numel()
    grid = (triton.cdiv(max(n, 1), ELEMENTWISE_BLOCK),)
    return [Launch(_length_mask_kernel, grid, [x, length, out, n, steps, inner, inner_div, outer_stride,
                                               inner_stride, float(value)],
                   dict(INVALID_NAN=invalid_nan, ACCUMULATE=accumulate, BLOCK=ELEMENTWISE_BLOCK))]


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    shape = (64, 16, 1024) if large else (5, 3, 7)
    x = torch.empty(shape, dtype=dtype)
    rows = torch.zeros(shape[0], shape[1], dtype=torch.int32)
    batch = torch.zeros(shape[1], dtype=dtype)
    return [("length mask of rows", plan_length_mask(x, rows, torch.empty_like(x), -1, float("-inf"))[0]),
            ("sequence mask", plan_length_mask(x, batch, torch.empty_like(x), 0, 0.0, batch_axis=1)[0]),
            ("sequence mask backward accumulating",
             plan_length_mask(x, batch, torch.empty_like(x), 0, 0.0, batch_axis=1, accumulate=True,
                              invalid_nan=False)[0])]
