"""Softmax and log-softmax along one axis, forward and backward.

A tensor is seen as (outer, axis, inner): a "row" is one (outer, inner) pair and its
``axis`` elements, so any axis of any strided tensor works without a copy. A row that
fits one block is read once and written once; wider rows take an online pass (running
max and rescaled sum, Milakov & Gimelshein 2018) and a second pass that writes, instead
of spilling registers.

The looped kernels for wide rows are autotuned on a GPU between one program per row and a
persistent grid (one program per SM, each taking rows in turn) whose first pass asks L2
to keep the row (``evict_last``) and whose second pass reads and writes it as streaming
data (``evict_first``): with one row per SM in flight the rows fit in L2, so the second
pass can come from L2 instead of memory. Which one wins depends on the row width and the
GPU, so the autotuner measures it.

A row whose entries are all ``-inf`` has no probability mass: softmax gives 0 and
log-softmax ``-inf`` there, never NaN.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from ._common import (
    AUTOTUNE,
    AUTOTUNE_OPTIONS,
    INTERPRET,
    KernelArgumentError,
    Launch,
    cast_for,
    check_same,
    check_tensor,
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
def row_offsets(rows, inner, stride_outer, stride_inner):
    """Offset of element 0 of each (outer, inner) row."""
    return (rows // inner) * stride_outer + (rows % inner) * stride_inner


@triton.jit
def _softmax_forward_kernel(
    X, Y, rows_total, cols, inner,
    x_stride_outer, x_stride_axis, x_stride_inner,
    y_stride_outer, y_stride_axis, y_stride_inner,
    LOG: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr,
):
    """Each program normalises BLOCK_R rows that fit one block: y = exp(x - max) / sum (or
    its log), one read and one write per element."""
    rows = tl.program_id(0).to(tl.int64) * BLOCK_R + tl.arange(0, BLOCK_R)
    row_mask = rows < rows_total
    x_row = row_offsets(rows, inner, x_stride_outer, x_stride_inner)
    y_row = row_offsets(rows, inner, y_stride_outer, y_stride_inner)
    c = tl.arange(0, BLOCK_C)
    CT = tl.float64 if X.dtype.element_ty == tl.float64 else tl.float32
    mask = row_mask[:, None] & (c[None, :] < cols)
    x = tl.load(X + x_row[:, None] + c[None, :] * x_stride_axis, mask=mask, other=0.0).to(CT)
    x = tl.where(mask, x, float("-inf"))
    m = tl.max(x, 1)
    m = tl.where(m == float("-inf"), 0.0, m)
    e = tl.exp(x - m[:, None])
    s = tl.sum(e, 1)
    if LOG:
        y = tl.where(s[:, None] > 0, x - m[:, None] - tl.log(tl.where(s > 0, s, 1.0))[:, None], float("-inf"))
    else:
        y = e / tl.where(s > 0, s, 1.0)[:, None]
    store(Y, y_row[:, None] + c[None, :] * y_stride_axis, y, mask)


@triton.jit
def _softmax_row_looped(
    X, Y, row, cols, inner, x_stride_outer, x_stride_axis, x_stride_inner,
    y_stride_outer, y_stride_axis, y_stride_inner,
    LOG: tl.constexpr, BLOCK_C: tl.constexpr, KEEP: tl.constexpr, STREAM: tl.constexpr,
):
    """One wide row in BLOCK_C steps: an online max and rescaled sum, then a pass that
    writes. KEEP and STREAM are the eviction policies of the first pass's reads and of the
    second pass's reads and writes."""
    x_row = row_offsets(row, inner, x_stride_outer, x_stride_inner)
    y_row = row_offsets(row, inner, y_stride_outer, y_stride_inner)
    c = tl.arange(0, BLOCK_C)
    CT = tl.float64 if X.dtype.element_ty == tl.float64 else tl.float32
    m = tl.full((1,), float("-inf"), CT)
    s = tl.zeros((1,), CT)
    for c0 in range(0, cols, BLOCK_C):
        mask = c + c0 < cols
        x = tl.load(X + x_row + (c + c0) * x_stride_axis, mask=mask, other=0.0, eviction_policy=KEEP).to(CT)
        x = tl.where(mask, x, float("-inf"))
        m_new = tl.maximum(m, tl.max(x, 0))
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
        s = s * tl.exp(m - m_safe) + tl.sum(tl.exp(x - m_safe), 0)
        m = m_new
    m = tl.where(m == float("-inf"), 0.0, m)
    log_s = tl.log(tl.where(s > 0, s, 1.0))
    for c0 in range(0, cols, BLOCK_C):
        mask = c + c0 < cols
        x = tl.load(X + x_row + (c + c0) * x_stride_axis, mask=mask, other=0.0, eviction_policy=STREAM).to(CT)
        if LOG:
            y = tl.where(s > 0, x - m - log_s, float("-inf"))
        else:
            y = tl.exp(x - m) / tl.where(s > 0, s, 1.0)
        tl.store(Y + y_row + (c + c0) * y_stride_axis, cast_for(Y, y), mask=mask, eviction_policy=STREAM)


@_looped_autotune(restore=[])
@triton.jit
def _softmax_forward_looped_kernel(
    X, Y, rows_total, cols, inner,
    x_stride_outer, x_stride_axis, x_stride_inner,
    y_stride_outer, y_stride_axis, y_stride_inner,
    LOG: tl.constexpr, PERSISTENT: tl.constexpr, BLOCK_C: tl.constexpr,
):
    """Rows wider than one block: program p normalises row p, or (PERSISTENT) rows p,
    p + programs, ... with the row kept in L2 between its two passes."""
    if PERSISTENT:
        # row + int64 zeros: 64-bit offsets (the interpreter's loop variable is a Python int)
        for row in tl.range(tl.program_id(0), rows_total, tl.num_programs(0)):
            _softmax_row_looped(X, Y, row + tl.zeros((1,), tl.int64), cols, inner,
                                x_stride_outer, x_stride_axis, x_stride_inner,
                                y_stride_outer, y_stride_axis, y_stride_inner, LOG, BLOCK_C,
                                "evict_last", "evict_first")
    else:
        _softmax_row_looped(X, Y, tl.program_id(0).to(tl.int64), cols, inner,
                            x_stride_outer, x_stride_axis, x_stride_inner,
                            y_stride_outer, y_stride_axis, y_stride_inner, LOG, BLOCK_C, "", "")


@triton.jit
def _softmax_backward_kernel(
    DY, Y, DX, rows_total, cols, inner,
    dy_stride_outer, dy_stride_axis, dy_stride_inner,
    y_stride_outer, y_stride_axis, y_stride_inner,
    dx_stride_outer, dx_stride_axis, dx_stride_inner,
    LOG: tl.constexpr, ACCUMULATE: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr,
):
    """Each program computes, for BLOCK_R rows that fit one block, dx (+)= y * (dy -
    sum(dy * y)) for softmax or dx (+)= dy - exp(y) * sum(dy) for log-softmax (y is the
    forward output)."""
    rows = tl.program_id(0).to(tl.int64) * BLOCK_R + tl.arange(0, BLOCK_R)
    row_mask = rows < rows_total
    dy_row = row_offsets(rows, inner, dy_stride_outer, dy_stride_inner)
    y_row = row_offsets(rows, inner, y_stride_outer, y_stride_inner)
    dx_row = row_offsets(rows, inner, dx_stride_outer, dx_stride_inner)
    c = tl.arange(0, BLOCK_C)
    CT = tl.float64 if DX.dtype.element_ty == tl.float64 else tl.float32
    mask = row_mask[:, None] & (c[None, :] < cols)
    dy = tl.load(DY + dy_row[:, None] + c[None, :] * dy_stride_axis, mask=mask, other=0.0).to(CT)
    y = tl.load(Y + y_row[:, None] + c[None, :] * y_stride_axis, mask=mask, other=0.0).to(CT)
    if LOG:
        p = tl.where(mask, tl.exp(y), 0.0)
        dx = dy - p * tl.sum(dy, 1)[:, None]
    else:
        dx = y * (dy - tl.sum(dy * y, 1)[:, None])
    store_result(DX, dx_row[:, None] + c[None, :] * dx_stride_axis, dx, mask, ACCUMULATE)


@triton.jit
def _softmax_grad_row_looped(
    DY, Y, DX, row, cols, inner,
    dy_stride_outer, dy_stride_axis, dy_stride_inner,
    y_stride_outer, y_stride_axis, y_stride_inner,
    dx_stride_outer, dx_stride_axis, dx_stride_inner,
    LOG: tl.constexpr, ACCUMULATE: tl.constexpr, BLOCK_C: tl.constexpr, KEEP: tl.constexpr, STREAM: tl.constexpr,
):
    """One wide row's gradient in BLOCK_C steps: the row sum (of dy, or of dy * y), then a
    pass that writes dx. KEEP and STREAM are the eviction policies of the first pass's
    reads and of the second pass's reads and writes."""
    dy_row = row_offsets(row, inner, dy_stride_outer, dy_stride_inner)
    y_row = row_offsets(row, inner, y_stride_outer, y_stride_inner)
    dx_row = row_offsets(row, inner, dx_stride_outer, dx_stride_inner)
    c = tl.arange(0, BLOCK_C)
    CT = tl.float64 if DX.dtype.element_ty == tl.float64 else tl.float32
    total = tl.zeros((1,), CT)
    for c0 in range(0, cols, BLOCK_C):
        mask = c + c0 < cols
        dy = tl.load(DY + dy_row + (c + c0) * dy_stride_axis, mask=mask, other=0.0, eviction_policy=KEEP).to(CT)
        if LOG:
            total += tl.sum(dy, 0)
        else:
            y = tl.load(Y + y_row + (c + c0) * y_stride_axis, mask=mask, other=0.0, eviction_policy=KEEP).to(CT)
            total += tl.sum(dy * y, 0)
    for c0 in range(0, cols, BLOCK_C):
        mask = c + c0 < cols
        dy = tl.load(DY + dy_row + (c + c0) * dy_stride_axis, mask=mask, other=0.0, eviction_policy=STREAM).to(CT)
        y = tl.load(Y + y_row + (c + c0) * y_stride_axis, mask=mask, other=0.0, eviction_policy=STREAM).to(CT)
        if LOG:
            dx = dy - tl.where(mask, tl.exp(y), 0.0) * total
        else:
            dx = y * (dy - total)
        offsets = dx_row + (c + c0) * dx_stride_axis
        if ACCUMULATE:
            dx = dx + tl.load(DX + offsets, mask=mask, other=0.0, eviction_policy=STREAM).to(CT)
        tl.store(DX + offsets, cast_for(DX, dx), mask=mask, eviction_policy=STREAM)


@_looped_autotune(restore=["DX"])
@triton.jit
def _softmax_backward_looped_kernel(
    DY, Y, DX, rows_total, cols, inner,
    dy_stride_outer, dy_stride_axis, dy_stride_inner,
    y_stride_outer, y_stride_axis, y_stride_inner,
    dx_stride_outer, dx_stride_axis, dx_stride_inner,
    LOG: tl.constexpr, ACCUMULATE: tl.constexpr, PERSISTENT: tl.constexpr, BLOCK_C: tl.constexpr,
):
    """Rows wider than one block: program p takes row p, or (PERSISTENT) rows p,
    p + programs, ... with the row kept in L2 between its two passes."""
    if PERSISTENT:
        # row + int64 zeros: 64-bit offsets (the interpreter's loop variable is a Python int)
        for row in tl.range(tl.program_id(0), rows_total, tl.num_programs(0)):
            _softmax_grad_row_looped(DY, Y, DX, row + tl.zeros((1,), tl.int64), cols, inner,
                                     dy_stride_outer, dy_stride_axis, dy_stride_inner,
                                     y_stride_outer, y_stride_axis, y_stride_inner,
                                     dx_stride_outer, dx_stride_axis, dx_stride_inner,
                                     LOG, ACCUMULATE, BLOCK_C, "evict_last", "evict_first")
    else:
        _softmax_grad_row_looped(DY, Y, DX, tl.program_id(0).to(tl.int64), cols, inner,
                                 dy_stride_outer, dy_stride_axis, dy_stride_inner,
                                 y_stride_outer, y_stride_axis, y_stride_inner,
                                 dx_stride_outer, dx_stride_axis, dx_stride_inner,
                                 LOG, ACCUMULATE, BLOCK_C, "", "")


# ------------------------------------------------------------------------ launchers


def normalize_axis(fn: str, axis: int, ndim: int) -> int:
    if not -ndim <= axis < ndim:
        raise KernelArgumentError(f"{fn}: axis={axis} is out of range for a {ndim}-d tensor")
    return axis % ndim


def axis_layout(fn: str, t: torch.Tensor, axis: int) -> tuple[int, int, int, list[int]]:
    """(rows, cols, inner, [stride_outer, stride_axis, stride_inner]) of ``t`` around ``axis``.

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
    return outer * inner, shape[axis], inner, [single_stride(outer_dims), strides[axis], single_stride(inner_dims)]


def block_shape(rows: int, cols: int) -> tuple[int, int, bool]:
    """(BLOCK_R, BLOCK_C, SINGLE_PASS) for a rows x cols problem."""
    block_c = triton.next_power_of_2(max(cols, 1))
    if block_c > MAX_BLOCK:
        return 1, LOOP_BLOCK, False
    budget = MAX_BLOCK if INTERPRET else 4096
    block_r = max(1, min(budget // block_c, triton.next_power_of_2(max(rows, 1))))
    return block_r, block_c, True


def _num_warps(block_r: int, block_c: int) -> int:
    elements = block_r * block_c
    return 4 if elements <= 2048 else 8 if elements <= 8192 else 16 if elements <= 16384 else 32


def _launch(single_kernel, looped_kernel, rows: int, cols: int, device: torch.device, args: list,
            kwargs: dict) -> Launch:
    """The single-pass kernel for rows that fit a block; else the looped one, autotuned on
    a GPU (one program per row or persistent), else as UNTUNED_PERSISTENT says."""
    block_r, block_c, single = block_shape(rows, cols)
    if single:
        return Launch(single_kernel, (triton.cdiv(max(rows, 1), block_r),), args,
                      dict(kwargs, BLOCK_R=block_r, BLOCK_C=block_c, num_warps=_num_warps(block_r, block_c)))
    programs = persistent_programs(device)

    def grid(meta):
        return (min(rows, programs) if meta["PERSISTENT"] else max(rows, 1),)

    if INTERPRET or not AUTOTUNE:
        untuned = dict(PERSISTENT=UNTUNED_PERSISTENT, BLOCK_C=LOOP_BLOCK)
        return Launch(looped_kernel.fn, grid(untuned), args,
                      dict(kwargs, **untuned, num_warps=_num_warps(1, LOOP_BLOCK)))
    return Launch(looped_kernel, grid, args, kwargs)


def plan_softmax_forward(x: torch.Tensor, out: torch.Tensor, axis: int = -1, log: bool = False) -> list[Launch]:
    fn = "log_softmax_forward" if log else "softmax_forward"
    check_tensor(fn, "x", x)
    out = prepare_out(fn, "out", out, x.shape, x.dtype, x.device)
    axis = normalize_axis(fn, axis, x.dim())
    rows, cols, inner, x_strides = axis_layout(fn, x, axis)
    _, _, _, out_strides = axis_layout(fn, out, axis)
    return [_launch(_softmax_forward_kernel, _softmax_forward_looped_kernel, rows, cols, x.device,
                    [x, out, rows, cols, max(inner, 1), *x_strides, *out_strides], dict(LOG=log))]


def softmax_forward(x: torch.Tensor, axis: int = -1, log: bool = False,
                    out: torch.Tensor | None = None) -> torch.Tensor:
    """Softmax (or log-softmax with ``log=True``) of ``x`` along ``axis``."""
    out = prepare_out("softmax_forward", "out", out, x.shape, x.dtype, x.device)
    run(plan_softmax_forward(x, out, axis, log))
    return out


def plan_softmax_backward(grad_out: torch.Tensor, out: torch.Tensor, grad_in: torch.Tensor, axis: int = -1,
                          log: bool = False, accumulate: bool = False) -> list[Launch]:
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
    return [_launch(_softmax_backward_kernel, _softmax_backward_looped_kernel, rows, cols, out.device,
                    [grad_out, out, grad_in, rows, cols, max(inner, 1), *dy_strides, *y_strides, *dx_strides],
                    dict(LOG=log, ACCUMULATE=accumulate))]


def softmax_backward(grad_out: torch.Tensor, out: torch.Tensor, axis: int = -1, log: bool = False,
                     grad_in: torch.Tensor | None = None, accumulate: bool = False) -> torch.Tensor:
    """Gradient of softmax (or log-softmax) from its output ``out`` and ``grad_out``."""
    grad_in = prepare_out("softmax_backward", "grad_in", grad_in, out.shape, out.dtype, out.device)
    run(plan_softmax_backward(grad_out, out, grad_in, axis, log, accumulate))
    return grad_in
