"""LayerNorm along one axis (MXNet's): per-row statistics, a per-column scale and shift; and
RMSNorm, the same rows scaled by their root mean square alone (``CENTER=False``: no mean,
no shift).

A contiguous tensor is seen as (outer, C, inner): a row is one (outer, inner) pair and its
C elements along ``axis`` (``inner`` apart; 1 for the last axis). Forward runs one program
per row: one pass for the mean, one for the variance of the deviations (not sums of
squares, which cancel for rows far from zero), one that writes ``(x - mean) * rstd * gamma
+ beta``; a training forward keeps each row's mean and reciprocal standard deviation for
backward. RMSNorm skips the mean's pass: ``x * rstd * gamma`` with ``rstd = 1 / sqrt(mean(x**2)
+ eps)``, keeping ``rstd`` alone.

Backward writes each row's ``dx = rstd * (g - mean(g) - xhat * mean(g * xhat))`` with
``g = gamma * dy``, and the column sums ``dgamma = sum(dy * xhat)``, ``dbeta = sum(dy)``
in two steps that need no atomics and give the same bits every run: ``PARTIALS`` programs
each take every PARTIALS-th row and add its terms into a partial row of their own (a
scratch buffer of PARTIALS x C), then one launch sums the partial rows per column.
RMSNorm's is LayerNorm's with the mean 0 and no ``mean(g)`` term: ``dx = rstd * (g - xhat *
mean(g * xhat))``, ``dgamma = sum(dy * xhat)``.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._common import (
    INTERPRET,
    KernelArgumentError,
    Launch,
    aligned,
    along_axis,
    check_contiguous_like,
    check_same,
    check_tensor,
    row_alignment,
    store,
    store_result,
    widen,
)

BLOCK = 4096 if INTERPRET else 1024  # at most this many columns in one step of a row
# Elements a program's tile holds: short rows are taken several at a time (a row of 16 columns
# alone would leave most of a program idle, and the interpreter runs programs one by one).
TILE = 1 << 14 if INTERPRET else 4096
PARTIALS = 4 if INTERPRET else 128  # programs (and partial rows) of the backward
TESTS = ("tests/test_operators.py", "tests/test_gradcheck.py", "tests/test_layer_norm.py")


def _alignment(columns: int, inner: int) -> int:
    """The kernels' ALIGN (``aligned``): what the row length is a multiple of, where rows
    are contiguous (the last axis); 1 elsewhere, where nothing is read 16 bytes at a time."""
    return row_alignment(columns) if inner == 1 else 1


@triton.jit
def _tile_offsets(rows, row_ok, start, C, INNER, BLOCK: tl.constexpr):
    """Offsets of the columns ``start .. start + BLOCK`` (of C) of the rows ``rows``, the tile's
    mask and the column numbers."""
    column = start + tl.arange(0, BLOCK).to(tl.int64)
    mask = row_ok[:, None] & (column < C)[None, :]
    offsets = ((rows // INNER) * C * INNER + rows % INNER)[:, None] + column[None, :] * INNER
    return offsets, mask, column


@triton.jit
def _forward_kernel(X, GAMMA, BETA, Y, MEAN_OUT, STD_OUT, KEPT_MEAN, KEPT_RSTD, ROWS, C, INNER, eps: tl.float64,
                    WRITE_STATS: tl.constexpr, KEEP: tl.constexpr, CENTER: tl.constexpr, TILE_ROWS: tl.constexpr,
                    BLOCK: tl.constexpr, ALIGN: tl.constexpr):
    """TILE_ROWS rows per program (several short rows, or one long one looped BLOCK columns at
    a time). CENTER: LayerNorm (the mean subtracted, beta added); else RMSNorm."""
    C = aligned(C, ALIGN)
    rows = tl.program_id(0).to(tl.int64) * TILE_ROWS + tl.arange(0, TILE_ROWS)
    row_ok = rows < ROWS
    total = widen(tl.zeros((TILE_ROWS, BLOCK), tl.float32), X)
    if CENTER:
        for start in range(0, C, BLOCK):
            offsets, mask, _ = _tile_offsets(rows, row_ok, start, C, INNER, BLOCK)
            total += widen(tl.load(X + offsets, mask=mask, other=0.0), X)
    mean = tl.sum(total, axis=1) / C  # RMSNorm: 0
    squares = widen(tl.zeros((TILE_ROWS, BLOCK), tl.float32), X)
    for start in range(0, C, BLOCK):
        offsets, mask, _ = _tile_offsets(rows, row_ok, start, C, INNER, BLOCK)
        deviation = tl.where(mask, widen(tl.load(X + offsets, mask=mask, other=0.0), X) - mean[:, None], 0.0)
        squares += deviation * deviation
    var = tl.sum(squares, axis=1) / C
    eps = eps.to(var.dtype)
    rstd = 1.0 / tl.sqrt(var + eps)
    for start in range(0, C, BLOCK):
        offsets, mask, column = _tile_offsets(rows, row_ok, start, C, INNER, BLOCK)
        x = widen(tl.load(X + offsets, mask=mask, other=0.0), X)
        gamma = widen(tl.load(GAMMA + column, mask=column < C, other=0.0), X)
        y = (x - mean[:, None]) * rstd[:, None] * gamma[None, :]
        if CENTER:
            y += widen(tl.load(BETA + column, mask=column < C, other=0.0), X)[None, :]
        store(Y, offsets, y, mask)
    if WRITE_STATS:  # output_mean_var: the mean and the standard deviation, as MXNet's
        store(MEAN_OUT, rows, mean, row_ok)
        store(STD_OUT, rows, tl.sqrt(var + eps), row_ok)
    if KEEP:
        if CENTER:
            store(KEPT_MEAN, rows, mean, row_ok)
        store(KEPT_RSTD, rows, rstd, row_ok)


@triton.jit
def _backward_rows_kernel(X, DY, GAMMA, MEAN, RSTD, DX, PARTIAL_DGAMMA, PARTIAL_DBETA, ROWS, C, INNER,
                          HAS_DX: tl.constexpr, ACC_DX: tl.constexpr, PARTIAL: tl.constexpr, CENTER: tl.constexpr,
                          TILE_ROWS: tl.constexpr, BLOCK: tl.constexpr, ALIGN: tl.constexpr):
    """Program p: the tiles of TILE_ROWS rows p, p + P, ...; dx of each row, and its
    dgamma/dbeta terms added into partial row p (zeroed first: the buffer is scratch), in the
    same order every run. Not CENTER (RMSNorm): mean 0, no mean(g) term and no dbeta."""
    C = aligned(C, ALIGN)
    p = tl.program_id(0).to(tl.int64)
    programs = tl.num_programs(0)
    if PARTIAL:
        for start in range(0, C, BLOCK):
            column = start + tl.arange(0, BLOCK).to(tl.int64)
            zero = widen(tl.zeros((BLOCK,), tl.float32), X)
            store(PARTIAL_DGAMMA, p * C + column, zero, column < C)
            if CENTER:
                store(PARTIAL_DBETA, p * C + column, zero, column < C)
    for tile in range(p, tl.cdiv(ROWS, TILE_ROWS), programs):
        rows = tile * TILE_ROWS + tl.arange(0, TILE_ROWS)
        row_ok = rows < ROWS
        rstd = widen(tl.load(RSTD + rows, mask=row_ok, other=0.0), X)
        mean = tl.zeros_like(rstd)
        if CENTER:
            mean = widen(tl.load(MEAN + rows, mask=row_ok, other=0.0), X)
        sum_g = widen(tl.zeros((TILE_ROWS, BLOCK), tl.float32), X)
        sum_g_xhat = widen(tl.zeros((TILE_ROWS, BLOCK), tl.float32), X)
        for start in range(0, C, BLOCK):
            offsets, mask, column = _tile_offsets(rows, row_ok, start, C, INNER, BLOCK)
            dy = widen(tl.load(DY + offsets, mask=mask, other=0.0), X)
            x = widen(tl.load(X + offsets, mask=mask, other=0.0), X)
            xhat = tl.where(mask, (x - mean[:, None]) * rstd[:, None], 0.0)
            g = dy * widen(tl.load(GAMMA + column, mask=column < C, other=0.0), X)[None, :]
            sum_g += g
            sum_g_xhat += g * xhat
            if PARTIAL:
                where = p * C + column
                store(PARTIAL_DGAMMA, where, widen(tl.load(PARTIAL_DGAMMA + where, mask=column < C, other=0.0), X)
                      + tl.sum(dy * xhat, axis=0), column < C)
                if CENTER:
                    store(PARTIAL_DBETA, where, widen(tl.load(PARTIAL_DBETA + where, mask=column < C, other=0.0),
                                                      X) + tl.sum(dy, axis=0), column < C)
        if HAS_DX:
            mean_g = tl.sum(sum_g, axis=1) / C
            if not CENTER:
                mean_g = tl.zeros_like(mean_g)
            mean_g_xhat = tl.sum(sum_g_xhat, axis=1) / C
            for start in range(0, C, BLOCK):
                offsets, mask, column = _tile_offsets(rows, row_ok, start, C, INNER, BLOCK)
                dy = widen(tl.load(DY + offsets, mask=mask, other=0.0), X)
                xhat = (widen(tl.load(X + offsets, mask=mask, other=0.0), X) - mean[:, None]) * rstd[:, None]
                g = dy * widen(tl.load(GAMMA + column, mask=column < C, other=0.0), X)[None, :]
                store_result(DX, offsets, rstd[:, None] * (g - mean_g[:, None] - xhat * mean_g_xhat[:, None]), mask,
                             ACC_DX)


@triton.jit
def _column_sums_kernel(PARTIAL_DGAMMA, PARTIAL_DBETA, DGAMMA, DBETA, PROGRAMS, C, HAS_DGAMMA: tl.constexpr,
                        HAS_DBETA: tl.constexpr, ACC_DGAMMA: tl.constexpr, ACC_DBETA: tl.constexpr,
                        BLOCK: tl.constexpr, ALIGN: tl.constexpr):
    C = aligned(C, ALIGN)
    column = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK).to(tl.int64)
    mask = column < C
    dgamma = widen(tl.zeros((BLOCK,), tl.float32), PARTIAL_DGAMMA)
    dbeta = widen(tl.zeros((BLOCK,), tl.float32), PARTIAL_DGAMMA)
    for p in range(0, PROGRAMS):  # in program order: the same sum every run
        dgamma += tl.load(PARTIAL_DGAMMA + p * C + column, mask=mask, other=0.0)
        if HAS_DBETA:
            dbeta += tl.load(PARTIAL_DBETA + p * C + column, mask=mask, other=0.0)
    if HAS_DGAMMA:
        store_result(DGAMMA, column, dgamma, mask, ACC_DGAMMA)
    if HAS_DBETA:
        store_result(DBETA, column, dbeta, mask, ACC_DBETA)


def _tile(columns: int) -> tuple[int, int]:
    """(rows, columns) of a program's tile: a whole short row (to a power of two) and as many
    rows as fit in TILE, or one row BLOCK columns at a time."""
    block = min(BLOCK, triton.next_power_of_2(columns))
    return max(1, TILE // block), block


def partials(shape, axis: int) -> int:
    """How many partial rows the backward sums gamma's and beta's gradients through."""
    return max(1, min(PARTIALS, along_axis(tuple(shape), axis)[2]))


def _check(fn: str, x: torch.Tensor, axis: int, rows_shaped: dict, columns_shaped: dict) -> tuple[int, int, int]:
    check_tensor(fn, "data", x)
    if not x.is_contiguous():
        raise KernelArgumentError(f"{fn}: data must be contiguous, got strides {x.stride()}")
    if not -x.dim() <= axis < x.dim():
        raise KernelArgumentError(f"{fn}: axis={axis} is out of range for data of shape {tuple(x.shape)}")
    columns, inner, rows = along_axis(tuple(x.shape), axis)
    for name, (t, want) in {**{k: (v, rows) for k, v in rows_shaped.items()},
                            **{k: (v, columns) for k, v in columns_shaped.items()}}.items():
        if t is not None:
            check_tensor(fn, name, t)
            if t.numel() != want or not t.is_contiguous():
                raise KernelArgumentError(f"{fn}: {name} has {t.numel()} elements (shape {tuple(t.shape)}), expected "
                                          f"{want} contiguous")
    check_same(fn, "device", data=x, **{k: v for k, v in {**rows_shaped, **columns_shaped}.items()})
    return columns, inner, rows


def plan_layer_norm_forward(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, out: torch.Tensor, *,
                            axis: int, eps: float, mean_out: torch.Tensor | None = None,
                            std_out: torch.Tensor | None = None, kept_mean: torch.Tensor | None = None,
                            kept_rstd: torch.Tensor | None = None) -> list[Launch]:
    """``out = (x - mean) / sqrt(var + eps) * gamma + beta`` along ``axis``; ``mean_out`` /
    ``std_out`` (output_mean_var) and ``kept_*`` (for backward) take each row's statistics."""
    fn = "layer_norm_forward"
    columns, inner, rows = _check(fn, x, axis, dict(mean_out=mean_out, std_out=std_out, kept_mean=kept_mean,
                                                   kept_rstd=kept_rstd), dict(gamma=gamma, beta=beta))
    check_contiguous_like(fn, x, out=out)
    if (mean_out is None) != (std_out is None) or (kept_mean is None) != (kept_rstd is None):
        raise KernelArgumentError(f"{fn}: a row's mean and spread are written together or not at all")
    return _forward_launches(x, gamma, beta, out, columns, inner, rows, eps, mean_out, std_out, kept_mean, kept_rstd)


def plan_rms_norm_forward(x: torch.Tensor, gamma: torch.Tensor, out: torch.Tensor, *, axis: int, eps: float,
                          kept_rstd: torch.Tensor | None = None) -> list[Launch]:
    """``out = x / sqrt(mean(x**2) + eps) * gamma`` along ``axis``; ``kept_rstd`` (for
    backward) takes each row's ``1 / sqrt(mean(x**2) + eps)``."""
    fn = "rms_norm_forward"
    columns, inner, rows = _check(fn, x, axis, dict(kept_rstd=kept_rstd), dict(gamma=gamma))
    check_contiguous_like(fn, x, out=out)
    return _forward_launches(x, gamma, None, out, columns, inner, rows, eps, None, None, None, kept_rstd)


def _forward_launches(x, gamma, beta, out, columns, inner, rows, eps, mean_out, std_out, kept_mean, kept_rstd):
    """LayerNorm's forward, or RMSNorm's where ``beta`` is None."""
    if rows == 0 or columns == 0:
        return []
    tile_rows, block = _tile(columns)
    unused = x  # a pointer the kernel does not touch under its flags
    return [Launch(_forward_kernel, (triton.cdiv(rows, tile_rows),),
                   [x, gamma, unused if beta is None else beta, out, unused if mean_out is None else mean_out,
                    unused if std_out is None else std_out, unused if kept_mean is None else kept_mean,
                    unused if kept_rstd is None else kept_rstd, rows, columns, inner, float(eps)],
                   dict(WRITE_STATS=mean_out is not None, KEEP=kept_rstd is not None, CENTER=beta is not None,
                        TILE_ROWS=tile_rows, BLOCK=block, ALIGN=_alignment(columns, inner)))]


def plan_layer_norm_backward(x: torch.Tensor, grad_out: torch.Tensor, gamma: torch.Tensor, mean: torch.Tensor,
                             rstd: torch.Tensor, grad_x: torch.Tensor | None, grad_gamma: torch.Tensor | None,
                             grad_beta: torch.Tensor | None, *, axis: int, partial_dgamma: torch.Tensor | None = None,
                             partial_dbeta: torch.Tensor | None = None,
                             accumulate=(False, False, False)) -> list[Launch]:
    """The gradients of data, gamma and beta (None: not wanted; ``accumulate``: add into
    them) from the kept row statistics; gamma's and beta's go through ``partial_*``
    (``partials(shape, axis)`` x C scratch in the compute dtype)."""
    fn = "layer_norm_backward"
    columns, inner, rows = _check(fn, x, axis, dict(mean=mean, rstd=rstd),
                                  dict(gamma=gamma, grad_gamma=grad_gamma, grad_beta=grad_beta))
    check_contiguous_like(fn, x, grad_out=grad_out, grad_x=grad_x)
    return _backward_launches(fn, x, grad_out, gamma, mean, rstd, grad_x, grad_gamma, grad_beta, columns, inner,
                              rows, axis, partial_dgamma, partial_dbeta, accumulate, center=True)


def plan_rms_norm_backward(x: torch.Tensor, grad_out: torch.Tensor, gamma: torch.Tensor, rstd: torch.Tensor,
                           grad_x: torch.Tensor | None, grad_gamma: torch.Tensor | None, *, axis: int,
                           partial_dgamma: torch.Tensor | None = None, accumulate=(False, False)) -> list[Launch]:
    """RMSNorm's gradients of data and gamma (None: not wanted; ``accumulate``: add into
    them) from the kept ``rstd``; gamma's goes through ``partial_dgamma`` (as LayerNorm's)."""
    fn = "rms_norm_backward"
    columns, inner, rows = _check(fn, x, axis, dict(rstd=rstd), dict(gamma=gamma, grad_gamma=grad_gamma))
    check_contiguous_like(fn, x, grad_out=grad_out, grad_x=grad_x)
    return _backward_launches(fn, x, grad_out, gamma, None, rstd, grad_x, grad_gamma, None, columns, inner, rows,
                              axis, partial_dgamma, partial_dgamma, (*accumulate, False), center=False)


def _backward_launches(fn, x, grad_out, gamma, mean, rstd, grad_x, grad_gamma, grad_beta, columns, inner, rows,
                       axis, partial_dgamma, partial_dbeta, accumulate, center: bool) -> list[Launch]:
    """LayerNorm's backward (``center``), or RMSNorm's (no mean, no beta)."""
    wants_columns = grad_gamma is not None or grad_beta is not None
    programs = partials(tuple(x.shape), axis)
    if wants_columns:
        for name, t in (("partial_dgamma", partial_dgamma), ("partial_dbeta", partial_dbeta)):
            if t is None or t.numel() != programs * columns:
                raise KernelArgumentError(f"{fn}: {name} must hold {programs} x {columns} elements (partials())")
    if rows == 0 or columns == 0 or (grad_x is None and not wants_columns):
        return []
    tile_rows, block = _tile(columns)
    launches = [Launch(_backward_rows_kernel, (programs,),
                       [x, grad_out, gamma, rstd if mean is None else mean, rstd, x if grad_x is None else grad_x,
                        partial_dgamma if wants_columns else x, partial_dbeta if wants_columns else x, rows, columns,
                        inner],
                       dict(HAS_DX=grad_x is not None, ACC_DX=bool(accumulate[0]), PARTIAL=wants_columns,
                            CENTER=center, TILE_ROWS=tile_rows, BLOCK=block, ALIGN=_alignment(columns, inner)))]
    if wants_columns:
        launches.append(Launch(_column_sums_kernel, (triton.cdiv(columns, BLOCK),),
                               [partial_dgamma, partial_dbeta, gamma if grad_gamma is None else grad_gamma,
                                gamma if grad_beta is None else grad_beta, programs, columns],
                               dict(HAS_DGAMMA=grad_gamma is not None, HAS_DBETA=grad_beta is not None,
                                    ACC_DGAMMA=bool(accumulate[1]), ACC_DBETA=bool(accumulate[2]), BLOCK=BLOCK,
                                    ALIGN=row_alignment(columns))))
    return launches


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    shape = (8192, 4096) if large else (5, 7, 3)
    axis = -1 if large else 1
    columns, _, rows = along_axis(shape, axis)
    ct = torch.float64 if dtype == torch.float64 else torch.float32
    x, dy = torch.empty(shape, dtype=dtype), torch.empty(shape, dtype=dtype)
    g, b = torch.empty(columns, dtype=dtype), torch.empty(columns, dtype=dtype)
    mean, rstd = torch.empty(rows, dtype=ct), torch.empty(rows, dtype=ct)
    partial = [torch.empty(partials(shape, axis) * columns, dtype=ct) for _ in range(2)]
    forward = plan_layer_norm_forward(x, g, b, torch.empty_like(x), axis=axis, eps=1e-5, kept_mean=mean,
                                      kept_rstd=rstd)
    backward = plan_layer_norm_backward(x, dy, g, mean, rstd, torch.empty_like(x), torch.empty_like(g),
                                        torch.empty_like(b), axis=axis, partial_dgamma=partial[0],
                                        partial_dbeta=partial[1])
    rms_forward = plan_rms_norm_forward(x, g, torch.empty_like(x), axis=axis, eps=1e-5, kept_rstd=rstd)
    rms_backward = plan_rms_norm_backward(x, dy, g, rstd, torch.empty_like(x), torch.empty_like(g), axis=axis,
                                          partial_dgamma=partial[0])
    return [("layer norm forward", forward[0]), ("layer norm grad rows", backward[0]),
            ("layer norm grad column sums", backward[1]), ("rms norm forward", rms_forward[0]),
            ("rms norm grad rows", rms_backward[0]), ("rms norm grad column sums", rms_backward[1])]
