"""Cholesky factors of a batch of symmetric positive-definite matrices (MXNet's
``linalg_potrf``): the lower-triangular L with positive diagonal and ``A = L L^T``, read
from A's lower triangle only (an upper factor is this on transposed views).

Each program factors one matrix, a column at a time (left-looking): column j below the
diagonal is ``(A[r, j] - sum_{k<j} L[r, k] L[j, k]) / L[j, j]`` with
``L[j, j] = sqrt(A[j, j] - sum_{k<j} L[j, k]**2)``, summed in tiles in float32 (float64 for
float64 data); the entries above the diagonal are written 0. A barrier orders each stored
column before the next column's reads. L may be A's own storage (a column of A is read
before that column of L is written, and the upper triangle of A is never read). A matrix
that is not positive definite takes the square root of a number <= 0 and comes out NaN (or
infinite) from there on, where LAPACK stops with an error: a kernel cannot raise, so the
NaN says it. This is the unblocked algorithm, latency-bound for large n.
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
)

TESTS = ("tests/test_operators.py", "tests/test_gradcheck.py", "tests/test_linalg.py")
BLOCK_ROWS = 256 if INTERPRET else 64
BLOCK_K = 256 if INTERPRET else 32


@triton.jit
def _cholesky_kernel(A, L, n, sab, sai, saj, slb, sli, slj, BLOCK_ROWS: tl.constexpr, BLOCK_K: tl.constexpr):
    batch = tl.program_id(0).to(tl.int64)
    a = A + batch * sab
    out = L + batch * slb
    rr = tl.arange(0, BLOCK_ROWS).to(tl.int64)
    kk = tl.arange(0, BLOCK_K).to(tl.int64)
    for j in range(0, n):
        for r0 in range(0, j, BLOCK_ROWS):  # above the diagonal: 0
            r = r0 + rr
            zero = tl.zeros((BLOCK_ROWS,), tl.float32)
            store(out, r * sli + j * slj, zero, r < j)
        for r0 in range(j, n, BLOCK_ROWS):  # on and below it: A[r, j] less the columns before
            r = r0 + rr
            r_in = r < n
            acc = load_wide(a, r * sai + j * saj, r_in, 0.0)
            for k0 in range(0, j, BLOCK_K):
                k = k0 + kk
                k_in = k < j
                row_j = load_wide(out, j * sli + k * slj, k_in, 0.0)
                rows = load_wide(out, r[:, None] * sli + k[None, :] * slj, r_in[:, None] & k_in[None, :], 0.0)
                acc -= tl.sum(rows * row_j[None, :], axis=1)
            store(out, r * sli + j * slj, acc, r_in)
        tl.debug_barrier()  # the column's sums, stored, before its diagonal entry is read
        pivot = tl.sqrt(load_wide(out, j * (sli + slj) + tl.zeros((BLOCK_ROWS,), tl.int64), rr < BLOCK_ROWS, 1.0))
        for r0 in range(j, n, BLOCK_ROWS):
            r = r0 + rr
            r_in = r < n
            v = load_wide(out, r * sli + j * slj, r_in, 0.0)
            store(out, r * sli + j * slj, tl.where(r == j, pivot, v / pivot), r_in)
        tl.debug_barrier()  # column j final before the next column reads it


def plan_cholesky(a: torch.Tensor, out: torch.Tensor) -> list[Launch]:
    """``out`` = the lower Cholesky factor of each (n, n) matrix of ``a`` (batch, n, n), read
    from its lower triangle; any strides (``out`` may be ``a``)."""
    fn = "linalg_potrf"
    for name, tensor in (("a", a), ("out", out)):
        check_tensor(fn, name, tensor, FLOAT_DTYPES)
    if a.dim() != 3 or a.shape[1] != a.shape[2] or out.shape != a.shape:
        raise KernelArgumentError(f"{fn}: a {tuple(a.shape)} must be (batch, n, n) square matrices and out "
                                  f"{tuple(out.shape)} of its shape")
    if a.dtype != out.dtype or a.device != out.device:
        raise KernelArgumentError(f"{fn}: a ({a.dtype} on {a.device}) and out ({out.dtype} on {out.device}) must "
                                  "share a dtype and a device")
    check_writable(fn, "out", out)
    return [Launch(_cholesky_kernel, (a.shape[0],), [a, out, a.shape[1], *a.stride(), *out.stride()],
                   dict(BLOCK_ROWS=BLOCK_ROWS, BLOCK_K=BLOCK_K))]


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    batch, n = (256, 256) if large else (3, 5)
    a = torch.empty(batch, n, n, dtype=dtype)
    return [("cholesky in place", plan_cholesky(a, a)[0]),
            ("cholesky of an upper triangle (transposed views)",
             plan_cholesky(a.transpose(1, 2), torch.empty_like(a).transpose(1, 2))[0])]
