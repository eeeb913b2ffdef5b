"""Normalisation over groups of channels (MXNet's GroupNorm and InstanceNorm): each sample's
channels split into groups (InstanceNorm: one channel each), every group normalised by its
own mean and variance over its channels and spatial positions, then scaled and shifted by
one gamma and one beta per group (MXNet 1.x's GroupNorm: per group, not per channel;
InstanceNorm's groups are the channels, so per channel).

A contiguous (N, C, *spatial) tensor holds each (sample, group) as one contiguous row of
``L = C / groups * spatial`` elements, and row r takes gamma[r % groups]: the kernels see
(rows, L). Forward runs one program per tile of rows: a pass for the mean, one for the
variance of the deviations (not sums of squares, which cancel for rows far from zero), one
that writes ``(x - mean) * rstd * gamma + beta``; a training forward keeps each row's mean
and reciprocal standard deviation for backward.

Backward writes each row's ``dx = rstd * gamma * (dy - mean(dy) - xhat * mean(dy * xhat))``
and the row's ``sum(dy * xhat)`` and ``sum(dy)`` into two scratch rows of their own; gamma's
and beta's gradients are those summed over the samples by LayerNorm's partial-rows kernel,
in sample order: the same bits every run, no atomics.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from ._common import (
    INTERPRET,
    KernelArgumentError,
    Launch,
    aligned,
    check_contiguous_like,
    check_same,
    check_tensor,
    row_alignment,
    store,
    store_result,
    widen,
)
from .layer_norm import _column_sums_kernel

BLOCK = 4096 if INTERPRET else 1024  # at most this many elements in one step of a row
TILE = 1 << 14 if INTERPRET else 4096  # elements a program's tile holds (short rows several at a time)
TESTS = ("tests/test_operators.py", "tests/test_gradcheck.py", "tests/test_group_norm.py")


@triton.jit
def _row_tile(rows, row_ok, start, L, BLOCK: tl.constexpr):
    """Offsets of the elements ``start .. start + BLOCK`` (of L) of the rows ``rows``, and
    the tile's mask."""
    column = start + tl.arange(0, BLOCK).to(tl.int64)
    return rows[:, None] * L + column[None, :], row_ok[:, None] & (column < L)[None, :]


@triton.jit
def _forward_kernel(X, GAMMA, BETA, Y, MEAN_OUT, STD_OUT, KEPT_MEAN, KEPT_RSTD, ROWS, L, GROUPS, eps: tl.float64,
                    WRITE_STATS: tl.constexpr, KEEP: tl.constexpr, TILE_ROWS: tl.constexpr, BLOCK: tl.constexpr,
                    ALIGN: tl.constexpr):
    L = aligned(L, ALIGN)
    rows = tl.program_id(0).to(tl.int64) * TILE_ROWS + tl.arange(0, TILE_ROWS)
    row_ok = rows < ROWS
    total = widen(tl.zeros((TILE_ROWS, BLOCK), tl.float32), X)
    for start in range(0, L, BLOCK):
        offsets, mask = _row_tile(rows, row_ok, start, L, BLOCK)
        total += widen(tl.load(X + offsets, mask=mask, other=0.0), X)
    mean = tl.sum(total, axis=1) / L
    squares = widen(tl.zeros((TILE_ROWS, BLOCK), tl.float32), X)
    for start in range(0, L, BLOCK):
        offsets, mask = _row_tile(rows, row_ok, start, L, BLOCK)
        deviation = tl.where(mask, widen(tl.load(X + offsets, mask=mask, other=0.0), X) - mean[:, None], 0.0)
        squares += deviation * deviation
    var = tl.sum(squares, axis=1) / L
    eps = eps.to(var.dtype)
    rstd = 1.0 / tl.sqrt(var + eps)
    group = rows % GROUPS
    scale = rstd * widen(tl.load(GAMMA + group, mask=row_ok, other=0.0), X)
    shift = widen(tl.load(BETA + group, mask=row_ok, other=0.0), X)
    for start in range(0, L, BLOCK):
        offsets, mask = _row_tile(rows, row_ok, start, L, BLOCK)
        x = widen(tl.load(X + offsets, mask=mask, other=0.0), X)
        store(Y, offsets, (x - mean[:, None]) * scale[:, None] + shift[:, None], mask)
    if WRITE_STATS:  # output_mean_var: the mean and the standard deviation, as MXNet's
        store(MEAN_OUT, rows, mean, row_ok)
        store(STD_OUT, rows, tl.sqrt(var + eps), row_ok)
    if KEEP:
        store(KEPT_MEAN, rows, mean, row_ok)
        store(KEPT_RSTD, rows, rstd, row_ok)


@triton.jit
def _backward_rows_kernel(X, DY, GAMMA, MEAN, RSTD, DX, ROW_DGAMMA, ROW_DBETA, ROWS, L, GROUPS,
                          HAS_DX: tl.constexpr, ACC_DX: tl.constexpr, ROW_SUMS: tl.constexpr,
                          TILE_ROWS: tl.constexpr, BLOCK: tl.constexpr, ALIGN: tl.constexpr):
    L = aligned(L, ALIGN)
    rows = tl.program_id(0).to(tl.int64) * TILE_ROWS + tl.arange(0, TILE_ROWS)
    row_ok = rows < ROWS
    mean = widen(tl.load(MEAN + rows, mask=row_ok, other=0.0), X)
    rstd = widen(tl.load(RSTD + rows, mask=row_ok, other=0.0), X)
    sum_dy = widen(tl.zeros((TILE_ROWS, BLOCK), tl.float32), X)
    sum_dy_xhat = widen(tl.zeros((TILE_ROWS, BLOCK), tl.float32), X)
    for start in range(0, L, BLOCK):
        offsets, mask = _row_tile(rows, row_ok, start, L, BLOCK)
        dy = widen(tl.load(DY + offsets, mask=mask, other=0.0), X)
        xhat = tl.where(mask, (widen(tl.load(X + offsets, mask=mask, other=0.0), X) - mean[:, None]) * rstd[:, None],
                        0.0)
        sum_dy += dy
        sum_dy_xhat += dy * xhat
    row_dbeta, row_dgamma = tl.sum(sum_dy, axis=1), tl.sum(sum_dy_xhat, axis=1)
    if ROW_SUMS:
        store(ROW_DGAMMA, rows, row_dgamma, row_ok)
        store(ROW_DBETA, rows, row_dbeta, row_ok)
    if HAS_DX:
        scale = rstd * widen(tl.load(GAMMA + rows % GROUPS, mask=row_ok, other=0.0), X)
        mean_dy, mean_dy_xhat = row_dbeta / L, row_dgamma / L
        for start in range(0, L, BLOCK):
            offsets, mask = _row_tile(rows, row_ok, start, L, BLOCK)
            dy = widen(tl.load(DY + offsets, mask=mask, other=0.0), X)
            xhat = (widen(tl.load(X + offsets, mask=mask, other=0.0), X) - mean[:, None]) * rstd[:, None]
            store_result(DX, offsets, scale[:, None] * (dy - mean_dy[:, None] - xhat * mean_dy_xhat[:, None]), mask,
                         ACC_DX)


def _tile(length: int) -> tuple[int, int]:
    """(rows, elements) of a program's tile: a whole short row (to a power of two) and as
    many rows as fit in TILE, or one row BLOCK elements at a time."""
    block = min(BLOCK, triton.next_power_of_2(length))
    return max(1, TILE // block), block


def rows_of(shape, groups: int) -> tuple[int, int]:
    """(rows, elements per row) of data of ``shape`` split into ``groups`` per sample."""
    return shape[0] * groups, shape[1] // groups * math.prod(shape[2:])


def _check(fn: str, x: torch.Tensor, groups: int, per_row: dict, per_group: dict) -> tuple[int, int]:
    check_tensor(fn, "data", x)
    if x.dim() < 3 or not x.is_contiguous():
        raise KernelArgumentError(f"{fn}: data must be contiguous (batch, channels, spatial...), got shape "
                                  f"{tuple(x.shape)}, strides {x.stride()}")
    if groups < 1 or x.shape[1] % groups:
        raise KernelArgumentError(f"{fn}: {x.shape[1]} channels do not split into groups={groups}")
    rows, length = rows_of(tuple(x.shape), groups)
    for name, (t, want) in {**{k: (v, rows) for k, v in per_row.items()},
                            **{k: (v, groups) for k, v in per_group.items()}}.items():
        if t is not None:
            check_tensor(fn, name, t)
            if t.numel() != want or not t.is_contiguous():
                raise KernelArgumentError(f"{fn}: {name} has {t.numel()} elements (shape {tuple(t.shape)}), expected "
                                          f"{want} contiguous")
    check_same(fn, "device", data=x, **per_row, **per_group)
    return rows, length


def plan_group_norm_forward(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, out: torch.Tensor, *,
                            groups: int, eps: float, mean_out: torch.Tensor | None = None,
                            std_out: torch.Tensor | None = None, kept_mean: torch.Tensor | None = None,
                            kept_rstd: torch.Tensor | None = None) -> list[Launch]:
    """``out = (x - mean) / sqrt(var + eps) * gamma + beta`` per (sample, group): gamma and
    beta (groups,); ``mean_out`` / ``std_out`` (output_mean_var) and ``kept_*`` (for
    backward) take each row's statistics, (batch x groups) values."""
    fn = "group_norm_forward"
    rows, length = _check(fn, x, groups, dict(mean_out=mean_out, std_out=std_out, kept_mean=kept_mean,
                                              kept_rstd=kept_rstd), dict(gamma=gamma, beta=beta))
    check_contiguous_like(fn, x, out=out)
    if (mean_out is None) != (std_out is None) or (kept_mean is None) != (kept_rstd is None):
        raise KernelArgumentError(f"{fn}: a row's mean and spread are written together or not at all")
    if rows == 0 or length == 0:
        return []
    tile_rows, block = _tile(length)
    unused = x  # a pointer the kernel does not touch under its flags
    return [Launch(_forward_kernel, (triton.cdiv(rows, tile_rows),),
                   [x, gamma, beta, out, mean_out if mean_out is not None else unused,
                    std_out if std_out is not None else unused, kept_mean if kept_mean is not None else unused,
                    kept_rstd if kept_rstd is not None else unused, rows, length, groups, float(eps)],
                   dict(WRITE_STATS=mean_out is not None, KEEP=kept_rstd is not None, TILE_ROWS=tile_rows,
                        BLOCK=block, ALIGN=row_alignment(length)))]


def plan_group_norm_backward(x: torch.Tensor, grad_out: torch.Tensor, gamma: torch.Tensor, mean: torch.Tensor,
                             rstd: torch.Tensor, grad_x: torch.Tensor | None, grad_gamma: torch.Tensor | None,
                             grad_beta: torch.Tensor | None, *, groups: int, row_dgamma: torch.Tensor | None = None,
                             row_dbeta: torch.Tensor | None = None, accumulate=(False, False, False)) -> list[Launch]:
    """The gradients of data, gamma and beta (None: not wanted; ``accumulate``: add into
    them) from the kept row statistics; gamma's and beta's go through ``row_*`` (one value
    per row, batch x groups, scratch in the compute dtype)."""
    fn = "group_norm_backward"
    rows, length = _check(fn, x, groups, dict(mean=mean, rstd=rstd), dict(gamma=gamma, grad_gamma=grad_gamma,
                                                                           grad_beta=grad_beta))
    check_contiguous_like(fn, x, grad_out=grad_out, grad_x=grad_x)
    wants_groups = grad_gamma is not None or grad_beta is not None
    if wants_groups:
        for name, t in (("row_dgamma", row_dgamma), ("row_dbeta", row_dbeta)):
            if t is None or t.numel() != rows:
                raise KernelArgumentError(f"{fn}: {name} must hold {rows} elements (one per sample and group)")
    if rows == 0 or length == 0 or (grad_x is None and not wants_groups):
        return []
    tile_rows, block = _tile(length)
    launches = [Launch(_backward_rows_kernel, (triton.cdiv(rows, tile_rows),),
                       [x, grad_out, gamma, mean, rstd, x if grad_x is None else grad_x,
                        row_dgamma if wants_groups else x, row_dbeta if wants_groups else x, rows, length, groups],
                       dict(HAS_DX=grad_x is not None, ACC_DX=bool(accumulate[0]), ROW_SUMS=wants_groups,
                            TILE_ROWS=tile_rows, BLOCK=block, ALIGN=row_alignment(length)))]
    if wants_groups:  # the samples' rows summed per group, in sample order
        launches.append(Launch(_column_sums_kernel, (triton.cdiv(groups, BLOCK),),
                               [row_dgamma, row_dbeta, gamma if grad_gamma is None else grad_gamma,
                                gamma if grad_beta is None else grad_beta, x.shape[0], groups],
                               dict(HAS_DGAMMA=grad_gamma is not None, HAS_DBETA=grad_beta is not None,
                                    ACC_DGAMMA=bool(accumulate[1]), ACC_DBETA=bool(accumulate[2]), BLOCK=BLOCK,
                                    ALIGN=row_alignment(groups))))
    return launches


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    shape, groups = ((32, 256, 28, 28), 32) if large else ((3, 6, 5, 3), 2)
    rows, _ = rows_of(shape, groups)
    ct = torch.float64 if dtype == torch.float64 else torch.float32
    x, dy = torch.empty(shape, dtype=dtype), torch.empty(shape, dtype=dtype)
    g, b = torch.empty(groups, dtype=dtype), torch.empty(groups, dtype=dtype)
    mean, rstd, row_dgamma, row_dbeta = (torch.empty(rows, dtype=ct) for _ in range(4))
    forward = plan_group_norm_forward(x, g, b, torch.empty_like(x), groups=groups, eps=1e-5, kept_mean=mean,
                                      kept_rstd=rstd)
    backward = plan_group_norm_backward(x, dy, g, mean, rstd, torch.empty_like(x), torch.empty_like(g),
                                        torch.empty_like(b), groups=groups, row_dgamma=row_dgamma,
                                        row_dbeta=row_dbeta, accumulate=(True, False, False))
    return [("group norm forward", forward[0]), ("group norm grad rows accumulating", backward[0]),
            ("group norm grad group sums", backward[1])]
