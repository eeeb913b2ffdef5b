"""index_copy (MXNet's ``contrib.index_copy``): a copy of ``old`` (R, ...) with rows
``index[i]`` replaced by rows i of ``new`` (M, ...): ``out[index[i]] = new[i]``.

Where an index repeats, the last of its rows wins (MXNet leaves it to the order its threads
run in), and only that row of ``new`` takes a gradient: the others never reach the output.
An index that is not a whole number in [0, R) has no row to land in: the whole output is
NaN, and so are both gradients, so a lost row never looks like a computed one (scatter_nd's
rule; MXNet writes past the array).

One kernel serves forward and the gradient of ``old``: a program per block of output rows
finds, over every index in blocks (the last match in each block, blocks in order), which
row of ``new`` wins each of its rows, and whether any index is invalid (every program sees
them all: no flags, no atomics); then it writes ``new``'s row or ``old``'s (forward) or 0
or the output gradient's row (old's gradient), and the winners for the gradient of
``new``: ``dnew[i] = dout[index[i]]`` where row i won, 0 where it lost.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from ._common import (
    FLOAT_DTYPES,
    INDEX_DTYPES,
    KernelArgumentError,
    Launch,
    check_tensor,
    check_writable,
    load_wide,
    store_result,
    widen,
)

TESTS = ("tests/test_operators.py", "tests/test_gradcheck.py", "tests/test_index_copy.py")
BLOCK_ROWS = 32  # output rows a program owns
BLOCK_INDICES = 64  # indices compared with them at a time
BLOCK_COLUMNS = 64  # columns copied at a time
NO_WINNER = -1

FORWARD, OLD_GRAD, WINNERS_ONLY = 0, 1, 2  # what the rows kernel writes


@triton.jit
def _valid(index, R):
    """Indices (any dtype) that are whole numbers in [0, R)."""
    wide = index.to(tl.float64)
    return (wide == tl.floor(wide)) & (wide >= 0) & (wide < R)


@triton.jit
def _rows_kernel(SOURCE, NEW, INDEX, OUT, WINNERS, R, M, COLUMNS, MODE: tl.constexpr, ACCUMULATE: tl.constexpr,
                 BLOCK_R: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_C: tl.constexpr):
    """SOURCE: old (forward) or the output's gradient (old's gradient). Writes WINNERS[r],
    the row of NEW that row r takes (-1: none; R + 1 entries, the last the count of invalid
    indices) in every mode."""
    rows = tl.program_id(0).to(tl.int64) * BLOCK_R + tl.arange(0, BLOCK_R)
    live = rows < R
    winner = tl.full((BLOCK_R,), -1, tl.int64)
    invalid = tl.zeros((BLOCK_R,), tl.int32)  # each lane counts them all: a vector keeps types simple
    for start in range(0, M, BLOCK_M):
        at = start + tl.arange(0, BLOCK_M)
        present = at < M
        index = tl.load(INDEX + at, mask=present, other=0)
        valid = _valid(index, R)
        invalid += tl.sum((present & ~valid).to(tl.int32), axis=0)
        target = tl.where(valid, index.to(tl.float64), -1.0).to(tl.int64)
        match = (target[None, :] == rows[:, None]) & present[None, :]
        winner = tl.maximum(winner, tl.max(tl.where(match, at[None, :].to(tl.int64), -1), axis=1))
    tl.store(WINNERS + rows, winner, mask=live)
    if tl.program_id(0) == 0:
        tl.store(WINNERS + R + tl.arange(0, BLOCK_R), invalid.to(tl.int64), mask=tl.arange(0, BLOCK_R) == 0)
    if MODE != 2:
        poisoned = invalid > 0
        for c0 in range(0, COLUMNS, BLOCK_C):
            columns = c0 + tl.arange(0, BLOCK_C)
            mask = live[:, None] & (columns < COLUMNS)[None, :]
            own = load_wide(SOURCE, rows[:, None] * COLUMNS + columns[None, :], mask, 0.0)
            if MODE == 0:
                taken = load_wide(NEW, winner[:, None] * COLUMNS + columns[None, :], mask & (winner >= 0)[:, None],
                                  0.0)
                value = tl.where((winner >= 0)[:, None], taken, own)
            else:
                value = tl.where((winner >= 0)[:, None], 0.0, own)
            value = tl.where(poisoned[:, None], float("nan"), value)
            store_result(OUT, rows[:, None] * COLUMNS + columns[None, :], value, mask, ACCUMULATE)


@triton.jit
def _new_grad_kernel(DOUT, INDEX, WINNERS, DNEW, R, M, COLUMNS, ACCUMULATE: tl.constexpr, BLOCK_M: tl.constexpr,
                     BLOCK_C: tl.constexpr):
    at = tl.program_id(0).to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    present = at < M
    index = tl.load(INDEX + at, mask=present, other=0)
    valid = _valid(index, R)
    row = tl.where(valid, index.to(tl.float64), 0.0).to(tl.int64)
    won = valid & (tl.load(WINNERS + row, mask=present & valid, other=-1) == at)
    poisoned = tl.load(WINNERS + R + tl.zeros((BLOCK_M,), tl.int64)) > 0
    for c0 in range(0, COLUMNS, BLOCK_C):
        columns = c0 + tl.arange(0, BLOCK_C)
        mask = present[:, None] & (columns < COLUMNS)[None, :]
        d = load_wide(DOUT, row[:, None] * COLUMNS + columns[None, :], mask & won[:, None], 0.0)
        d = tl.where(poisoned[:, None], float("nan"), d)
        store_result(DNEW, at[:, None] * COLUMNS + columns[None, :], widen(d, DNEW), mask, ACCUMULATE)


def _check(fn: str, rows_like: torch.Tensor, index: torch.Tensor, winners: torch.Tensor,
           outputs: dict) -> tuple[int, int, int]:
    """(R, M, columns) after checking ``rows_like`` (R, ...) (old, or the output's
    gradient), the vector index (M,), the winners' scratch (R + 1,) int64 and ``outputs``,
    {name: (tensor, shape)} of rows_like's dtype (new's rows are (M, ...))."""
    check_tensor(fn, "index", index, FLOAT_DTYPES + INDEX_DTYPES)
    for name, t in (("old", rows_like), *((n, t) for n, (t, _) in outputs.items())):
        check_tensor(fn, name, t, FLOAT_DTYPES)
    if index.dim() != 1 or rows_like.dim() < 1:
        raise KernelArgumentError(f"{fn}: index {tuple(index.shape)} must be a vector and old "
                                  f"{tuple(rows_like.shape)} have rows")
    if tuple(winners.shape) != scratch_shape(rows_like.shape[0]) or winners.dtype != torch.int64:
        raise KernelArgumentError(f"{fn}: winners must be int64 scratch of shape {scratch_shape(rows_like.shape[0])}, "
                                  f"got {tuple(winners.shape)} {winners.dtype}")
    for name, t in (("old", rows_like), ("index", index), ("winners", winners), *((n, t) for n, (t, _) in
                                                                                 outputs.items())):
        shape = outputs[name][1] if name in outputs else tuple(t.shape)
        if (not t.is_contiguous() or tuple(t.shape) != tuple(shape) or t.device != rows_like.device
                or (name in outputs and t.dtype != rows_like.dtype)):
            raise KernelArgumentError(f"{fn}: {name} must be contiguous of shape {tuple(shape)} on "
                                      f"{rows_like.device}, got {tuple(t.shape)} {t.dtype} on {t.device}, strides "
                                      f"{t.stride()}")
    return rows_like.shape[0], index.shape[0], math.prod(rows_like.shape[1:])


def scratch_shape(rows: int) -> tuple[int]:
    """The winners' scratch: the row of new each output row takes, and the invalid count."""
    return (rows + 1,)


def _rows_launch(mode: int, source, new, index, out, winners, rows: int, m: int, columns: int,
                 accumulate: bool) -> Launch:
    return Launch(_rows_kernel, (triton.cdiv(max(rows, 1), BLOCK_ROWS),),
                  [source, new, index, out, winners, rows, m, columns],
                  dict(MODE=mode, ACCUMULATE=accumulate, BLOCK_R=BLOCK_ROWS, BLOCK_M=BLOCK_INDICES,
                       BLOCK_C=BLOCK_COLUMNS))


def plan_index_copy(old: torch.Tensor, index: torch.Tensor, new: torch.Tensor, out: torch.Tensor,
                    winners: torch.Tensor) -> list[Launch]:
    """``out`` = old with rows index[i] replaced by new[i] (the last repeat wins; NaN
    everywhere for an invalid index); ``winners``: int64 scratch (``scratch_shape``)."""
    fn = "index_copy"
    m = index.shape[0] if index.dim() == 1 else 0
    rows, m, columns = _check(fn, old, index, winners, {"new": (new, (m, *old.shape[1:])), "out": (out, old.shape)})
    check_writable(fn, "out", out)
    return [_rows_launch(FORWARD, old, new, index, out, winners, rows, m, columns, False)]


def plan_index_copy_backward(dout: torch.Tensor, index: torch.Tensor, winners: torch.Tensor,
                             dold: torch.Tensor | None, dnew: torch.Tensor | None, accumulate_old: bool = False,
                             accumulate_new: bool = False) -> list[Launch]:
    """``dold (+)=`` dout where no row of new landed (0 elsewhere); ``dnew (+)=`` dout's
    row index[i] for each row i of new that won (0 for a lost repeat). None: not wanted;
    ``winners`` as forward's."""
    fn = "index_copy_backward"
    m = index.shape[0] if index.dim() == 1 else 0
    outputs = {}
    if dold is not None:
        outputs["dold"] = (dold, tuple(dout.shape))
    if dnew is not None:
        outputs["dnew"] = (dnew, (m, *dout.shape[1:]))
    rows, m, columns = _check(fn, dout, index, winners, outputs)
    for name, (t, _) in outputs.items():
        check_writable(fn, name, t)
    # the rows kernel always runs: it finds the winners that new's gradient reads
    launches = [_rows_launch(WINNERS_ONLY if dold is None else OLD_GRAD, dout, dout, index,
                             dout if dold is None else dold, winners, rows, m, columns, accumulate_old)]
    if dnew is not None and m:
        launches.append(Launch(_new_grad_kernel, (triton.cdiv(m, BLOCK_INDICES),),
                               [dout, index, winners, dnew, rows, m, columns],
                               dict(ACCUMULATE=accumulate_new, BLOCK_M=BLOCK_INDICES, BLOCK_C=BLOCK_COLUMNS)))
    return launches


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    # a cache of 65536 rows of 1024 refreshed at 4096 positions (float32 indices); 9 rows of 5 x 3 at 4
    rows, tail, m = (65536, (1024,), 4096) if large else (9, (5, 3), 4)
    old, new = torch.empty(rows, *tail, dtype=dtype), torch.empty(m, *tail, dtype=dtype)
    index, winners = torch.empty(m, dtype=torch.int64), torch.empty(scratch_shape(rows), dtype=torch.int64)
    return [("index copy", plan_index_copy(old, index, new, torch.empty_like(old), winners)[0]),
            ("index copy old gradient", plan_index_copy_backward(old, index, winners, torch.empty_like(old), None)[0]),
            ("index copy new gradient accumulating",
             plan_index_copy_backward(old, index, winners, None, torch.empty_like(new), accumulate_new=True)[1])]
