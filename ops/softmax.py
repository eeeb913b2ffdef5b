"""Softmax and log-softmax along one axis, forward and backward.

A tensor is seen as (outer, axis, inner): a "row" is one (outer, inner) pair and its
``axis`` elements, so any axis of any strided tensor works without a copy. A row that
fits one block is read once and written once; wider rows take an online pass (running
max and rescaled sum, Milakov & Gimelshein 2018) and a second pass that writes, instead
of spilling registers. In the loops each lane keeps its own running max and sum (its own
sum of dy * y in backward), so a step is elementwise, with nothing to wait for across
warps, and the lanes are reduced once per row.

The looped kernels for wide rows are autotuned on a GPU between one program per row and a
persistent grid (one program per SM, each taking rows in turn) whose first pass asks L2
to keep the row (``evict_last``) and whose second pass reads and writes it as streaming
data (``evict_first``): with one row per SM in flight the rows fit in L2, so the second
pass can come from L2 instead of memory. Which one wins depends on the row width and the
GPU, so the autotuner measures it.

A few wide rows would leave most SMs idle at one program per row (8 rows of 256K columns
on a 132-SM H100: 8 busy SMs). Below ``SPLIT_BELOW_ROWS`` rows a wide row is cut into
chunks, one program each: a first launch writes each chunk's running max and sum (its
partial sum of ``dy * y`` in backward) into a small ``stats`` buffer, and a second
combines its row's partials and writes its chunk. The same three passes over the data
as the looped kernels, spread over hundreds of programs. ``split_stats`` gives the
buffer's shape, so that a bound network plans it like any other scratch buffer.

A row whose entries are all ``-inf`` has no probability mass: softmax gives 0 and
log-softmax ``-inf`` there, never NaN.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import triton
import triton.language as tl

from ._common import (
    AUTOTUNE,
    AUTOTUNE_OPTIONS,
    INTERPRET,
    KernelArgumentError,
    Launch,
    aligned,
    aligned_strides,
    cast_for,
    check_same,
    check_tensor,
    contiguous_alignment,
    overlap,
    persistent_programs,
    prepare_out,
    run,
    store,
    store_result,
)

# Elements one program holds at once. The interpreter wants few, large programs; on a
# GPU a row of up to 32K columns stays in registers (32 warps: 32 values a thread), so it
# is read once; wider rows loop.
MAX_BLOCK = 1 << 16 if INTERPRET else 32768
LOOP_BLOCK = 1 << 14 if INTERPRET else 4096
# Where nothing is autotuned (the interpreter, TRITONSYM_AUTOTUNE=0) the looped kernels run
# one program per row with LOOP_BLOCK columns a step, unless this says persistent.
UNTUNED_PERSISTENT = False
# Looped rows fewer than SPLIT_BELOW_ROWS (one per SM or fewer on an H100) are split into
# chunks of at least SPLIT_MIN_STEPS loop steps, enough for about SPLIT_PROGRAMS programs
# (four per SM). The interpreter splits rows of one or two so that its tests take both paths.
SPLIT_BELOW_ROWS = 3 if INTERPRET else 128
SPLIT_PROGRAMS = 8 if INTERPRET else 512
SPLIT_MIN_STEPS = 1 if INTERPRET else 2


def _looped_configs() -> list[triton.Config]:
    """(PERSISTENT, BLOCK_C, warps) for rows wider than MAX_BLOCK: the one-program-per-row
    loop first (the untuned choice), then persistent programs of 16 and 32 warps."""
    return [
        triton.Config({"PERSISTENT": False, "BLOCK_C": 4096}, num_warps=8),
        triton.Config({"PERSISTENT": False, "BLOCK_C": 8192}, num_warps=16),
        triton.Config({"PERSISTENT": True, "BLOCK_C": 8192}, num_warps=16),
        triton.Config({"PERSISTENT": True, "BLOCK_C": 16384}, num_warps=32),
    ]


def _looped_autotune(restore: list[str]):
    # restore_value: tuning runs the kernel several times, which must not add into an
    # accumulated gradient more than once.
    return triton.autotune(configs=_looped_configs(), key=["rows_total", "cols", "LOG"], restore_value=restore,
                           **AUTOTUNE_OPTIONS)


@triton.jit
def row_offsets(rows, inner, strides):
    """Offset of element 0 of each (outer, inner) row; ``strides`` is a tensor's
    (outer, axis, inner) strides, as ``axis_layout`` gives them."""
    return (rows // inner) * strides[0] + (rows % inner) * strides[2]


@triton.jit
def _softmax_forward_kernel(
    X, Y, rows_total, cols, inner, x_strides, y_strides,
    LOG: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr, ALIGN: tl.constexpr,
):
    """Each program normalises BLOCK_R rows that fit one block: y = exp(x - max) / sum (or
    its log), one read and one write per element."""
    cols = aligned(cols, ALIGN)
    x_strides, y_strides = aligned_strides(x_strides, ALIGN), aligned_strides(y_strides, ALIGN)
    rows = tl.program_id(0).to(tl.int64) * BLOCK_R + tl.arange(0, BLOCK_R)
    row_mask = rows < rows_total
    x_row = row_offsets(rows, inner, x_strides)
    y_row = row_offsets(rows, inner, y_strides)
    c = tl.arange(0, BLOCK_C)
    CT = tl.float64 if X.dtype.element_ty == tl.float64 else tl.float32
    mask = row_mask[:, None] & (c[None, :] < cols)
    x = tl.load(X + x_row[:, None] + c[None, :] * x_strides[1], mask=mask, other=0.0).to(CT)
    y = softmax_rows(tl.where(mask, x, float("-inf")), LOG)
    store(Y, y_row[:, None] + c[None, :] * y_strides[1], y, mask)


@triton.jit
def softmax_rows(x, LOG: tl.constexpr):
    """Softmax (log-softmax) of each row of a (rows, columns) block whose padding is -inf."""
    m = tl.max(x, 1)
    # A row of all -inf has max -inf; exp(x - 0) keeps its entries at 0. A NaN anywhere in a
    # row makes its sum NaN (whether or not the max saw it), and every entry with it.
    m = tl.where(m == float("-inf"), 0.0, m)
    e = tl.exp(x - m[:, None])
    s = tl.sum(e, 1)
    if LOG:
        y = tl.where(s[:, None] == 0, float("-inf"), x - m[:, None] - tl.log(tl.where(s == 0, 1.0, s))[:, None])
    else:
        y = e / tl.where(s == 0, 1.0, s)[:, None]
    return y


@triton.jit
def _max_and_sum(X, x_row, x_strides, start, stop, length, BLOCK_C: tl.constexpr, EVICT: tl.constexpr):
    """Max m and sum s of exp(x - m) over columns [start, stop) of one row, BLOCK_C at a
    time (online: a sum is rescaled when its max grows). Each lane keeps its own running max
    and sum, so a step is elementwise (one exp an element: exp(-|x - m|) rescales the sum
    where x is the new max and is the new term elsewhere) and the lanes are reduced across
    warps once, at the end, not twice a step. ``length`` >= stop - start bounds the loop;
    EVICT is the loads' eviction policy. A -inf adds nothing; a NaN makes s NaN."""
    c = tl.arange(0, BLOCK_C)
    CT = tl.float64 if X.dtype.element_ty == tl.float64 else tl.float32
    m = tl.full((BLOCK_C,), float("-inf"), CT)
    s = tl.zeros((BLOCK_C,), CT)
    for c0 in range(0, length, BLOCK_C):
        col = start + c0 + c
        mask = col < stop
        x = tl.load(X + x_row + col * x_strides[1], mask=mask, other=0.0, eviction_policy=EVICT).to(CT)
        x = tl.where(mask, x, float("-inf"))
        # x = -inf: exp(-inf) = 0 whatever m is (and no -inf - -inf)
        d = tl.exp(-tl.where(x == float("-inf"), float("inf"), tl.abs(x - m)))
        grows = x > m
        s = tl.where(grows, s * d + 1.0, s + d)
        m = tl.where(grows, x, m)
    row_max = tl.max(m, 0)
    safe = tl.where(row_max == float("-inf"), 0.0, row_max)
    # a lane that saw nothing but -inf (and NaN) holds s = 0 (or NaN), unscaled
    total = tl.sum(tl.where(m == float("-inf"), s, s * tl.exp(m - safe)), 0)
    return tl.zeros((1,), CT) + row_max, tl.zeros((1,), CT) + total


@triton.jit
def _write_softmax(X, Y, x_row, y_row, x_strides, y_strides, start, stop, length, m, s,
                   LOG: tl.constexpr, BLOCK_C: tl.constexpr, EVICT: tl.constexpr):
    """y = exp(x - m) / s (or its log) over columns [start, stop) of one row, given the
    row's max m and sum s; EVICT is the reads' and writes' eviction policy."""
    c = tl.arange(0, BLOCK_C)
    CT = tl.float64 if X.dtype.element_ty == tl.float64 else tl.float32
    m = tl.where(m == float("-inf"), 0.0, m)
    log_s = tl.log(tl.where(s == 0, 1.0, s))  # s is 0 for a row of all -inf, NaN for a row holding NaN
    for c0 in range(0, length, BLOCK_C):
        col = start + c0 + c
        mask = col < stop
        x = tl.load(X + x_row + col * x_strides[1], mask=mask, other=0.0, eviction_policy=EVICT).to(CT)
        if LOG:
            y = tl.where(s == 0, float("-inf"), x - m - log_s)
        else:
            y = tl.exp(x - m) / tl.where(s == 0, 1.0, s)
        tl.store(Y + y_row + col * y_strides[1], cast_for(Y, y), mask=mask, eviction_policy=EVICT)


@triton.jit
def _softmax_row_looped(
    X, Y, row, cols, inner, x_strides, y_strides,
    LOG: tl.constexpr, BLOCK_C: tl.constexpr, KEEP: tl.constexpr, STREAM: tl.constexpr,
):
    """One wide row in BLOCK_C steps: an online max and rescaled sum, then a pass that
    writes. KEEP and STREAM are the eviction policies of the first pass's reads and of the
    second pass's reads and writes."""
    x_row = row_offsets(row, inner, x_strides)
    y_row = row_offsets(row, inner, y_strides)
    m, s = _max_and_sum(X, x_row, x_strides, 0, cols, cols, BLOCK_C, KEEP)
    _write_softmax(X, Y, x_row, y_row, x_strides, y_strides, 0, cols, cols, m, s, LOG, BLOCK_C, STREAM)


@triton.jit
def _softmax_forward_looped_kernel(
    X, Y, rows_total, cols, inner, x_strides, y_strides,
    LOG: tl.constexpr, PERSISTENT: tl.constexpr, BLOCK_C: tl.constexpr, ALIGN: tl.constexpr,
):
    """Rows wider than one block: program p normalises row p, or (PERSISTENT) rows p,
    p + programs, ... with the row kept in L2 between its two passes."""
    cols = aligned(cols, ALIGN)
    x_strides, y_strides = aligned_strides(x_strides, ALIGN), aligned_strides(y_strides, ALIGN)
    if PERSISTENT:
        # row + int64 zeros: 64-bit offsets (the interpreter's loop variable is a Python int)
        for row in tl.range(tl.program_id(0), rows_total, tl.num_programs(0)):
            _softmax_row_looped(X, Y, row + tl.zeros((1,), tl.int64), cols, inner, x_strides, y_strides, LOG,
                                BLOCK_C, "evict_last", "evict_first")
    else:
        _softmax_row_looped(X, Y, tl.program_id(0).to(tl.int64), cols, inner, x_strides, y_strides, LOG, BLOCK_C,
                            "", "")


# Tuning runs a kernel several times before the real call. Written over its input, softmax
# would be applied to its own output again and again, so the in-place launch restores Y
# (its input's storage) after each tuning run; the out-of-place one has nothing to restore
# and keeps a copy out of its timings.
_softmax_forward_looped_tuned = _looped_autotune(restore=[])(_softmax_forward_looped_kernel)
_softmax_forward_looped_in_place = _looped_autotune(restore=["Y"])(_softmax_forward_looped_kernel)


@triton.jit
def _softmax_partials_kernel(
    X, STATS, cols, inner, chunk, x_strides, BLOCK_C: tl.constexpr, ALIGN: tl.constexpr,
):
    """Program (r, j) writes the running max and sum of exp of row r's columns
    [j chunk, (j + 1) chunk) into STATS[r, j, 0:2], asking L2 to keep them for the
    second launch."""
    cols = aligned(cols, ALIGN)
    x_strides = aligned_strides(x_strides, ALIGN)
    row = tl.program_id(0).to(tl.int64)
    split = tl.program_id(1)
    start = split * chunk
    x_row = row_offsets(row, inner, x_strides)
    m, s = _max_and_sum(X, x_row, x_strides, start, tl.minimum(start + chunk, cols), chunk, BLOCK_C,
                        "evict_last")
    at = (row * tl.num_programs(1) + split) * 2 + tl.zeros((1,), tl.int64)
    tl.store(STATS + at, m)
    tl.store(STATS + at + 1, s)


@triton.jit
def _softmax_split_write_kernel(
    X, Y, STATS, cols, inner, chunk, x_strides, y_strides,
    LOG: tl.constexpr, SPLITS_BLOCK: tl.constexpr, BLOCK_C: tl.constexpr, ALIGN: tl.constexpr,
):
    """Program (r, j) combines row r's partial maxima and sums into the row's (max, sum)
    and writes the softmax of chunk j."""
    cols = aligned(cols, ALIGN)
    x_strides, y_strides = aligned_strides(x_strides, ALIGN), aligned_strides(y_strides, ALIGN)
    row = tl.program_id(0).to(tl.int64)
    split = tl.program_id(1)
    splits = tl.num_programs(1)
    k = tl.arange(0, SPLITS_BLOCK)
    partial = STATS + (row * splits + k) * 2
    m_k = tl.load(partial, mask=k < splits, other=float("-inf"))
    s_k = tl.load(partial + 1, mask=k < splits, other=0.0)
    m = tl.max(m_k, 0)
    s = tl.sum(s_k * tl.exp(m_k - tl.where(m == float("-inf"), 0.0, m)), 0)
    start = split * chunk
    _write_softmax(X, Y, row_offsets(row, inner, x_strides), row_offsets(row, inner, y_strides), x_strides, y_strides,
                   start, tl.minimum(start + chunk, cols), chunk, m, s, LOG, BLOCK_C, "evict_first")


@triton.jit
def _softmax_backward_kernel(
    DY, Y, DX, rows_total, cols, inner, dy_strides, y_strides, dx_strides,
    LOG: tl.constexpr, ACCUMULATE: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr, ALIGN: tl.constexpr,
):
    """Each program computes, for BLOCK_R rows that fit one block, dx (+)= y * (dy -
    sum(dy * y)) for softmax or dx (+)= dy - exp(y) * sum(dy) for log-softmax (y is the
    forward output)."""
    cols = aligned(cols, ALIGN)
    dy_strides, y_strides = aligned_strides(dy_strides, ALIGN), aligned_strides(y_strides, ALIGN)
    dx_strides = aligned_strides(dx_strides, ALIGN)
    rows = tl.program_id(0).to(tl.int64) * BLOCK_R + tl.arange(0, BLOCK_R)
    row_mask = rows < rows_total
    dy_row = row_offsets(rows, inner, dy_strides)
    y_row = row_offsets(rows, inner, y_strides)
    dx_row = row_offsets(rows, inner, dx_strides)
    c = tl.arange(0, BLOCK_C)
    CT = tl.float64 if DX.dtype.element_ty == tl.float64 else tl.float32
    mask = row_mask[:, None] & (c[None, :] < cols)
    dy = tl.load(DY + dy_row[:, None] + c[None, :] * dy_strides[1], mask=mask, other=0.0).to(CT)
    y = tl.load(Y + y_row[:, None] + c[None, :] * y_strides[1], mask=mask, other=0.0).to(CT)
    if LOG:
        p = tl.where(mask, tl.exp(y), 0.0)
        dx = dy - p * tl.sum(dy, 1)[:, None]
    else:
        dx = y * (dy - tl.sum(dy * y, 1)[:, None])
    store_result(DX, dx_row[:, None] + c[None, :] * dx_strides[1], dx, mask, ACCUMULATE)


@triton.jit
def _grad_row_sum(DY, Y, dy_row, y_row, dy_strides, y_strides, start, stop, length,
                  LOG: tl.constexpr, BLOCK_C: tl.constexpr, EVICT: tl.constexpr):
    """sum(dy) (log-softmax) or sum(dy * y) (softmax) over columns [start, stop) of one row."""
    c = tl.arange(0, BLOCK_C)
    CT = tl.float64 if DY.dtype.element_ty == tl.float64 else tl.float32
    acc = tl.zeros((BLOCK_C,), CT)  # each lane's own sum: one reduction across warps, at the end
    for c0 in range(0, length, BLOCK_C):
        col = start + c0 + c
        mask = col < stop
        dy = tl.load(DY + dy_row + col * dy_strides[1], mask=mask, other=0.0, eviction_policy=EVICT).to(CT)
        if LOG:
            acc += dy
        else:
            y = tl.load(Y + y_row + col * y_strides[1], mask=mask, other=0.0, eviction_policy=EVICT).to(CT)
            acc += dy * y
    return tl.zeros((1,), CT) + tl.sum(acc, 0)


@triton.jit
def _write_grad(DY, Y, DX, dy_row, y_row, dx_row, dy_strides, y_strides, dx_strides,
                start, stop, length, total, LOG: tl.constexpr, ACCUMULATE: tl.constexpr, BLOCK_C: tl.constexpr,
                EVICT: tl.constexpr):
    """dx (+)= y * (dy - total) (softmax) or dy - exp(y) * total (log-softmax) over columns
    [start, stop) of one row, given the row's ``_grad_row_sum``."""
    c = tl.arange(0, BLOCK_C)
    CT = tl.float64 if DX.dtype.element_ty == tl.float64 else tl.float32
    for c0 in range(0, length, BLOCK_C):
        col = start + c0 + c
        mask = col < stop
        dy = tl.load(DY + dy_row + col * dy_strides[1], mask=mask, other=0.0, eviction_policy=EVICT).to(CT)
        y = tl.load(Y + y_row + col * y_strides[1], mask=mask, other=0.0, eviction_policy=EVICT).to(CT)
        if LOG:
            dx = dy - tl.where(mask, tl.exp(y), 0.0) * total
        else:
            dx = y * (dy - total)
        offsets = dx_row + col * dx_strides[1]
        if ACCUMULATE:
            dx = dx + tl.load(DX + offsets, mask=mask, other=0.0, eviction_policy=EVICT).to(CT)
        tl.store(DX + offsets, cast_for(DX, dx), mask=mask, eviction_policy=EVICT)


@triton.jit
def _softmax_grad_row_looped(
    DY, Y, DX, row, cols, inner, dy_strides, y_strides, dx_strides,
    LOG: tl.constexpr, ACCUMULATE: tl.constexpr, BLOCK_C: tl.constexpr, KEEP: tl.constexpr, STREAM: tl.constexpr,
):
    """One wide row's gradient in BLOCK_C steps: the row sum (of dy, or of dy * y), then a
    pass that writes dx. KEEP and STREAM are the eviction policies of the first pass's
    reads and of the second pass's reads and writes."""
    dy_row = row_offsets(row, inner, dy_strides)
    y_row = row_offsets(row, inner, y_strides)
    total = _grad_row_sum(DY, Y, dy_row, y_row, dy_strides, y_strides, 0, cols, cols, LOG, BLOCK_C, KEEP)
    _write_grad(DY, Y, DX, dy_row, y_row, row_offsets(row, inner, dx_strides),
                dy_strides, y_strides, dx_strides, 0, cols, cols, total, LOG, ACCUMULATE, BLOCK_C, STREAM)


@_looped_autotune(restore=["DX"])
@triton.jit
def _softmax_backward_looped_kernel(
    DY, Y, DX, rows_total, cols, inner, dy_strides, y_strides, dx_strides,
    LOG: tl.constexpr, ACCUMULATE: tl.constexpr, PERSISTENT: tl.constexpr, BLOCK_C: tl.constexpr,
    ALIGN: tl.constexpr,
):
    """Rows wider than one block: program p takes row p, or (PERSISTENT) rows p,
    p + programs, ... with the row kept in L2 between its two passes."""
    cols = aligned(cols, ALIGN)
    dy_strides, y_strides = aligned_strides(dy_strides, ALIGN), aligned_strides(y_strides, ALIGN)
    dx_strides = aligned_strides(dx_strides, ALIGN)
    if PERSISTENT:
        # row + int64 zeros: 64-bit offsets (the interpreter's loop variable is a Python int)
        for row in tl.range(tl.program_id(0), rows_total, tl.num_programs(0)):
            _softmax_grad_row_looped(DY, Y, DX, row + tl.zeros((1,), tl.int64), cols, inner, dy_strides, y_strides,
                                     dx_strides, LOG, ACCUMULATE, BLOCK_C, "evict_last", "evict_first")
    else:
        _softmax_grad_row_looped(DY, Y, DX, tl.program_id(0).to(tl.int64), cols, inner, dy_strides, y_strides,
                                 dx_strides, LOG, ACCUMULATE, BLOCK_C, "", "")


@triton.jit
def _softmax_grad_partials_kernel(
    DY, Y, STATS, cols, inner, chunk, dy_strides, y_strides,
    LOG: tl.constexpr, BLOCK_C: tl.constexpr, ALIGN: tl.constexpr,
):
    """Program (r, j) writes row r's partial sum over columns [j chunk, (j + 1) chunk) into
    STATS[r, j], asking L2 to keep what it read for the second launch."""
    cols = aligned(cols, ALIGN)
    dy_strides, y_strides = aligned_strides(dy_strides, ALIGN), aligned_strides(y_strides, ALIGN)
    row = tl.program_id(0).to(tl.int64)
    split = tl.program_id(1)
    start = split * chunk
    total = _grad_row_sum(DY, Y, row_offsets(row, inner, dy_strides), row_offsets(row, inner, y_strides),
                          dy_strides, y_strides, start, tl.minimum(start + chunk, cols), chunk, LOG, BLOCK_C,
                          "evict_last")
    tl.store(STATS + (row * tl.num_programs(1) + split) + tl.zeros((1,), tl.int64), total)


@triton.jit
def _softmax_grad_split_write_kernel(
    DY, Y, DX, STATS, cols, inner, chunk, dy_strides, y_strides, dx_strides,
    LOG: tl.constexpr, ACCUMULATE: tl.constexpr, SPLITS_BLOCK: tl.constexpr, BLOCK_C: tl.constexpr,
    ALIGN: tl.constexpr,
):
    """Program (r, j) adds up row r's partial sums and writes dx over chunk j."""
    cols = aligned(cols, ALIGN)
    dy_strides, y_strides = aligned_strides(dy_strides, ALIGN), aligned_strides(y_strides, ALIGN)
    dx_strides = aligned_strides(dx_strides, ALIGN)
    row = tl.program_id(0).to(tl.int64)
    split = tl.program_id(1)
    splits = tl.num_programs(1)
    k = tl.arange(0, SPLITS_BLOCK)
    total = tl.sum(tl.load(STATS + row * splits + k, mask=k < splits, other=0.0), 0)
    start = split * chunk
    _write_grad(DY, Y, DX, row_offsets(row, inner, dy_strides), row_offsets(row, inner, y_strides),
                row_offsets(row, inner, dx_strides), dy_strides, y_strides, dx_strides, start,
                tl.minimum(start + chunk, cols), chunk, total, LOG, ACCUMULATE, BLOCK_C, "evict_first")


# ------------------------------------------------------------------------ launchers


def normalize_axis(fn: str, axis: int, ndim: int) -> int:
    if not -ndim <= axis < ndim:
        raise KernelArgumentError(f"{fn}: axis={axis} is out of range for a {ndim}-d tensor")
    return axis % ndim


def axis_layout(fn: str, t: torch.Tensor, axis: int) -> tuple[int, int, int, list[int]]:
    """(rows, cols, inner, (stride_outer, stride_axis, stride_inner)) of ``t`` around ``axis``;
    the kernels take the strides as one tuple per tensor.

    The outer and inner dimensions must each collapse to one stride; every contiguous
    tensor and every transpose of a 2-d one does.
    """
    shape, strides = list(t.shape), list(t.stride())
    outer_dims = [(n, s) for n, s in zip(shape[:axis], strides[:axis]) if n != 1]
    inner_dims = [(n, s) for n, s in zip(shape[axis + 1:], strides[axis + 1:]) if n != 1]

    def single_stride(dims):
        for (n0, s0), (n1, s1) in zip(dims, dims[1:]):
            if s0 != s1 * n1:
                raise KernelArgumentError(
                    f"{fn}: a tensor with shape {tuple(shape)} and strides {tuple(strides)} cannot be walked as "
                    f"rows along axis {axis} without a copy; pass a contiguous tensor")
        return dims[-1][1] if dims else 0

    outer = math.prod(n for n, _ in outer_dims)
    inner = math.prod(n for n, _ in inner_dims)
    return outer * inner, shape[axis], inner, (single_stride(outer_dims), strides[axis], single_stride(inner_dims))


def block_shape(rows: int, cols: int) -> tuple[int, int, bool]:
    """(BLOCK_R, BLOCK_C, SINGLE_PASS) for a rows x cols problem."""
    block_c = triton.next_power_of_2(max(cols, 1))
    if block_c > MAX_BLOCK:
        return 1, LOOP_BLOCK, False
    budget = MAX_BLOCK if INTERPRET else 4096
    block_r = max(1, min(budget // block_c, triton.next_power_of_2(max(rows, 1))))
    return block_r, block_c, True


def row_split(rows: int, cols: int) -> tuple[int, int]:
    """(programs per row, columns per program): (1, cols) unless the rows are wide enough
    to loop and too few to fill the GPU (``SPLIT_BELOW_ROWS``), then chunks of whole
    LOOP_BLOCK steps, at least SPLIT_MIN_STEPS of them, for about SPLIT_PROGRAMS programs."""
    if rows < 1 or rows >= SPLIT_BELOW_ROWS or block_shape(rows, cols)[2]:
        return 1, cols
    step = LOOP_BLOCK * SPLIT_MIN_STEPS
    splits = min(triton.cdiv(SPLIT_PROGRAMS, rows), cols // step)
    if splits < 2:
        return 1, cols
    chunk = triton.cdiv(triton.cdiv(cols, splits), LOOP_BLOCK) * LOOP_BLOCK
    return triton.cdiv(cols, chunk), chunk


def split_stats(shape: Sequence[int], axis: int, dtype: torch.dtype,
                backward: bool = False) -> tuple[tuple[int, ...], torch.dtype] | None:
    """(shape, dtype) of the ``stats`` buffer that softmax forward (or, with ``backward``,
    softmax backward) of a tensor of this shape needs along ``axis``, or None where its
    rows are not split. Shapes only: how a bound network plans the buffer."""
    axis = normalize_axis("split_stats", axis, len(shape))
    cols = shape[axis]
    rows = math.prod(shape) // cols if cols else 0
    splits, _ = row_split(rows, cols)
    if splits == 1:
        return None
    stats_dtype = torch.float64 if dtype == torch.float64 else torch.float32
    return ((rows, splits) if backward else (rows, splits, 2)), stats_dtype


def _check_stats(fn: str, stats: torch.Tensor | None, like: torch.Tensor, axis: int, backward: bool) -> torch.Tensor:
    shape, dtype = split_stats(like.shape, axis, like.dtype, backward)
    if stats is None:
        raise KernelArgumentError(f"{fn}: {tuple(like.shape)} along axis {axis} has rows split across programs, "
                                  f"which needs stats= a {dtype} buffer of shape {shape} (see split_stats)")
    check_tensor(fn, "stats", stats, (dtype,))
    if tuple(stats.shape) != shape or not stats.is_contiguous() or stats.device != like.device:
        raise KernelArgumentError(f"{fn}: stats must be a contiguous {dtype} tensor of shape {shape} on "
                                  f"{like.device}, got shape {tuple(stats.shape)}, strides {stats.stride()} "
                                  f"on {stats.device}")
    return stats


def alignment(cols: int, *strides: Sequence[int]) -> int:
    """The ``ALIGN`` of a launch whose rows are ``cols`` long, with these (outer, axis,
    inner) strides: how many elements each row's start and length are a multiple of (see
    ``aligned``); 1 where the rows are not contiguous (nothing could be read 16 bytes at a
    time, and one variant serves them all)."""
    return contiguous_alignment((s[1] for s in strides), cols, *(s[0] for s in strides), *(s[2] for s in strides))


def num_warps_for(block_r: int, block_c: int) -> int:
    elements = block_r * block_c
    return 4 if elements <= 2048 else 8 if elements <= 8192 else 16 if elements <= 16384 else 32


def _launch(single_kernel, looped_kernel, rows: int, cols: int, device: torch.device, args: list,
            kwargs: dict) -> Launch:
    """The single-pass kernel for rows that fit a block; else the looped one, autotuned on
    a GPU (one program per row or persistent), else as UNTUNED_PERSISTENT says."""
    block_r, block_c, single = block_shape(rows, cols)
    if single:
        return Launch(single_kernel, (triton.cdiv(max(rows, 1), block_r),), args,
                      dict(kwargs, BLOCK_R=block_r, BLOCK_C=block_c, num_warps=num_warps_for(block_r, block_c)))
    programs = persistent_programs(device)

    def grid(meta):
        return (min(rows, programs) if meta["PERSISTENT"] else max(rows, 1),)

    if INTERPRET or not AUTOTUNE:
        untuned = dict(PERSISTENT=UNTUNED_PERSISTENT, BLOCK_C=LOOP_BLOCK)
        return Launch(looped_kernel.fn, grid(untuned), args,
                      dict(kwargs, **untuned, num_warps=num_warps_for(1, LOOP_BLOCK)))
    return Launch(looped_kernel, grid, args, kwargs)


def _split_launches(partials_kernel, write_kernel, rows: int, splits: int, partial_args: list, write_args: list,
                    partial_kwargs: dict, write_kwargs: dict) -> list[Launch]:
    """The two launches of a split row: partials into stats, then combine and write."""
    grid = (rows, splits)
    meta = dict(BLOCK_C=LOOP_BLOCK, num_warps=num_warps_for(1, LOOP_BLOCK))
    return [Launch(partials_kernel, grid, partial_args, dict(partial_kwargs, **meta)),
            Launch(write_kernel, grid, write_args,
                   dict(write_kwargs, **meta, SPLITS_BLOCK=triton.next_power_of_2(splits)))]


def plan_softmax_forward(x: torch.Tensor, out: torch.Tensor, axis: int = -1, log: bool = False,
                         stats: torch.Tensor | None = None) -> list[Launch]:
    """Launches of softmax (log-softmax) forward; ``stats`` is the scratch buffer
    ``split_stats`` asks for, where rows are split."""
    fn = "log_softmax_forward" if log else "softmax_forward"
    check_tensor(fn, "x", x)
    out = prepare_out(fn, "out", out, x.shape, x.dtype, x.device)
    axis = normalize_axis(fn, axis, x.dim())
    rows, cols, inner, x_strides = axis_layout(fn, x, axis)
    _, _, _, out_strides = axis_layout(fn, out, axis)
    splits, chunk = row_split(rows, cols)
    align = alignment(cols, x_strides, out_strides)
    if splits > 1:
        stats = _check_stats(fn, stats, x, axis, backward=False)
        return _split_launches(
            _softmax_partials_kernel, _softmax_split_write_kernel, rows, splits,
            [x, stats, cols, max(inner, 1), chunk, x_strides],
            [x, out, stats, cols, max(inner, 1), chunk, x_strides, out_strides], {"ALIGN": alignment(cols, x_strides)},
            {"LOG": log, "ALIGN": align})
    looped = _softmax_forward_looped_in_place if overlap(x, out) else _softmax_forward_looped_tuned
    return [_launch(_softmax_forward_kernel, looped, rows, cols, x.device,
                    [x, out, rows, cols, max(inner, 1), x_strides, out_strides], dict(LOG=log, ALIGN=align))]


def split_stats_buffer(like: torch.Tensor, axis: int = -1, backward: bool = False) -> torch.Tensor | None:
    """A new ``stats`` buffer for softmax of ``like`` along ``axis`` (None where its rows are
    not split): for standalone calls and benchmarks; a bound network plans its own."""
    need = split_stats(like.shape, normalize_axis("softmax", axis, like.dim()), like.dtype, backward)
    return None if need is None else torch.empty(need[0], dtype=need[1], device=like.device)


def softmax_forward(x: torch.Tensor, axis: int = -1, log: bool = False,
                    out: torch.Tensor | None = None) -> torch.Tensor:
    """Softmax (or log-softmax with ``log=True``) of ``x`` along ``axis``."""
    out = prepare_out("softmax_forward", "out", out, x.shape, x.dtype, x.device)
    run(plan_softmax_forward(x, out, axis, log, stats=split_stats_buffer(x, axis)))
    return out


def plan_softmax_backward(grad_out: torch.Tensor, out: torch.Tensor, grad_in: torch.Tensor, axis: int = -1,
                          log: bool = False, accumulate: bool = False,
                          stats: torch.Tensor | None = None) -> list[Launch]:
    """Launches of softmax (log-softmax) backward; ``stats`` is the scratch buffer
    ``split_stats(..., backward=True)`` asks for, where rows are split."""
    fn = "log_softmax_backward" if log else "softmax_backward"
    check_tensor(fn, "grad_out", grad_out)
    check_tensor(fn, "out", out)
    check_same(fn, "shape", grad_out=grad_out, out=out)
    check_same(fn, "device", grad_out=grad_out, out=out)
    grad_in = prepare_out(fn, "grad_in", grad_in, out.shape, out.dtype, out.device)
    axis = normalize_axis(fn, axis, out.dim())
    rows, cols, inner, dy_strides = axis_layout(fn, grad_out, axis)
    y_strides = axis_layout(fn, out, axis)[3]
    dx_strides = axis_layout(fn, grad_in, axis)[3]
    splits, chunk = row_split(rows, cols)
    align = alignment(cols, dy_strides, y_strides, dx_strides)
    if splits > 1:
        stats = _check_stats(fn, stats, out, axis, backward=True)
        return _split_launches(
            _softmax_grad_partials_kernel, _softmax_grad_split_write_kernel, rows, splits,
            [grad_out, out, stats, cols, max(inner, 1), chunk, dy_strides, y_strides],
            [grad_out, out, grad_in, stats, cols, max(inner, 1), chunk, dy_strides, y_strides, dx_strides],
            {"LOG": log, "ALIGN": alignment(cols, dy_strides, y_strides)},
            {"LOG": log, "ACCUMULATE": accumulate, "ALIGN": align})
    return [_launch(_softmax_backward_kernel, _softmax_backward_looped_kernel, rows, cols, out.device,
                    [grad_out, out, grad_in, rows, cols, max(inner, 1), dy_strides, y_strides, dx_strides],
                    dict(LOG=log, ACCUMULATE=accumulate, ALIGN=align))]


def softmax_backward(grad_out: torch.Tensor, out: torch.Tensor, axis: int = -1, log: bool = False,
                     grad_in: torch.Tensor | None = None, accumulate: bool = False) -> torch.Tensor:
    """Gradient of softmax (or log-softmax) from its output ``out`` and ``grad_out``."""
    grad_in = prepare_out("softmax_backward", "grad_in", grad_in, out.shape, out.dtype, out.device)
    run(plan_softmax_backward(grad_out, out, grad_in, axis, log, accumulate,
                              stats=split_stats_buffer(out, axis, backward=True)))
    return grad_in


# ------------------------------------------------------------------- catalogue

TESTS = ("tests/test_kernels_softmax.py",)  # what exercises these kernels (the mutation check runs them)


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    """Softmax and log-softmax, forward and backward, in ``dtype``: rows in one block, wider
    rows (the looped kernels) and a few wide rows (split across programs), on small shapes
    or (``large``) 4096x4096, 256x65536 and 8x262144, and softmax on rows of 1000 (ALIGN
    8): what ``ops.catalog`` compiles, reports on and checks."""
    # Wider than one block (MAX_BLOCK) with enough rows not to split them, and with too few.
    cols = MAX_BLOCK + 7232  # 40000 on a GPU: 16-aligned rows, as a network's usually are
    narrow, wide, few = ((4096, 4096), (256, 65536), (8, 262144)) if large else ((33, 17), (SPLIT_BELOW_ROWS, cols),
                                                                                  (2, cols))
    out = []
    for log in (False, True):
        name = "log-softmax" if log else "softmax"
        for what, shape in (("", narrow), (" looped", wide)):
            v = torch.empty(shape, dtype=dtype)
            out += [(f"{name}{what}", launch) for launch in plan_softmax_forward(v, v, -1, log)]
            out += [(f"{name} grad{what}", launch) for launch in plan_softmax_backward(v, v, v, -1, log, True)]
        if not log:  # rows of 1000 (a classifier's): a multiple of 8 elements, not 16 (ALIGN 8)
            v = torch.empty((4096 if large else 64, 1000), dtype=dtype)
            out += [("softmax rows of 1000", launch) for launch in plan_softmax_forward(v, v, -1)]
            out += [("softmax grad rows of 1000", launch) for launch in plan_softmax_backward(v, v, v, -1)]
        v = torch.empty(few, dtype=dtype)
        out += [(f"{name} split", launch) for launch in plan_softmax_forward(v, v, -1, log,
                                                                               stats=split_stats_buffer(v))]
        out += [(f"{name} grad split", launch) for launch in plan_softmax_backward(
            v, v, v, -1, log, True, stats=split_stats_buffer(v, backward=True))]
    return out
