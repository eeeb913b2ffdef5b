"""The sum of the logarithms of square matrices' diagonals (MXNet's ``linalg_sumlogdiag``: the
log-determinant of a Cholesky factor), and its gradient ``out' / A[i, i]`` on the diagonal.

Forward: each program takes a block of matrices and walks their diagonals in tiles, summing
in float64 for float64 data and float32 otherwise; a diagonal entry that is negative gives
NaN, a zero -inf, as the logarithm does. Backward writes the diagonal's gradient (the caller
zeroes the rest first unless the gradient accumulates).
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
    load_wide,
    store_result,
)

TESTS = ("tests/test_operators.py", "tests/test_gradcheck.py", "tests/test_linalg.py")
BLOCK_MATRICES = 64
BLOCK_DIAGONAL = 1024 if INTERPRET else 32


@triton.jit
def _sumlogdiag_kernel(A, OUT, batch, n, sab, sai, saj, sout,
                       BLOCK_MATRICES: tl.constexpr, BLOCK_DIAGONAL: tl.constexpr):
    b = tl.program_id(0).to(tl.int64) * BLOCK_MATRICES + tl.arange(0, BLOCK_MATRICES)
    k = tl.arange(0, BLOCK_DIAGONAL).to(tl.int64)
    total = tl.zeros((BLOCK_MATRICES,), tl.float64 if OUT.dtype.element_ty == tl.float64 else tl.float32)
    for start in range(0, n, BLOCK_DIAGONAL):
        i = start + k
        mask = (b < batch)[:, None] & (i < n)[None, :]
        v = load_wide(A, b[:, None] * sab + i[None, :] * (sai + saj), mask, 1.0)
        total += tl.sum(tl.log(v), axis=1)
    store_result(OUT, b * sout, total, b < batch, False)


@triton.jit
def _sumlogdiag_backward_kernel(DOUT, A, DA, total, n, sout, sab, sai, saj, sdb, sdi, sdj,
                                ACCUMULATE: tl.constexpr, BLOCK: tl.constexpr):
    index = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = index < total
    b = index // n
    i = index % n
    g = load_wide(DOUT, b * sout, mask, 0.0) / load_wide(A, b * sab + i * (sai + saj), mask, 1.0)
    store_result(DA, b * sdb + i * (sdi + sdj), g, mask, ACCUMULATE)


def _check(fn: str, name: str, matrices: torch.Tensor) -> tuple[int, int]:
    check_tensor(fn, name, matrices, FLOAT_DTYPES)
    if matrices.dim() != 3 or matrices.shape[1] != matrices.shape[2]:
        raise KernelArgumentError(f"{fn}: {name} must be (batch, n, n) square matrices, got {tuple(matrices.shape)}")
    return matrices.shape[0], matrices.shape[1]


def plan_sumlogdiag(a: torch.Tensor, out: torch.Tensor) -> list[Launch]:
    """``out[b] = sum_i log a[b, i, i]`` for (batch, n, n) ``a``, any strides; ``out`` (batch,)."""
    fn = "linalg_sumlogdiag"
    batch, n = _check(fn, "a", a)
    check_tensor(fn, "out", out, FLOAT_DTYPES)
    if tuple(out.shape) != (batch,) or out.dtype != a.dtype:
        raise KernelArgumentError(f"{fn}: out must be ({batch},) of {a.dtype}, got {tuple(out.shape)} of {out.dtype}")
    check_writable(fn, "out", out)
    return [Launch(_sumlogdiag_kernel, (triton.cdiv(batch, BLOCK_MATRICES),),
                   [a, out, batch, n, *a.stride(), *out.stride()],
                   dict(BLOCK_MATRICES=BLOCK_MATRICES, BLOCK_DIAGONAL=BLOCK_DIAGONAL))]


def plan_sumlogdiag_backward(grad_out: torch.Tensor, a: torch.Tensor, grad_a: torch.Tensor,
                             accumulate: bool = False) -> list[Launch]:
    """``grad_a[b, i, i] (+)= grad_out[b] / a[b, i, i]``; the rest of ``grad_a`` untouched."""
    fn = "linalg_sumlogdiag backward"
    batch, n = _check(fn, "a", a)
    _check(fn, "grad_a", grad_a)
    check_tensor(fn, "grad_out", grad_out, FLOAT_DTYPES)
    if tuple(grad_out.shape) != (batch,) or grad_a.shape != a.shape:
        raise KernelArgumentError(f"{fn}: grad_out {tuple(grad_out.shape)} and grad_a {tuple(grad_a.shape)} do not "
                                  f"match a {tuple(a.shape)}")
    check_writable(fn, "grad_a", grad_a)
    total = batch * n
    return [Launch(_sumlogdiag_backward_kernel, (triton.cdiv(total, ELEMENTWISE_BLOCK),),
                   [grad_out, a, grad_a, total, n, *grad_out.stride(), *a.stride(), *grad_a.stride()],
                   dict(ACCUMULATE=accumulate, BLOCK=ELEMENTWISE_BLOCK))]


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    batch, n = (4096, 256) if large else (3, 5)
    a, out = torch.empty(batch, n, n, dtype=dtype), torch.empty(batch, dtype=dtype)
    return [("sumlogdiag", plan_sumlogdiag(a, out)[0]),
            ("sumlogdiag gradient", plan_sumlogdiag_backward(out, a, torch.empty_like(a))[0]),
            ("sumlogdiag gradient accumulating", plan_sumlogdiag_backward(out, a, a, accumulate=True)[0])]
