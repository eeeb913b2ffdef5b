"""Triangular solves ``T X = alpha B`` for a batch of triangular T (MXNet's ``linalg_trsm``,
and the solves inside the gradients of trsm, potrf and potri).

T is given as a (batch, n, n) view whose strides say how it is stored: its transpose, a
right-hand solve (``X T = B`` is ``T^T X^T = B^T``) and an upper triangle stored as the
transpose of a lower one are all views, and ``UPPER`` says whether T is upper triangular
(solved from the last row up) or lower (from the first down). Only T's triangle is read;
with ``UNIT`` not its diagonal either, taken as ones (the L of an LU factorization, stored
below U).

Each program solves one matrix's system for a tile of B's columns, a row at a time: row i
is ``(alpha B[i] - sum_k T[i, k] X[k]) / T[i, i]`` over the rows k already solved, summed in
tiles of k in float32 (float64 for float64 data), and stored before the next row reads it
(a barrier orders the row's store before the program's next reads). X may be B's own
storage (each row of B is read before that row of X is written). The rows are sequential:
this is the unblocked algorithm, latency-bound for large n.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._common import (
    FLOAT_DTYPES,
    INTERPRET,
    KernelArgumentError,
    Launch,
    check_tensor,
    check_writable,
    load_wide,
    store,
    widen,
)

TESTS = ("tests/test_operators.py", "tests/test_gradcheck.py", "tests/test_linalg.py")
BLOCK_COLUMNS = 64
BLOCK_K = 256 if INTERPRET else 32
MAX_BATCH = 65535  # a CUDA grid's second axis


@triton.jit
def _solve_kernel(T, B, X, n, columns, alpha: tl.float64, stb, sti, stk, sbb, sbi, sbc, sxb, sxi, sxc,
                  UPPER: tl.constexpr, UNIT: tl.constexpr, BLOCK_COLUMNS: tl.constexpr, BLOCK_K: tl.constexpr):
    batch = tl.program_id(1).to(tl.int64)
    c = tl.program_id(0).to(tl.int64) * BLOCK_COLUMNS + tl.arange(0, BLOCK_COLUMNS)
    c_in = c < columns
    kk = tl.arange(0, BLOCK_K).to(tl.int64)
    t_rows = T + batch * stb
    x_rows = X + batch * sxb
    for step in range(0, n):
        i = (n - 1 - step) if UPPER else step
        acc = load_wide(B, batch * sbb + i * sbi + c * sbc, c_in, 0.0) * widen(alpha, X)
        # The rows solved before this one: below it for an upper T, above it for a lower one.
        lo = i + 1 if UPPER else 0
        hi = n if UPPER else i
        for k0 in range(lo, hi, BLOCK_K):
            k = k0 + kk
            k_in = k < hi
            t = load_wide(t_rows, i * sti + k * stk, k_in, 0.0)
            x = load_wide(x_rows, k[:, None] * sxi + c[None, :] * sxc, k_in[:, None] & c_in[None, :], 0.0)
            acc -= tl.sum(t[:, None] * x, axis=0)
        if UNIT:
            solved = acc
        else:
            solved = acc / load_wide(t_rows, i * (sti + stk) + tl.zeros((BLOCK_COLUMNS,), tl.int64), c_in, 1.0)
        store(x_rows, i * sxi + c * sxc, solved, c_in)
        tl.debug_barrier()  # this row's X, stored, before the next rows read it


def plan_solve(t: torch.Tensor, b: torch.Tensor, x: torch.Tensor, *, upper: bool, alpha: float = 1.0,
               unit: bool = False) -> list[Launch]:
    """``x = alpha T^-1 b`` for (batch, n, n) triangular ``t`` (lower, or upper with
    ``upper``; only that triangle read, its diagonal taken as ones with ``unit``) and
    (batch, n, m) ``b`` and ``x``, any strides (``x`` may be ``b``)."""
    fn = "linalg_trsm"
    for name, tensor in (("t", t), ("b", b), ("x", x)):
        check_tensor(fn, name, tensor, FLOAT_DTYPES)
        if tensor.dim() != 3:
            raise KernelArgumentError(f"{fn}: {name} must be 3-d (batch, rows, columns), got {tuple(tensor.shape)}")
    batch, n = t.shape[0], t.shape[1]
    if t.shape[2] != n or b.shape[:2] != (batch, n) or x.shape != b.shape:
        raise KernelArgumentError(f"{fn}: t {tuple(t.shape)} must be (batch, n, n) and b {tuple(b.shape)} and x "
                                  f"{tuple(x.shape)} (batch, n, m) of the same batch and n")
    if len({t.dtype, b.dtype, x.dtype}) != 1 or len({t.device, b.device, x.device}) != 1:
        raise KernelArgumentError(f"{fn}: t, b and x must share a dtype and a device; got {t.dtype}, {b.dtype}, "
                                  f"{x.dtype}")
    if batch > MAX_BATCH:
        raise KernelArgumentError(f"{fn}: a batch of {batch} systems is more than a launch holds ({MAX_BATCH})")
    check_writable(fn, "x", x)
    columns = b.shape[2]
    return [Launch(_solve_kernel, (triton.cdiv(columns, BLOCK_COLUMNS), batch),
                   [t, b, x, n, columns, float(alpha), *t.stride(), *b.stride(), *x.stride()],
                   dict(UPPER=upper, UNIT=unit, BLOCK_COLUMNS=BLOCK_COLUMNS, BLOCK_K=BLOCK_K))]


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    """A lower solve in place and an upper one through transposed views (a right-hand solve)."""
    batch, n, m = (64, 512, 512) if large else (3, 5, 7)
    t, b = torch.empty(batch, n, n, dtype=dtype), torch.empty(batch, n, m, dtype=dtype)
    right = torch.empty(batch, m, n, dtype=dtype)
    return [("solve lower in place", plan_solve(t, b, b, upper=False)[0]),
            ("solve upper, transposed views", plan_solve(t.transpose(1, 2), right.transpose(1, 2),
                                                         right.transpose(1, 2), upper=True)[0]),
            ("solve unit lower (LU's L)", plan_solve(t, b, b, upper=False, unit=True)[0])]
