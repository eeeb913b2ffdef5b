"""Sorting along one axis (topk, sort, argsort): each element's rank, then a scatter to it.

An element's rank is how many elements of its row come before it: smaller ones (larger when
descending), and equal ones at a smaller index, so ties keep their order (a stable sort, as
MXNet's CPU sort gives on ties). NaN is larger than every number (torch's and numpy's
order): an ascending sort puts it last, a descending one (topk's default) first, so a NaN in
the data reaches the output. -0.0 and 0.0 tie.

Counting ranks compares every pair of a row, in tiles: O(length²) comparisons per row
(length / BLOCK_J loads of the row for each tile of BLOCK_I elements), but exact in every
dtype (float64 included), with no bound on the length, no atomics and the same bits every
run. The elements ranked below ``k`` go straight to their place in the outputs: the values,
their indices as floats, and for backward the indices as int32; or, as a mask, 1 where
ranked below ``k``. The values' gradient is a scatter of the output gradient back to those
indices (zero elsewhere): each lands on a different element, so no two programs write one.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from ._common import (
    ELEMENTWISE_BLOCK,
    FLOAT_DTYPES,
    INTERPRET,
    KernelArgumentError,
    Launch,
    check_tensor,
    element_block,
    load_wide,
    store,
    store_result,
)
from .arg_reduce import EXACT_INDEX
from .memory import plan_fill

TESTS = ("tests/test_operators.py", "tests/test_gradcheck.py", "tests/test_sort.py")
# Elements compared at once, (ranked, against): the interpreter prefers few large tiles.
TILE = 1 << 14 if INTERPRET else 4096
BLOCK_J = 256 if INTERPRET else 64


@triton.jit
def _rank_kernel(X, VALUES, INDICES, KEPT, MASK, length, inner, k, tiles, DESCENDING: tl.constexpr,
                 WRITE_VALUES: tl.constexpr, WRITE_INDICES: tl.constexpr, WRITE_KEPT: tl.constexpr,
                 WRITE_MASK: tl.constexpr, BLOCK_I: tl.constexpr, BLOCK_J: tl.constexpr):
    pid = tl.program_id(0).to(tl.int64)
    row, tile = pid // tiles, pid % tiles
    outer_at, inner_at = row // inner, row % inner
    base = outer_at * length * inner + inner_at
    i = tile * BLOCK_I + tl.arange(0, BLOCK_I).to(tl.int64)
    valid_i = i < length
    raw = tl.load(X + base + i * inner, mask=valid_i, other=0.0)
    xi = load_wide(X, base + i * inner, valid_i, 0.0)
    nan_i = xi != xi
    rank = tl.zeros((BLOCK_I,), tl.int32)
    for start in range(0, length, BLOCK_J):
        j = start + tl.arange(0, BLOCK_J).to(tl.int64)
        valid_j = j < length
        xj = load_wide(X, base + j * inner, valid_j, 0.0)
        nan_j = xj != xj
        a, b = xi[:, None], xj[None, :]
        na, nb = nan_i[:, None], nan_j[None, :]
        if DESCENDING:
            before = (b > a) | (nb & (na == 0))
        else:
            before = (b < a) | (na & (nb == 0))
        tie = (b == a) | (na & nb)
        precedes = (before | (tie & (j[None, :] < i[:, None]))) & valid_j[None, :]
        rank += tl.sum(precedes.to(tl.int32), axis=1)
    chosen = valid_i & (rank < k)
    at = outer_at * k * inner + rank.to(tl.int64) * inner + inner_at
    if WRITE_VALUES:
        tl.store(VALUES + at, raw, mask=chosen)  # the element itself: a copy, no rounding
    if WRITE_INDICES:
        store(INDICES, at, i.to(tl.float64), chosen)
    if WRITE_KEPT:
        tl.store(KEPT + at, i.to(tl.int32), mask=chosen)
    if WRITE_MASK:
        store(MASK, base + i * inner, (rank < k).to(tl.float32), valid_i)


@triton.jit
def _scatter_kernel(DY, KEPT, DX, n, length, inner, k, ACCUMULATE: tl.constexpr, BLOCK: tl.constexpr):
    index, mask = element_block(n, BLOCK)
    outer_at, inner_at = index // (k * inner), index % inner
    source = tl.load(KEPT + index, mask=mask, other=0).to(tl.int64)
    dy = load_wide(DY, index, mask, 0.0)
    store_result(DX, outer_at * length * inner + source * inner + inner_at, dy, mask, ACCUMULATE)


def layout(shape, axis: int | None) -> tuple[int, int, int]:
    """(outer, length, inner) of data of ``shape`` sorted along ``axis`` (None: flattened)."""
    if axis is None:
        return 1, math.prod(shape), 1
    axis %= len(shape)
    return math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1:])


def _check_out(fn: str, name: str, t: torch.Tensor | None, count: int, dtypes, device) -> None:
    if t is None:
        return
    check_tensor(fn, name, t, dtypes)
    if t.numel() != count or not t.is_contiguous() or t.device != device:
        raise KernelArgumentError(f"{fn}: {name} must be contiguous with {count} elements on {device}, got shape "
                                  f"{tuple(t.shape)} strides {t.stride()} on {t.device}")


def plan_rank(x: torch.Tensor, axis: int | None, k: int, descending: bool, values: torch.Tensor | None = None,
              indices: torch.Tensor | None = None, kept: torch.Tensor | None = None,
              mask: torch.Tensor | None = None, fn: str = "topk") -> list[Launch]:
    """The ``k`` first elements of each row of ``x`` along ``axis`` (None: the flattened data)
    in ascending (``descending``: descending) order, written as given: ``values`` (x's
    dtype) and ``indices`` (a float dtype) of shape (outer, k, inner), ``kept`` (int32, the
    same indices for ``plan_scatter_backward``), ``mask`` (x's shape and dtype: 1 where
    among the ``k`` first, else 0). ``fn``: the operator named in errors."""
    check_tensor(fn, "x", x, FLOAT_DTYPES)
    if not x.is_contiguous():
        raise KernelArgumentError(f"{fn}: x must be contiguous, got strides {x.stride()}")
    if axis is not None and not -x.dim() <= axis < x.dim():
        raise KernelArgumentError(f"{fn}: axis={axis} is out of range for x of shape {tuple(x.shape)}")
    outer, length, inner = layout(tuple(x.shape), axis)
    if not 0 <= k <= length:
        raise KernelArgumentError(f"{fn}: k={k} must be in [0, {length}] (the length of axis {axis} of shape "
                                  f"{tuple(x.shape)})")
    if length >= 1 << 31:
        raise KernelArgumentError(f"{fn}: an axis of {length} elements has indices beyond int32")
    if indices is not None and length - 1 > EXACT_INDEX.get(indices.dtype, 0):
        raise KernelArgumentError(f"{fn}: an axis of length {length} has indices "
                                  f"{str(indices.dtype).removeprefix('torch.')} cannot hold exactly (every integer "
                                  f"only up to {EXACT_INDEX.get(indices.dtype)}); ask for a wider dtype")
    chosen = outer * k * inner
    _check_out(fn, "values", values, chosen, (x.dtype,), x.device)
    _check_out(fn, "indices", indices, chosen, FLOAT_DTYPES, x.device)
    _check_out(fn, "kept", kept, chosen, (torch.int32,), x.device)
    _check_out(fn, "mask", mask, x.numel(), (x.dtype,), x.device)
    if x.numel() == 0:
        return []
    block_j = min(triton.next_power_of_2(length), BLOCK_J)
    block_i = min(triton.next_power_of_2(length), max(1, TILE // block_j))
    tiles = triton.cdiv(length, block_i)
    return [Launch(_rank_kernel, (outer * inner * tiles,),
                   [x, values if values is not None else x, indices if indices is not None else x,
                    kept if kept is not None else x, mask if mask is not None else x, length, inner, k, tiles],
                   dict(DESCENDING=descending, WRITE_VALUES=values is not None, WRITE_INDICES=indices is not None,
                        WRITE_KEPT=kept is not None, WRITE_MASK=mask is not None, BLOCK_I=block_i,
                        BLOCK_J=block_j))]


def plan_scatter_backward(dy: torch.Tensor, kept: torch.Tensor, dx: torch.Tensor, axis: int | None,
                          accumulate: bool = False) -> list[Launch]:
    """``dx`` (x's shape) gets ``dy`` (the values' gradient, (outer, k, inner)) at the
    indices ``kept`` that ``plan_rank`` wrote, and 0 elsewhere (``accumulate``: added to
    what ``dx`` holds)."""
    fn = "topk_backward"
    check_tensor(fn, "dx", dx, FLOAT_DTYPES)
    check_tensor(fn, "dy", dy, FLOAT_DTYPES)
    outer, length, inner = layout(tuple(dx.shape), axis) if dx.dim() else (1, 1, 1)
    k = dy.numel() // (outer * inner) if outer * inner else 0
    if dy.numel() != outer * k * inner or k > length:
        raise KernelArgumentError(f"{fn}: dy of shape {tuple(dy.shape)} is not (outer, k, inner) = ({outer}, k, "
                                  f"{inner}) with k <= {length} for dx of shape {tuple(dx.shape)}")
    _check_out(fn, "kept", kept, dy.numel(), (torch.int32,), dx.device)
    for name, t in (("dy", dy), ("dx", dx)):
        if not t.is_contiguous():
            raise KernelArgumentError(f"{fn}: {name} must be contiguous, got strides {t.stride()}")
    launches = [] if accumulate or k == length else plan_fill(dx, 0.0)
    if dy.numel():
        launches.append(Launch(_scatter_kernel, (triton.cdiv(dy.numel(), ELEMENTWISE_BLOCK),),
                               [dy, kept, dx, dy.numel(), length, inner, k],
                               dict(ACCUMULATE=accumulate, BLOCK=ELEMENTWISE_BLOCK)))
    return launches


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    """topk of a classifier's scores (values, indices and the kept indices), a mask along a
    middle axis, and the values' gradient scattered back."""
    shape = (256, 32000 if dtype in (torch.float64, torch.float32) else 2048) if large else (5, 6, 37)
    k = 8 if large else 4
    x = torch.empty(shape, dtype=dtype)
    last = (*shape[:-1], k)
    values, kept = torch.empty(last, dtype=dtype), torch.empty(last, dtype=torch.int32)
    indices = torch.empty(last, dtype=torch.float32)
    rank = plan_rank(x, -1, k, True, values=values, indices=indices, kept=kept)[0]
    mask = plan_rank(x, 1, k, False, mask=torch.empty(shape, dtype=dtype))[0]
    dx = torch.empty(shape, dtype=dtype)
    return [("topk values and indices", rank), ("sort mask middle axis", mask),
            ("topk gradient scatter", plan_scatter_backward(values, kept, dx, -1)[-1]),
            ("topk gradient added", plan_scatter_backward(values, kept, dx, -1, accumulate=True)[-1])]
