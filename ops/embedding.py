"""Embedding: rows of a weight table gathered by index, and the weight gradient summed per
row in a fixed order, so that it has the same bits every run.

An index may be a float or an integer; one that is not a whole number in ``[0, rows)`` (NaN,
1.5, -1, ``rows``) gives its output row NaN rather than some other row, and adds nothing to
the weight gradient: a wrong index shows instead of training the wrong row.

The weight gradient has no atomics (their order, and so the rounding of a float sum, changes
from run to run); it adds output gradients through one-hot matrix products (``tl.dot``:
each product exact, the blocks in position order), one of two ways:

- a small table (fewer blocks of rows than of positions: characters, pixel values): each
  program owns a block of rows and scans every position once, storing all its rows;
- a large table (a vocabulary): each program takes a block of positions and scans every
  position's index: positions holding the same index as one of its own add their gradient,
  and only the first position holding an index (its owner) stores that row's sum. Blocks of
  positions sharing no index are skipped after comparing indices, so the cost is
  ``positions**2`` index comparisons plus the gradients of positions that share an index;
  rows no position holds are zero (a fill first) or untouched when accumulating.

A block of gradients holding a NaN or an infinity is added row by row instead (a NaN times a
one-hot 0 would reach every row): a NaN reaches only its own row.

The kernels are told the alignment of the row length (``ALIGN``, ``_common.aligned``): Triton
knows an integer's divisibility only by 16, so rows of 300 columns (GloVe's) would be read
and written one element at a time where 16 bytes fit (4 float32 columns).
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
    prepare_out,
    row_alignment,
    store,
)
from .memory import plan_fill

TESTS = ("tests/test_operators.py", "tests/test_gradcheck.py", "tests/test_embedding.py")

# Positions and columns per program. The interpreter runs programs one after another, so
# it takes few large ones; on a GPU 32 positions keep the one-hot product a tensor-core tile.
BLOCK_ROWS = 64 if INTERPRET else 32
BLOCK_COLS = 64
BLOCK_TABLE = 64 if INTERPRET else 32  # rows of the table per program, for small tables


@triton.jit
def _valid_rows(IDX, positions, in_range, rows):
    """Each position's row (int64; 0 where invalid) and whether its index is a whole number in [0, rows)."""
    index = tl.load(IDX + positions, mask=in_range, other=-1).to(tl.float64)
    valid = in_range & (index >= 0) & (index < rows) & (index == tl.floor(index))
    return tl.where(valid, index, 0.0).to(tl.int64), valid


@triton.jit
def _gather_kernel(IDX, W, OUT, n, rows, cols, ALIGN: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
    cols = aligned(cols, ALIGN)
    positions = tl.program_id(0).to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    columns = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    in_range = positions < n
    row, valid = _valid_rows(IDX, positions, in_range, rows)
    mask = in_range[:, None] & (columns < cols)[None, :]
    w = tl.load(W + row[:, None] * cols + columns[None, :], mask=mask & valid[:, None], other=float("nan"))
    tl.store(OUT + positions[:, None] * cols + columns[None, :], w, mask=mask)


@triton.jit
def _add_matching(acc, hit, owner_rows, owner_valid, IDX, DY, start, n, rows, cols, columns, col_ok,
                  UPCAST: tl.constexpr, BLOCK_N: tl.constexpr):
    """acc (owners x columns) plus the gradients of positions start .. start + BLOCK_N, each
    into the owners ``hit`` marks (owners x positions): one exact one-hot product."""
    theirs = start + tl.arange(0, BLOCK_N).to(tl.int64)
    dy = tl.load(DY + theirs[:, None] * cols + columns[None, :], mask=(theirs < n)[:, None] & col_ok[None, :],
                 other=0.0)
    if UPCAST:  # the interpreter holds bfloat16 as bit patterns: multiply in float32 (exact)
        dy = dy.to(tl.float32)
    if tl.max(((dy - dy) != 0).to(tl.int32)) > 0:
        # A NaN or inf times a one-hot 0 is NaN: it would reach every row of the block.
        # Rare, so add these positions' rows one by one, each only into its own row.
        for k in range(BLOCK_N):
            their = start + k + tl.zeros((1,), tl.int64)  # a tensor, compiled and interpreted
            row, valid = _valid_rows(IDX, their, their < n, rows)
            grad = tl.load(DY + their * cols + columns, mask=col_ok & (their < n), other=0.0).to(acc.dtype)
            acc += tl.where(((owner_rows == row) & owner_valid & valid)[:, None], grad[None, :], 0.0)
    else:
        one_hot = hit.to(dy.dtype)
        # One-hot times the gradient: each product is exact; blocks are added in position order.
        if acc.dtype == tl.float64:
            acc = acc + tl.dot(one_hot, dy, input_precision="ieee")
        else:
            acc = tl.dot(one_hot, dy, acc, input_precision="ieee")
    return acc


@triton.jit
def _weight_grad_by_position_kernel(IDX, DY, DW, n, rows, cols, ACCUMULATE: tl.constexpr, UPCAST: tl.constexpr,
                                    ALIGN: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
    """Each row's gradient, summed over the positions holding it block after block, stored by
    its first position (a large table: blocks of positions sharing no row are skipped)."""
    cols = aligned(cols, ALIGN)
    mine = tl.program_id(0).to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    columns = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    col_ok = columns < cols
    my_row, my_valid = _valid_rows(IDX, mine, mine < n, rows)
    ACC = tl.float64 if DY.dtype.element_ty == tl.float64 else tl.float32
    acc = tl.zeros((BLOCK_N, BLOCK_D), ACC)
    first = mine  # the first position holding each of my rows, found below (a position holds its own row)
    for start in range(0, n, BLOCK_N):
        theirs = start + tl.arange(0, BLOCK_N).to(tl.int64)
        their_row, their_valid = _valid_rows(IDX, theirs, theirs < n, rows)
        same = (my_row[:, None] == their_row[None, :]) & my_valid[:, None] & their_valid[None, :]
        if tl.max(same.to(tl.int32)) > 0:
            first = tl.minimum(first, tl.min(tl.where(same, theirs[None, :], n), axis=1))
            acc = _add_matching(acc, same, my_row, my_valid, IDX, DY, start, n, rows, cols, columns, col_ok,
                                UPCAST, BLOCK_N)
    owner = my_valid & (first == mine)
    target = DW + my_row[:, None] * cols + columns[None, :]
    mask = owner[:, None] & col_ok[None, :]
    if ACCUMULATE:
        acc = acc + tl.load(target, mask=mask, other=0.0).to(ACC)
    store(target, 0, acc, mask)


@triton.jit
def _weight_grad_by_row_kernel(IDX, DY, DW, n, rows, cols, ACCUMULATE: tl.constexpr, UPCAST: tl.constexpr,
                               ALIGN: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_R: tl.constexpr,
                               BLOCK_D: tl.constexpr):
    """Each block of rows sums the positions holding them, block after block, and stores every
    one of its rows (a small table: fewer blocks of rows than of positions; no fill needed)."""
    cols = aligned(cols, ALIGN)
    mine = tl.program_id(0).to(tl.int64) * BLOCK_R + tl.arange(0, BLOCK_R)
    columns = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    col_ok = columns < cols
    my_valid = mine < rows
    ACC = tl.float64 if DY.dtype.element_ty == tl.float64 else tl.float32
    acc = tl.zeros((BLOCK_R, BLOCK_D), ACC)
    for start in range(0, n, BLOCK_N):
        theirs = start + tl.arange(0, BLOCK_N).to(tl.int64)
        their_row, their_valid = _valid_rows(IDX, theirs, theirs < n, rows)
        hit = (mine[:, None] == their_row[None, :]) & my_valid[:, None] & their_valid[None, :]
        if tl.max(hit.to(tl.int32)) > 0:
            acc = _add_matching(acc, hit, mine, my_valid, IDX, DY, start, n, rows, cols, columns, col_ok,
                                UPCAST, BLOCK_N)
    target = DW + mine[:, None] * cols + columns[None, :]
    mask = my_valid[:, None] & col_ok[None, :]
    if ACCUMULATE:
        acc = acc + tl.load(target, mask=mask, other=0.0).to(ACC)
    store(target, 0, acc, mask)


def _check_indices(fn: str, indices: torch.Tensor) -> None:
    check_tensor(fn, "indices", indices, FLOAT_DTYPES + INDEX_DTYPES)
    if not indices.is_contiguous():
        raise KernelArgumentError(f"{fn}: indices must be contiguous, got strides {indices.stride()}")


def _check_table(fn: str, name: str, table: torch.Tensor) -> None:
    check_tensor(fn, name, table)
    if table.dim() != 2 or not table.is_contiguous():
        raise KernelArgumentError(f"{fn}: {name} must be a contiguous (rows, columns) table, got shape "
                                  f"{tuple(table.shape)} and strides {table.stride()}")


def plan_embedding(indices: torch.Tensor, weight: torch.Tensor, out: torch.Tensor | None = None) -> list[Launch]:
    """``out[..., :] = weight[indices[...], :]`` (NaN rows for invalid indices); ``out`` has
    shape ``indices.shape + (columns,)``."""
    fn = "embedding"
    _check_indices(fn, indices)
    _check_table(fn, "weight", weight)
    rows, cols = weight.shape
    out = prepare_out(fn, "out", out, (*indices.shape, cols), weight.dtype, weight.device)
    if indices.device != weight.device or not out.is_contiguous():
        raise KernelArgumentError(f"{fn}: indices ({indices.device}), weight ({weight.device}) and a contiguous out "
                                  f"must be on one device; out has strides {out.stride()}")
    n = indices.numel()
    grid = (triton.cdiv(max(n, 1), BLOCK_ROWS), triton.cdiv(max(cols, 1), BLOCK_COLS))
    return [Launch(_gather_kernel, grid, [indices, weight, out, n, rows, cols],
                   dict(ALIGN=row_alignment(cols), BLOCK_N=BLOCK_ROWS, BLOCK_D=BLOCK_COLS))]


def embedding(indices: torch.Tensor, weight: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """Standalone forward: ``weight[indices]``."""
    launches = plan_embedding(indices, weight, out)
    for launch in launches:
        launch()
    return launches[0].args[2]


def plan_embedding_weight_grad(indices: torch.Tensor, grad_out: torch.Tensor, grad_weight: torch.Tensor,
                               accumulate: bool = False) -> list[Launch]:
    """``grad_weight[r] (+)= sum of grad_out[p] over the positions p holding r``, in a fixed
    order (the same bits every run)."""
    fn = "embedding_weight_grad"
    _check_indices(fn, indices)
    _check_table(fn, "grad_weight", grad_weight)
    rows, cols = grad_weight.shape
    check_tensor(fn, "grad_out", grad_out)
    if tuple(grad_out.shape) != (*indices.shape, cols) or not grad_out.is_contiguous() \
            or grad_out.dtype != grad_weight.dtype:
        raise KernelArgumentError(f"{fn}: grad_out must be contiguous of shape {(*indices.shape, cols)} and dtype "
                                  f"{grad_weight.dtype}, got {tuple(grad_out.shape)} {grad_out.dtype}")
    n = indices.numel()
    options = dict(ACCUMULATE=accumulate, UPCAST=INTERPRET and grad_out.dtype == torch.bfloat16,
                   ALIGN=row_alignment(cols), BLOCK_N=BLOCK_ROWS, BLOCK_D=BLOCK_COLS)
    column_blocks = triton.cdiv(max(cols, 1), BLOCK_COLS)
    if triton.cdiv(max(rows, 1), BLOCK_TABLE) <= triton.cdiv(max(n, 1), BLOCK_ROWS):
        # A table of fewer blocks of rows than of positions (a vocabulary of characters):
        # each program owns rows and scans the positions once.
        return [Launch(_weight_grad_by_row_kernel, (triton.cdiv(rows, BLOCK_TABLE), column_blocks),
                       [indices, grad_out, grad_weight, n, rows, cols], dict(options, BLOCK_R=BLOCK_TABLE))]
    fill = [] if accumulate else plan_fill(grad_weight, 0.0)
    return fill + [Launch(_weight_grad_by_position_kernel, (triton.cdiv(max(n, 1), BLOCK_ROWS), column_blocks),
                          [indices, grad_out, grad_weight, n, rows, cols], options)]


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    # A table of more blocks of rows than there are blocks of positions, and a small one.
    rows, cols, shape = (32000, 1024, (8, 512)) if large else (130, 6, (3, 5))
    weight, small = torch.empty(rows, cols, dtype=dtype), torch.empty(5, cols, dtype=dtype)
    indices = torch.zeros(shape, dtype=torch.int64 if large else dtype)
    out = torch.empty(*shape, cols, dtype=dtype)
    # Rows of 300 columns (GloVe's): a multiple of 4, not 16 (ALIGN 4).
    glove = torch.empty(rows, 300 if large else 12, dtype=dtype)
    glove_out = torch.empty(*shape, glove.shape[1], dtype=dtype)
    return [("embedding", plan_embedding(indices, weight, out)[0]),
            ("embedding rows of 300", plan_embedding(indices, glove, glove_out)[0]),
            ("embedding weight grad rows of 300", plan_embedding_weight_grad(indices, glove_out, glove)[-1]),
            ("embedding weight grad", plan_embedding_weight_grad(indices, out, weight)[-1]),
            ("embedding weight grad accumulating", plan_embedding_weight_grad(indices, out, weight, True)[-1]),
            ("embedding weight grad of a small table", plan_embedding_weight_grad(indices, out, small)[-1]),
            ("embedding weight grad of a small table accumulating",
             plan_embedding_weight_grad(indices, out, small, True)[-1])]
