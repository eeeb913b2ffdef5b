"""The column-wise Khatri-Rao product (MXNet's ``khatri_rao``): matrices A_1 (M_1, N), ...,
A_n (M_n, N) give X (M_1 ... M_n, N) whose column c is the Kronecker product of the
matrices' columns c: ``X[(i_1, ..., i_n), c] = A_1[i_1, c] ... A_n[i_n, c]`` (row index in
row-major order over (i_1, ..., i_n)), as CP tensor decompositions use it.

- Forward, one launch per factor after the first: ``Y[(p, i), c] = X[p, c] B[i, c]``, the
  product so far (P rows) widened by the next matrix; the first is read as it is.
- The gradient of A_k: ``dA_k[i, c] = sum over p, q of dX[(p, i, q), c] L[p, c] R[q, c]``,
  L the product of the matrices before A_k (P rows, none: 1) and R of those after it (Q
  rows). One thread per element of dA_k sums its P x Q terms in a fixed order: the same
  bits every run, no atomics. Products and sums are in float32 (float64 for float64).
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from ._common import (
    ELEMENTWISE_BLOCK,
    FLOAT_DTYPES,
    KernelArgumentError,
    Launch,
    check_tensor,
    check_writable,
    element_block,
    load_wide,
    store_result,
    widen,
)
from .memory import plan_copy

TESTS = ("tests/test_operators.py", "tests/test_gradcheck.py", "tests/test_khatri_rao.py")


@triton.jit
def _widen_kernel(X, B, Y, n, M, N, ACCUMULATE: tl.constexpr, BLOCK: tl.constexpr):
    index, mask = element_block(n, BLOCK)
    row, c = index // N, index % N
    p, i = row // M, row % M
    value = load_wide(X, p * N + c, mask, 0.0) * load_wide(B, i * N + c, mask, 0.0)
    store_result(Y, index, value, mask, ACCUMULATE)


@triton.jit
def _factor_grad_kernel(DX, L, R, DA, n, P, M, Q, N, HAS_LEFT: tl.constexpr, HAS_RIGHT: tl.constexpr,
                        ACCUMULATE: tl.constexpr, BLOCK: tl.constexpr):
    index, mask = element_block(n, BLOCK)
    i, c = index // N, index % N
    acc = widen(tl.zeros((BLOCK,), tl.float32), DA)
    for p in range(0, P):
        inner = widen(tl.zeros((BLOCK,), tl.float32), DA)
        for q in range(0, Q):
            term = load_wide(DX, ((p * M + i) * Q + q) * N + c, mask, 0.0)
            if HAS_RIGHT:
                term = term * load_wide(R, q * N + c, mask, 0.0)
            inner += term
        if HAS_LEFT:
            inner = inner * load_wide(L, p * N + c, mask, 0.0)
        acc += inner
    store_result(DA, index, acc, mask, ACCUMULATE)


def check_factors(fn: str, factors, out: torch.Tensor | None = None) -> tuple[int, int]:
    """Matrices of one dtype, device and column count, contiguous (and ``out`` of their
    product's shape); (rows of the product, columns)."""
    if not factors:
        raise KernelArgumentError(f"{fn}: needs at least one matrix")
    first = factors[0]
    columns, rows = first.shape[-1] if first.dim() else 0, 1
    for k, a in enumerate(factors):
        check_tensor(fn, f"factors[{k}]", a, FLOAT_DTYPES)
        if (a.dim() != 2 or a.shape[1] != columns or not a.is_contiguous() or a.dtype != first.dtype
                or a.device != first.device):
            raise KernelArgumentError(f"{fn}: factors[{k}] of shape {tuple(a.shape)} ({a.dtype}) must be a contiguous "
                                      f"matrix of {columns} columns, of factors[0]'s dtype {first.dtype} and device")
        rows *= a.shape[0]
    if out is not None:
        check_tensor(fn, "out", out, (first.dtype,))
        check_writable(fn, "out", out)
        if tuple(out.shape) != (rows, columns) or not out.is_contiguous():
            raise KernelArgumentError(f"{fn}: out must be contiguous of shape {(rows, columns)}, got "
                                      f"{tuple(out.shape)}")
    return rows, columns


def scratch_shapes(rows, columns: int) -> dict[str, tuple[int, int]]:
    """The partial products the launches keep, by name, for factors of ``rows`` rows each:
    ``prefix{k}`` the product of the first k factors (k = 2 .. n - 1: the forward's), and
    ``suffix{k}`` of the factors after factor k (k = 0 .. n - 3: the backward's too)."""
    n, shapes = len(rows), {}
    for k in range(2, n):
        shapes[f"prefix{k}"] = (math.prod(rows[:k]), columns)
    for k in range(0, n - 2):
        shapes[f"suffix{k}"] = (math.prod(rows[k + 1:]), columns)
    return shapes


def _widen(x: torch.Tensor, b: torch.Tensor, y: torch.Tensor, accumulate: bool = False) -> Launch:
    """``y (+)= `` x widened by b: ``y[(p, i), c] = x[p, c] b[i, c]``."""
    n = y.numel()
    return Launch(_widen_kernel, (triton.cdiv(max(n, 1), ELEMENTWISE_BLOCK),), [x, b, y, n, b.shape[0], b.shape[1]],
                  dict(ACCUMULATE=accumulate, BLOCK=ELEMENTWISE_BLOCK))


def _prefixes(factors, scratch) -> tuple[list, list[Launch]]:
    """[None, product of factor 0, of factors 0-1, ..., of all but the last] and their launches."""
    products, launches = [None, factors[0]], []
    for k in range(2, len(factors)):
        launches.append(_widen(products[-1], factors[k - 1], scratch[f"prefix{k}"]))
        products.append(scratch[f"prefix{k}"])
    return products, launches


def _suffixes(factors, scratch) -> tuple[list, list[Launch]]:
    """[product of the factors after factor 0, after factor 1, ..., None] and their launches
    (each the factor before it times the one after: ``y[(i, q), c] = a[i, c] s[q, c]``)."""
    n = len(factors)
    products, launches = [None], []
    if n >= 2:
        products.insert(0, factors[-1])
    for k in range(n - 3, -1, -1):
        launches.append(_widen(factors[k + 1], products[0], scratch[f"suffix{k}"]))
        products.insert(0, scratch[f"suffix{k}"])
    return products, launches


def plan_khatri_rao(factors, out: torch.Tensor, scratch: dict, accumulate: bool = False) -> list[Launch]:
    """``out (+)=`` the Khatri-Rao product of ``factors``; ``scratch``: arrays of
    ``scratch_shapes``'s ``prefix`` entries."""
    check_factors("khatri_rao", factors, out)
    if len(factors) == 1:
        return plan_copy(factors[0], out, accumulate=accumulate)
    prefixes, launches = _prefixes(factors, scratch)
    return launches + [_widen(prefixes[-1], factors[-1], out, accumulate)]


def plan_khatri_rao_backward(grad_out: torch.Tensor, factors, grads, accumulate, scratch: dict) -> list[Launch]:
    """``grads[k] (+)=`` the gradient of factor k (where ``grads[k]`` is not None) from the
    product's gradient ``grad_out``; ``scratch``: arrays of every ``scratch_shapes`` entry."""
    fn = "khatri_rao backward"
    check_factors(fn, factors, grad_out)
    wanted = [k for k, g in enumerate(grads) if g is not None]
    if not wanted:
        return []
    prefixes, launches = _prefixes(factors, scratch)
    suffixes, more = _suffixes(factors, scratch)
    launches += more
    columns = factors[0].shape[1]
    for k in wanted:
        grad, left, right = grads[k], prefixes[k], suffixes[k]
        check_factors(fn, [factors[k], grad])
        if grad.shape != factors[k].shape:
            raise KernelArgumentError(f"{fn}: grads[{k}] has shape {tuple(grad.shape)}, factor {k} "
                                      f"{tuple(factors[k].shape)}")
        n = grad.numel()
        launches.append(Launch(_factor_grad_kernel, (triton.cdiv(max(n, 1), ELEMENTWISE_BLOCK),),
                               [grad_out, grad if left is None else left, grad if right is None else right, grad, n,
                                1 if left is None else left.shape[0], grad.shape[0],
                                1 if right is None else right.shape[0], columns],
                               dict(HAS_LEFT=left is not None, HAS_RIGHT=right is not None,
                                    ACCUMULATE=bool(accumulate[k]), BLOCK=ELEMENTWISE_BLOCK)))
    return launches


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    # a CP decomposition's three factor matrices of rank 64 (a 256 x 128 x 64 tensor)
    rows, columns = ((256, 128, 64), 64) if large else ((3, 4, 2), 5)
    factors = [torch.empty(m, columns, dtype=dtype) for m in rows]
    scratch = {name: torch.empty(shape, dtype=dtype) for name, shape in scratch_shapes(rows, columns).items()}
    out = torch.empty(math.prod(rows), columns, dtype=dtype)
    forward = plan_khatri_rao(factors, out, scratch)
    backward = plan_khatri_rao_backward(out, factors, [torch.empty_like(f) for f in factors], [False, False, True],
                                        scratch)
    return [("khatri rao widen", forward[-1]), ("khatri rao grad first factor", backward[-3]),
            ("khatri rao grad middle factor", backward[-2]), ("khatri rao grad last factor accumulating", backward[-1])]
