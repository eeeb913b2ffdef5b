"""LU factorizations with partial pivoting (``P A = L U``) of a batch of square matrices, for
MXNet's ``linalg_inverse``, ``linalg_det`` and ``linalg_slogdet``; the determinant (or its
sign and log-magnitude) from the factors; and the per-matrix scaling of their gradients.

``plan_lu`` factors in place, one program per matrix, a column at a time: the pivot is the
first row of largest magnitude on or below the diagonal (a column of NaN keeps its own
row), rows j and p swap (in a right-hand side too, which turns the identity into P), the
entries below the pivot become the multipliers (left as they are where the pivot is 0: they
are 0 too, as LAPACK's getrf leaves a singular column), and the trailing matrix loses
their outer product with the pivot row. Barriers order each step's stores before the
next step's reads. Each matrix's row-swap parity goes out as a sign, +-1. This is the
unblocked algorithm, latency-bound for large n; the factors are float32 for half-precision
data (the caller's scratch), float64 for float64.
"""

from __future__ import annotations

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
    check_writable,
    compute_dtype,
    load_wide,
    store,
    store_result,
    widen,
)

TESTS = ("tests/test_operators.py", "tests/test_gradcheck.py", "tests/test_linalg.py")
BLOCK = 256 if INTERPRET else 64
BLOCK_MATRICES = 64
BLOCK_DIAGONAL = 1024 if INTERPRET else 32


@triton.jit
def _lu_kernel(LU, RHS, SIGN, n, rhs_columns, slb, sli, slj, srb, sri, src, ssb,
               HAS_RHS: tl.constexpr, BLOCK: tl.constexpr):
    batch = tl.program_id(0).to(tl.int64)
    lu = LU + batch * slb
    rhs = RHS + batch * srb
    rr = tl.arange(0, BLOCK).to(tl.int64)
    swaps = tl.program_id(0) * 0  # an int32 scalar carried through the loop
    for j in range(0, n):
        # the pivot: the first row of largest magnitude on or below the diagonal
        best = tl.full((BLOCK,), -1.0, tl.float64)
        best_row = tl.zeros((BLOCK,), tl.int64) + j
        for r0 in range(j, n, BLOCK):
            r = r0 + rr
            v = tl.abs(load_wide(lu, r * sli + j * slj, r < n, 0.0)).to(tl.float64)
            better = (r < n) & (v > best)
            best, best_row = tl.where(better, v, best), tl.where(better, r, best_row)
        top = tl.max(best, axis=0)
        p = tl.min(tl.where(best == top, best_row, n), axis=0)
        swaps += (p != j).to(tl.int32)
        for c0 in range(0, n, BLOCK):  # swap rows j and p (the same row: no change)
            c = c0 + rr
            c_in = c < n
            row_j = tl.load(lu + j * sli + c * slj, mask=c_in)
            row_p = tl.load(lu + p * sli + c * slj, mask=c_in)
            tl.debug_barrier()  # both rows read before either is written
            tl.store(lu + j * sli + c * slj, row_p, mask=c_in)
            tl.store(lu + p * sli + c * slj, row_j, mask=c_in)
        if HAS_RHS:
            for c0 in range(0, rhs_columns, BLOCK):
                c = c0 + rr
                c_in = c < rhs_columns
                row_j = tl.load(rhs + j * sri + c * src, mask=c_in)
                row_p = tl.load(rhs + p * sri + c * src, mask=c_in)
                tl.debug_barrier()
                tl.store(rhs + j * sri + c * src, row_p, mask=c_in)
                tl.store(rhs + p * sri + c * src, row_j, mask=c_in)
        tl.debug_barrier()
        pivot = load_wide(lu, j * (sli + slj) + tl.zeros((BLOCK,), tl.int64), rr < BLOCK, 1.0)
        for r0 in range(j + 1, n, BLOCK):  # the multipliers
            r = r0 + rr
            r_in = r < n
            v = load_wide(lu, r * sli + j * slj, r_in, 0.0)
            store(lu, r * sli + j * slj, tl.where(pivot != 0, v / pivot, v), r_in)
        tl.debug_barrier()
        for r0 in range(j + 1, n, BLOCK):  # the trailing matrix
            r = r0 + rr
            r_in = r < n
            multipliers = load_wide(lu, r * sli + j * slj, r_in, 0.0)
            for c0 in range(j + 1, n, BLOCK):
                c = c0 + rr
                c_in = c < n
                pivot_row = load_wide(lu, j * sli + c * slj, c_in, 0.0)
                offsets = r[:, None] * sli + c[None, :] * slj
                mask = r_in[:, None] & c_in[None, :]
                trailing = load_wide(lu, offsets, mask, 0.0)
                store(lu, offsets, trailing - multipliers[:, None] * pivot_row[None, :], mask)
        tl.debug_barrier()
    sign = 1.0 - 2.0 * (swaps % 2).to(tl.float32)
    tl.store(SIGN + batch * ssb, sign.to(SIGN.dtype.element_ty))


@triton.jit
def _determinant_kernel(LU, SIGN, OUT, LOGABS, batch, n, slb, sli, slj, ssb, sob, slogb,
                        LOG: tl.constexpr, BLOCK_MATRICES: tl.constexpr, BLOCK_DIAGONAL: tl.constexpr):
    """det = sign * prod(U's diagonal); with LOG, OUT = its sign (0 where a pivot is 0, NaN
    where one is NaN) and LOGABS = sum(log |U[i, i]|)."""
    b = tl.program_id(0).to(tl.int64) * BLOCK_MATRICES + tl.arange(0, BLOCK_MATRICES)
    k = tl.arange(0, BLOCK_DIAGONAL).to(tl.int64)
    b_in = b < batch
    sign = load_wide(SIGN, b * ssb, b_in, 1.0)
    product = sign
    logabs = tl.zeros((BLOCK_MATRICES,), sign.dtype)
    negatives = tl.zeros((BLOCK_MATRICES,), tl.int32)
    zeros = tl.zeros((BLOCK_MATRICES,), tl.int32)
    nans = tl.zeros((BLOCK_MATRICES,), tl.int32)
    if LOG:
        for start in range(0, n, BLOCK_DIAGONAL):
            i = start + k
            mask = b_in[:, None] & (i < n)[None, :]
            d = load_wide(LU, b[:, None] * slb + i[None, :] * (sli + slj), mask, 1.0).to(sign.dtype)
            logabs += tl.sum(tl.log(tl.abs(d)), axis=1)
            negatives += tl.sum((d < 0).to(tl.int32), axis=1)
            zeros += tl.sum((d == 0).to(tl.int32), axis=1)
            nans += tl.sum((d != d).to(tl.int32), axis=1)
    else:
        for i in range(0, n):  # the product in order, one diagonal entry at a time
            product *= load_wide(LU, b * slb + i * (sli + slj), b_in, 1.0).to(sign.dtype)
    if LOG:
        signed = sign * (1.0 - 2.0 * (negatives % 2).to(sign.dtype))
        signed = tl.where(zeros > 0, 0.0, signed)
        signed = tl.where(nans > 0, logabs, signed)  # logabs is NaN there too
        store(OUT, b * sob, signed, b_in)
        store(LOGABS, b * slogb, logabs, b_in)
    else:
        store(OUT, b * sob, product, b_in)


@triton.jit
def _scale_matrices_kernel(SRC, FIRST, SECOND, DST, total, n, ssb, ssi, ssj, sfb, s2b, sdb, sdi, sdj,
                           HAS_SECOND: tl.constexpr, ACCUMULATE: tl.constexpr, BLOCK: tl.constexpr):
    """dst[b] (+)= first[b] (* second[b]) * src[b] for (batch, n, n) matrices."""
    index = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = index < total
    b = index // n // n
    i = (index // n) % n
    j = index % n
    factor = load_wide(FIRST, b * sfb, mask, 0.0)
    if HAS_SECOND:
        factor = factor * load_wide(SECOND, b * s2b, mask, 0.0)
    v = load_wide(SRC, b * ssb + i * ssi + j * ssj, mask, 0.0)
    store_result(DST, b * sdb + i * sdi + j * sdj, widen(factor * v, DST), mask, ACCUMULATE)


def _check_matrices(fn: str, name: str, t: torch.Tensor) -> int:
    check_tensor(fn, name, t, FLOAT_DTYPES)
    if t.dim() != 3 or t.shape[1] != t.shape[2]:
        raise KernelArgumentError(f"{fn}: {name} must be (batch, n, n) square matrices, got {tuple(t.shape)}")
    return t.shape[1]


def plan_lu(lu: torch.Tensor, sign: torch.Tensor, rhs: torch.Tensor | None = None) -> list[Launch]:
    """Factor each (n, n) matrix of ``lu`` (batch, n, n) in place into P A = L U (L's unit
    diagonal implied, below U); ``sign`` (batch,) gets (-1)**swaps; ``rhs`` (batch, n, m),
    when given, has its rows swapped alike."""
    fn = "linalg_lu"
    n = _check_matrices(fn, "lu", lu)
    check_tensor(fn, "sign", sign, FLOAT_DTYPES)
    if tuple(sign.shape) != (lu.shape[0],):
        raise KernelArgumentError(f"{fn}: sign must have shape ({lu.shape[0]},), got {tuple(sign.shape)}")
    if rhs is not None:
        check_tensor(fn, "rhs", rhs, FLOAT_DTYPES)
        if rhs.dim() != 3 or rhs.shape[:2] != lu.shape[:2]:
            raise KernelArgumentError(f"{fn}: rhs {tuple(rhs.shape)} must be ({lu.shape[0]}, {n}, m)")
        check_writable(fn, "rhs", rhs)
    check_writable(fn, "lu", lu)
    other = lu if rhs is None else rhs
    return [Launch(_lu_kernel, (lu.shape[0],),
                   [lu, other, sign, n, other.shape[2], *lu.stride(), *other.stride(), *sign.stride()],
                   dict(HAS_RHS=rhs is not None, BLOCK=BLOCK))]


def plan_determinant(lu: torch.Tensor, sign: torch.Tensor, out: torch.Tensor,
                     logabs: torch.Tensor | None = None) -> list[Launch]:
    """``out`` = each matrix's determinant from its factors and sign, or with ``logabs`` its
    sign in ``out`` and log |det| in ``logabs`` (both (batch,))."""
    fn = "linalg_det"
    n = _check_matrices(fn, "lu", lu)
    batch = lu.shape[0]
    for name, t in (("sign", sign), ("out", out), ("logabs", logabs)):
        if t is not None:
            check_tensor(fn, name, t, FLOAT_DTYPES)
            if tuple(t.shape) != (batch,):
                raise KernelArgumentError(f"{fn}: {name} must have shape ({batch},), got {tuple(t.shape)}")
    other = out if logabs is None else logabs
    return [Launch(_determinant_kernel, (triton.cdiv(batch, BLOCK_MATRICES),),
                   [lu, sign, out, other, batch, n, *lu.stride(), *sign.stride(), *out.stride(), *other.stride()],
                   dict(LOG=logabs is not None, BLOCK_MATRICES=BLOCK_MATRICES, BLOCK_DIAGONAL=BLOCK_DIAGONAL))]


def plan_scale_matrices(src: torch.Tensor, first: torch.Tensor, dst: torch.Tensor, second: torch.Tensor | None = None,
                        accumulate: bool = False) -> list[Launch]:
    """``dst[b] (+)= first[b] (* second[b]) * src[b]`` of (batch, n, n) matrices, any strides
    (``src`` transposed for ``A^-T``)."""
    fn = "linalg_scale_matrices"
    n = _check_matrices(fn, "src", src)
    _check_matrices(fn, "dst", dst)
    batch = src.shape[0]
    for name, t in (("first", first), ("second", second)):
        if t is not None and tuple(t.shape) != (batch,):
            raise KernelArgumentError(f"{fn}: {name} must have shape ({batch},), got {tuple(t.shape)}")
    check_writable(fn, "dst", dst)
    total = src.numel()
    other = first if second is None else second
    return [Launch(_scale_matrices_kernel, (triton.cdiv(total, ELEMENTWISE_BLOCK),),
                   [src, first, other, dst, total, n, *src.stride(), *first.stride(), *other.stride(), *dst.stride()],
                   dict(HAS_SECOND=second is not None, ACCUMULATE=accumulate, BLOCK=ELEMENTWISE_BLOCK))]


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    batch, n = (256, 128) if large else (3, 5)
    compute = compute_dtype(dtype)
    lu, sign = torch.empty(batch, n, n, dtype=compute), torch.empty(batch, dtype=compute)
    out, data = torch.empty(batch, dtype=dtype), torch.empty(batch, n, n, dtype=dtype)
    return [("lu", plan_lu(lu, sign)[0]),
            ("lu with a right-hand side", plan_lu(lu, sign, torch.empty_like(lu))[0]),
            ("determinant", plan_determinant(lu, sign, out)[0]),
            ("sign and log-determinant", plan_determinant(lu, sign, out, torch.empty_like(out))[0]),
            ("scaled transposed inverse, accumulating",
             plan_scale_matrices(lu.transpose(1, 2), out, data, out, accumulate=True)[0])]
