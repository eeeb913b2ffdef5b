"""LQ factorizations ``A = L Q`` of a batch of m x n matrices, m <= n (MXNet's
``linalg_gelqf``: L lower triangular m x m, Q with orthonormal rows), by Householder
reflections as LAPACK's gelqf and orglq compute them, so the signs are LAPACK's (and
MXNet's): L's diagonal entry is ``-sign(alpha) ||x||`` for the row's remaining part x and
its first entry alpha (alpha itself where the rest of x is 0: no reflection).

One program per matrix, in place on a work copy of A: for each row i, the reflection
``H = I - tau v v^T`` that takes the row's entries from column i on to ``(beta, 0, ...)`` is
formed (v stored in the row past the diagonal, tau aside), then applied to the rows below,
a tile of rows at a time (their dot products with v, then the update). Q is then the first
m rows of ``H_{m-1} ... H_0``: the rows of the identity with each reflection applied from
the right, the last first. Barriers order each step's stores before the next step's reads.
The unblocked algorithm, O(m**2 n): for the small matrices it is meant for.
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
    compute_dtype,
    load_wide,
    store,
)

TESTS = ("tests/test_operators.py", "tests/test_gradcheck.py", "tests/test_linalg.py")
BLOCK_ROWS = 16
BLOCK_COLUMNS = 256 if INTERPRET else 64


@triton.jit
def _reflect_rows(X, rows_from, m, n, i, tau, swi, swj, sxi, sxj, W, BLOCK_ROWS: tl.constexpr,
                  BLOCK_COLUMNS: tl.constexpr):
    """Rows r >= rows_from of X, from column i on, times H = I - tau v v^T, v = (1, W[i, i+1:])."""
    rr = tl.arange(0, BLOCK_ROWS).to(tl.int64)
    cc = tl.arange(0, BLOCK_COLUMNS).to(tl.int64)
    for r0 in range(rows_from, m, BLOCK_ROWS):
        r = r0 + rr
        r_in = r < m
        dots = tl.zeros((BLOCK_ROWS,), tl.float64)
        for c0 in range(i, n, BLOCK_COLUMNS):
            c = c0 + cc
            c_in = c < n
            v = tl.where(c == i, 1.0, load_wide(W, i * swi + c * swj, c_in & (c > i), 0.0).to(tl.float64))
            x = load_wide(X, r[:, None] * sxi + c[None, :] * sxj, r_in[:, None] & c_in[None, :], 0.0)
            dots += tl.sum(x.to(tl.float64) * v[None, :], axis=1)
        for c0 in range(i, n, BLOCK_COLUMNS):
            c = c0 + cc
            c_in = c < n
            v = tl.where(c == i, 1.0, load_wide(W, i * swi + c * swj, c_in & (c > i), 0.0).to(tl.float64))
            offsets = r[:, None] * sxi + c[None, :] * sxj
            mask = r_in[:, None] & c_in[None, :]
            x = load_wide(X, offsets, mask, 0.0).to(tl.float64)
            store(X, offsets, x - tau * dots[:, None] * v[None, :], mask)


@triton.jit
def _lq_kernel(W, Q, TAU, m, n, swb, swi, swj, sqb, sqi, sqj, stb, sti,
               BLOCK_ROWS: tl.constexpr, BLOCK_COLUMNS: tl.constexpr):
    batch = tl.program_id(0).to(tl.int64)
    w = W + batch * swb
    q = Q + batch * sqb
    taus = TAU + batch * stb
    cc = tl.arange(0, BLOCK_COLUMNS).to(tl.int64)
    for i in range(0, m):
        alpha = tl.load(w + i * (swi + swj)).to(tl.float64)
        rest = tl.zeros((BLOCK_COLUMNS,), tl.float64)
        for c0 in range(i + 1, n, BLOCK_COLUMNS):
            c = c0 + cc
            x = load_wide(w, i * swi + c * swj, c < n, 0.0).to(tl.float64)
            rest += x * x
        rest_norm = tl.sqrt(tl.sum(rest, axis=0))
        # LAPACK's dlarfg: beta = -sign(alpha) ||(alpha, rest)||, no reflection where rest is 0
        reflect = rest_norm != 0
        beta = tl.where(alpha >= 0, -1.0, 1.0) * tl.sqrt(alpha * alpha + rest_norm * rest_norm)
        tau = tl.where(reflect, (beta - alpha) / tl.where(reflect, beta, 1.0), 0.0)
        # v = (1, rest / (alpha - beta)); |alpha - beta| >= |beta| > 0 where it reflects
        scale = 1.0 / tl.where(reflect, alpha - beta, 1.0)
        tl.debug_barrier()  # the row read before it is overwritten
        for c0 in range(i + 1, n, BLOCK_COLUMNS):
            c = c0 + cc
            c_in = c < n
            x = load_wide(w, i * swi + c * swj, c_in, 0.0).to(tl.float64)
            store(w, i * swi + c * swj, x * scale, c_in)
        one = tl.arange(0, 1)
        store(w + i * (swi + swj), one, tl.where(reflect, beta, alpha) + one.to(tl.float64) * 0, one < 1)
        store(taus + i * sti, one, tau + one.to(tl.float64) * 0, one < 1)
        tl.debug_barrier()
        _reflect_rows(w, i + 1, m, n, i, tau, swi, swj, swi, swj, w, BLOCK_ROWS, BLOCK_COLUMNS)
        tl.debug_barrier()
    # Q: the identity's first m rows times H_{m-1}, then H_{m-2}, ... H_0
    rr = tl.arange(0, BLOCK_ROWS).to(tl.int64)
    for r0 in range(0, m, BLOCK_ROWS):
        r = r0 + rr
        for c0 in range(0, n, BLOCK_COLUMNS):
            c = c0 + cc
            identity = tl.where(r[:, None] == c[None, :], 1.0, 0.0)
            store(q, r[:, None] * sqi + c[None, :] * sqj, identity, (r < m)[:, None] & (c < n)[None, :])
    tl.debug_barrier()
    for step in range(0, m):
        i = m - 1 - step
        tau = tl.load(taus + i * sti).to(tl.float64)
        # rows above i are still the identity's there (the later reflections are 0 before their
        # own row): H_i leaves them, and they never meet a NaN of a row below
        _reflect_rows(q, i, m, n, i, tau, swi, swj, sqi, sqj, w, BLOCK_ROWS, BLOCK_COLUMNS)
        tl.debug_barrier()


def plan_lq(work: torch.Tensor, q: torch.Tensor, tau: torch.Tensor) -> list[Launch]:
    """Factor each m x n matrix of ``work`` (batch, m, n), m <= n, in place (L in its first m
    columns' lower triangle, the reflections' vectors above it), writing Q (batch, m, n) into
    ``q`` and the reflections' factors into ``tau`` (batch, m)."""
    fn = "linalg_gelqf"
    for name, t in (("work", work), ("q", q)):
        check_tensor(fn, name, t, FLOAT_DTYPES)
        if t.dim() != 3 or t.shape != work.shape:
            raise KernelArgumentError(f"{fn}: {name} {tuple(t.shape)} must be (batch, m, n) as work "
                                      f"{tuple(work.shape)}")
    batch, m, n = work.shape
    if m > n:
        raise KernelArgumentError(f"{fn}: an LQ factorization needs no more rows than columns; got {m} x {n}")
    check_tensor(fn, "tau", tau, FLOAT_DTYPES)
    if tuple(tau.shape) != (batch, m):
        raise KernelArgumentError(f"{fn}: tau must have shape ({batch}, {m}), got {tuple(tau.shape)}")
    for name, t in (("work", work), ("q", q), ("tau", tau)):
        check_writable(fn, name, t)
    return [Launch(_lq_kernel, (batch,), [work, q, tau, m, n, *work.stride(), *q.stride(), *tau.stride()],
                   dict(BLOCK_ROWS=BLOCK_ROWS, BLOCK_COLUMNS=BLOCK_COLUMNS))]


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    batch, m, n = (256, 64, 128) if large else (3, 4, 6)
    compute = compute_dtype(dtype)
    work, q = torch.empty(batch, m, n, dtype=compute), torch.empty(batch, m, n, dtype=compute)
    return [("lq", plan_lq(work, q, torch.empty(batch, m, dtype=compute))[0])]
