"""Softmax cross entropy summed over rows (MXNet's ``softmax_cross_entropy``): for data
(rows, classes) and one class index a row, ``sum_r logsumexp(x_r) - x_r[label_r]``.

Forward is one program a row (its log-sum-exp found online over column blocks, softmax's
``_max_and_sum``), writing each row's loss, and the log-sum-exp itself for backward, then
one program summing the rows in order: deterministic, no atomics. Backward is one program
a row: ``(exp(x - lse) - onehot(label)) * dy``, the probabilities recomputed from the kept
log-sum-exp. A label that is not a whole number in [0, classes) makes its row's loss NaN
(so the sum is NaN) and its gradient NaN: a wrong label shows instead of reading another
row's logit.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._common import (
    FLOAT_DTYPES,
    INDEX_DTYPES,
    INTERPRET,
    KernelArgumentError,
    Launch,
    aligned,
    check_tensor,
    check_writable,
    contiguous_alignment,
    store,
    store_result,
)
from .attention import compute_dtype  # the kept log-sum-exp's dtype, as attention's
from .softmax import _max_and_sum

TESTS = ("tests/test_operators.py", "tests/test_gradcheck.py", "tests/test_cross_entropy.py")
MIN_BLOCK_C, MAX_BLOCK_C = 128, 2048  # columns a step of a row's loop: the row's, within these
SUM_BLOCK = 256  # rows a step of the sum


@triton.jit
def _label(LABEL, row, cols):
    """The row's label as a column (0 where invalid) and whether it is a whole number in range."""
    label = tl.load(LABEL + row + tl.zeros((1,), tl.int64)).to(tl.float64)
    valid = (label >= 0) & (label < cols) & (label == tl.floor(label))
    return tl.where(valid, label, 0.0).to(tl.int64), valid


@triton.jit
def _rows_kernel(X, LABEL, LOSS, LSE, cols, x_strides, HAS_LSE: tl.constexpr, BLOCK_C: tl.constexpr,
                 ALIGN: tl.constexpr):
    cols = aligned(cols, ALIGN)
    x_strides = (aligned(x_strides[0], ALIGN), x_strides[1])
    row = tl.program_id(0).to(tl.int64)
    x_row = row * x_strides[0]
    m, s = _max_and_sum(X, x_row, x_strides, 0, cols, cols, BLOCK_C, "")
    lse = m + tl.log(s)
    col, valid = _label(LABEL, row, cols)
    picked = tl.load(X + x_row + col * x_strides[1]).to(lse.dtype)
    one = tl.arange(0, 1)
    tl.store(LOSS + row + one, tl.where(valid, lse - picked, float("nan")))
    if HAS_LSE:
        tl.store(LSE + row + one, lse)


@triton.jit
def _sum_kernel(LOSS, OUT, rows, BLOCK: tl.constexpr):
    """One program: the rows' losses summed in order (the same bits every run)."""
    acc = tl.zeros((BLOCK,), LOSS.dtype.element_ty)
    for r0 in range(0, rows, BLOCK):
        r = r0 + tl.arange(0, BLOCK)
        acc += tl.load(LOSS + r, mask=r < rows, other=0.0)
    store(OUT, tl.arange(0, 1), tl.zeros((1,), acc.dtype) + tl.sum(acc, 0), tl.arange(0, 1) < 1)


@triton.jit
def _backward_kernel(X, LABEL, LSE, DY, DX, cols, x_strides, dx_strides, ACCUMULATE: tl.constexpr,
                     BLOCK_C: tl.constexpr, ALIGN: tl.constexpr):
    cols = aligned(cols, ALIGN)
    x_strides = (aligned(x_strides[0], ALIGN), x_strides[1])
    dx_strides = (aligned(dx_strides[0], ALIGN), dx_strides[1])
    row = tl.program_id(0).to(tl.int64)
    lse = tl.load(LSE + row + tl.zeros((1,), tl.int64))
    label, valid = _label(LABEL, row, cols)
    dy = tl.load(DY + tl.zeros((1,), tl.int64)).to(lse.dtype)
    for c0 in range(0, cols, BLOCK_C):
        col = c0 + tl.arange(0, BLOCK_C)
        mask = col < cols
        x = tl.load(X + row * x_strides[0] + col * x_strides[1], mask=mask, other=0.0).to(lse.dtype)
        d = (tl.exp(x - lse) - tl.where(col == label, 1.0, 0.0)) * dy
        d = tl.where(valid, d, float("nan"))
        store_result(DX, row * dx_strides[0] + col * dx_strides[1], d, mask, ACCUMULATE)


def _check(fn: str, x: torch.Tensor, label: torch.Tensor) -> tuple[int, int]:
    check_tensor(fn, "x", x, FLOAT_DTYPES)
    check_tensor(fn, "label", label, FLOAT_DTYPES + INDEX_DTYPES)
    if x.dim() != 2:
        raise KernelArgumentError(f"{fn}: x must be (rows, classes), got shape {tuple(x.shape)}")
    if tuple(label.shape) != (x.shape[0],) or not label.is_contiguous():
        raise KernelArgumentError(f"{fn}: label must be contiguous ({x.shape[0]},), one class a row of x "
                                  f"{tuple(x.shape)}; got {tuple(label.shape)}")
    return x.shape


def _row_launch(cols: int, *tensors: torch.Tensor) -> dict:
    """BLOCK_C, ALIGN and num_warps of a row's loop: a block as wide as the row (up to
    MAX_BLOCK_C), 16 columns a thread at most, so that a thread reads 16 bytes at a time
    where the rows are aligned (``contiguous_alignment``; a block of 128 columns over 128
    threads read 4 bytes, or 2, at a time)."""
    block = min(max(triton.next_power_of_2(max(cols, 1)), MIN_BLOCK_C), MAX_BLOCK_C)
    return dict(BLOCK_C=block, ALIGN=contiguous_alignment([t.stride(1) for t in tensors], cols,
                                                          *[t.stride(0) for t in tensors]),
                num_warps=max(1, min(8, block // 512)) if not INTERPRET else 4)


def _check_rows(fn: str, name: str, t: torch.Tensor, rows: int, dtype: torch.dtype) -> None:
    if tuple(t.shape) != (rows,) or t.dtype != dtype or not t.is_contiguous():
        raise KernelArgumentError(f"{fn}: {name} must be contiguous ({rows},) in {dtype}, got {tuple(t.shape)} "
                                  f"{t.dtype}")


def plan_cross_entropy(x: torch.Tensor, label: torch.Tensor, out: torch.Tensor, row_losses: torch.Tensor,
                       lse: torch.Tensor | None = None) -> list[Launch]:
    """``out[0] = sum_r logsumexp(x_r) - x_r[label_r]``; ``row_losses`` (rows,) in the compute
    dtype is the scratch of the rows' terms; ``lse`` (the same shape and dtype), when given,
    keeps each row's log-sum-exp for backward."""
    fn = "cross_entropy"
    rows, cols = _check(fn, x, label)
    ct = compute_dtype(x.dtype)
    _check_rows(fn, "row_losses", row_losses, rows, ct)
    if lse is not None:
        _check_rows(fn, "lse", lse, rows, ct)
    check_tensor(fn, "out", out, FLOAT_DTYPES)
    check_writable(fn, "out", out)
    if tuple(out.shape) != (1,):
        raise KernelArgumentError(f"{fn}: out must have shape (1,), got {tuple(out.shape)}")
    strides = (x.stride(0), x.stride(1))
    return [Launch(_rows_kernel, (rows,), [x, label, row_losses, row_losses if lse is None else lse, cols, strides],
                   dict(HAS_LSE=lse is not None, **_row_launch(cols, x))),
            Launch(_sum_kernel, (1,), [row_losses, out, rows], dict(BLOCK=SUM_BLOCK))]


def plan_cross_entropy_backward(x: torch.Tensor, label: torch.Tensor, lse: torch.Tensor, grad_out: torch.Tensor,
                                grad_x: torch.Tensor, accumulate: bool = False) -> list[Launch]:
    """``grad_x (+)= (softmax(x) - onehot(label)) * grad_out[0]``, from the kept ``lse``."""
    fn = "cross_entropy_backward"
    rows, cols = _check(fn, x, label)
    _check_rows(fn, "lse", lse, rows, compute_dtype(x.dtype))
    check_tensor(fn, "grad_out", grad_out, FLOAT_DTYPES)
    check_tensor(fn, "grad_x", grad_x, FLOAT_DTYPES)
    check_writable(fn, "grad_x", grad_x)
    if tuple(grad_out.shape) != (1,) or tuple(grad_x.shape) != tuple(x.shape):
        raise KernelArgumentError(f"{fn}: grad_out must be (1,) and grad_x {tuple(x.shape)}, got "
                                  f"{tuple(grad_out.shape)} and {tuple(grad_x.shape)}")
    return [Launch(_backward_kernel, (rows,), [x, label, lse, grad_out, grad_x, cols, (x.stride(0), x.stride(1)),
                                               (grad_x.stride(0), grad_x.stride(1))],
                   dict(ACCUMULATE=accumulate, **_row_launch(cols, x, grad_x)))]


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    rows, cols = (4096, 32000) if large else (5, 7)
    x = torch.empty(rows, cols, dtype=dtype)
    label = torch.zeros(rows, dtype=dtype)
    ct = compute_dtype(dtype)
    row_losses, lse = torch.empty(rows, dtype=ct), torch.empty(rows, dtype=ct)
    forward = plan_cross_entropy(x, label, torch.empty(1, dtype=dtype), row_losses, lse)
    return [("cross entropy rows", forward[0]), ("cross entropy sum", forward[1]),
            ("cross entropy backward",
             plan_cross_entropy_backward(x, label, lse, torch.empty(1, dtype=dtype), torch.empty_like(x))[0])]
