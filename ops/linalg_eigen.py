"""Eigendecompositions of a batch of symmetric matrices (MXNet's ``linalg_syevd``): the
orthonormal U whose rows are eigenvectors and the eigenvalues L, ascending, with
``U A = diag(L) U``; and the matrix in the middle of its gradient.

``plan_jacobi`` runs the cyclic Jacobi method, one program per matrix: sweeps over every
pair (p, q) rotate rows and columns p and q of a symmetric work matrix so that its (p, q)
entry becomes 0 (the stable rotation of Golub and Van Loan, 8.5.2), accumulating the
rotations into V, until the squared entries off the diagonal are below (n eps)**2 of all of
them, eps the work dtype's (convergence is quadratic once the rotations are small: a random
64 x 64 float64 matrix is at rounding after 8 sweeps), 30 sweeps at most. Barriers order
each rotation's stores before the next one's reads. Then each eigenvalue's rank among them
(ties by position, NaN last, so that every row of U is written) places it in L and its
eigenvector, V's column, as U's row, the sign chosen as MXNet's: its entry of largest
magnitude (the first, on a tie) positive. The unblocked algorithm, O(n**3) per sweep: for
the small matrices it is meant for.
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
)

TESTS = ("tests/test_operators.py", "tests/test_gradcheck.py", "tests/test_linalg.py")
BLOCK = 256 if INTERPRET else 64
MAX_SWEEPS = 30
EPSILON = {torch.float64: 2.0 ** -52, torch.float32: 2.0 ** -23, torch.float16: 2.0 ** -10, torch.bfloat16: 2.0 ** -7}
MAX_BATCH = 65535


@triton.jit
def _rotate(ptr, base_p, base_q, step, n, c, s, BLOCK: tl.constexpr):
    """Lines p and q (their first elements at base_p and base_q, ``step`` apart along them)
    become c p - s q and s p + c q."""
    kk = tl.arange(0, BLOCK).to(tl.int64)
    for k0 in range(0, n, BLOCK):
        k = k0 + kk
        k_in = k < n
        vp = load_wide(ptr, base_p + k * step, k_in, 0.0)
        vq = load_wide(ptr, base_q + k * step, k_in, 0.0)
        store(ptr, base_p + k * step, c * vp - s * vq, k_in)
        store(ptr, base_q + k * step, s * vp + c * vq, k_in)


@triton.jit
def _off_diagonal_share(w, n, swi, swj, BLOCK: tl.constexpr):
    """The squared entries off the diagonal over all the squared entries (0 for a zero matrix)."""
    kk = tl.arange(0, BLOCK).to(tl.int64)
    off = tl.zeros((BLOCK, BLOCK), tl.float64)
    total = tl.zeros((BLOCK, BLOCK), tl.float64)
    for i0 in range(0, n, BLOCK):
        i = i0 + kk
        for j0 in range(0, n, BLOCK):
            j = j0 + kk
            mask = (i < n)[:, None] & (j < n)[None, :]
            entries = load_wide(w, i[:, None] * swi + j[None, :] * swj, mask, 0.0).to(tl.float64)
            squares = entries * entries
            total += squares
            off += tl.where(i[:, None] == j[None, :], 0.0, squares)
    off_sum, total_sum = tl.sum(tl.sum(off, axis=1), axis=0), tl.sum(tl.sum(total, axis=1), axis=0)
    return off_sum / tl.where(total_sum == 0, 1.0, total_sum)


@triton.jit
def _jacobi_kernel(W, V, U, L, n, swb, swi, swj, svb, svi, svj, sub, sui, suj, slb, sli,
                   TOLERANCE: tl.constexpr, MAX_SWEEPS: tl.constexpr, BLOCK: tl.constexpr):
    batch = tl.program_id(0).to(tl.int64)
    w = W + batch * swb
    v = V + batch * svb
    sweeps = tl.program_id(0) * 0
    share = _off_diagonal_share(w, n, swi, swj, BLOCK)
    # until the off-diagonal mass is below (n TOLERANCE)**2 of the whole: its entries at
    # rounding's size (a NaN stops it at once: the NaN reaches every output)
    limit = n * TOLERANCE
    while (sweeps < MAX_SWEEPS) & (share > limit * limit):
        for p in range(0, n - 1):
            for q in range(p + 1, n):
                app = tl.load(w + p * (swi + swj)).to(tl.float64)
                aqq = tl.load(w + q * (swi + swj)).to(tl.float64)
                apq = tl.load(w + p * swi + q * swj).to(tl.float64)
                # t = tan(angle), the smaller root of t**2 + 2 theta t - 1 = 0
                theta = (aqq - app) / tl.where(apq == 0, 1.0, 2.0 * apq)
                size = tl.abs(theta)
                small = tl.where(size > 1.0, 1.0 / tl.maximum(size, 1.0), size)  # <= 1: its square cannot overflow
                root = tl.sqrt(1.0 + small * small) * tl.where(size > 1.0, size, 1.0)  # sqrt(theta**2 + 1)
                t = tl.where(theta >= 0, 1.0, -1.0) / (size + root)
                t = tl.where(apq == 0, 0.0, t)
                c = 1.0 / tl.sqrt(t * t + 1.0)
                s = t * c
                tl.debug_barrier()  # every thread has read the pivot entries
                _rotate(w, p * swj, q * swj, swi, n, c, s, BLOCK)  # columns p and q
                tl.debug_barrier()
                _rotate(w, p * swi, q * swi, swj, n, c, s, BLOCK)  # rows p and q
                tl.debug_barrier()
                _rotate(v, p * svj, q * svj, svi, n, c, s, BLOCK)  # V J
                tl.debug_barrier()
        share = _off_diagonal_share(w, n, swi, swj, BLOCK)
        sweeps += 1
    # each eigenvalue's rank, ties by position; its column of V becomes U's row of that rank.
    # A matrix holding NaN stopped at once: every output is NaN (0 elsewhere).
    poison = share * 0.0
    kk = tl.arange(0, BLOCK).to(tl.int64)
    for j in range(0, n):
        value = tl.load(w + j * (swi + swj)).to(tl.float64)
        rank = tl.program_id(0) * 0
        largest = tl.zeros((BLOCK,), tl.float64) - 1.0
        largest_at = tl.zeros((BLOCK,), tl.int64)  # a column of NaN: its first entry
        for k0 in range(0, n, BLOCK):
            k = k0 + kk
            k_in = k < n
            others = load_wide(w, k * (swi + swj), k_in, 0.0).to(tl.float64)
            # NaN ranks last (ties by position), so that the ranks are a permutation whatever the values
            if value != value:
                before = k_in & ((others == others) | (k < j))
            else:
                before = k_in & ((others < value) | ((others == value) & (k < j)))
            rank += tl.sum(before.to(tl.int32), axis=0)
            magnitude = tl.abs(load_wide(v, k * svi + j * svj, k_in, 0.0).to(tl.float64))
            bigger = k_in & (magnitude > largest)
            largest, largest_at = tl.where(bigger, magnitude, largest), tl.where(bigger, k, largest_at)
        top = tl.max(largest, axis=0)
        at = tl.min(tl.where(largest == top, largest_at, n), axis=0)
        sign = tl.where(tl.load(v + at * svi + j * svj) < 0, -1.0, 1.0)
        one = tl.arange(0, 1)
        store(L + batch * slb, rank * sli + one, value + poison + one.to(tl.float64) * 0, one < 1)
        for k0 in range(0, n, BLOCK):
            k = k0 + kk
            k_in = k < n
            column = load_wide(v, k * svi + j * svj, k_in, 0.0)
            store(U + batch * sub + rank * sui, k * suj, column * sign + poison, k_in)


@triton.jit
def _gradient_middle_kernel(X, L, DL, Y, total, n, eps: tl.float64, sxb, sxi, sxj, slb, sli, sdb, sdi, syb, syi, syj,
                            BLOCK: tl.constexpr):
    """Y[i, j] = (X[i, j] - X[j, i]) / (2 max(L[i] - L[j], eps)) below the diagonal and
    mirrored above, Y[i, i] = dL[i] (MXNet's syevd gradient, between U^T and U)."""
    index = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = index < total
    b = index // n // n
    i = (index // n) % n
    j = index % n
    row, column = tl.maximum(i, j), tl.minimum(i, j)  # the entry below the diagonal it mirrors
    x_below = load_wide(X, b * sxb + row * sxi + column * sxj, mask, 0.0)
    x_above = load_wide(X, b * sxb + column * sxi + row * sxj, mask, 0.0)
    gap = load_wide(L, b * slb + row * sli, mask, 0.0) - load_wide(L, b * slb + column * sli, mask, 0.0)
    gap = tl.where(gap < eps.to(gap.dtype), eps.to(gap.dtype), gap)  # as MXNet's; a NaN gap stays NaN
    off = (x_below - x_above) / (2.0 * gap)
    diagonal = load_wide(DL, b * sdb + i * sdi, mask & (i == j), 0.0)
    store_result(Y, b * syb + i * syi + j * syj, tl.where(i == j, diagonal, off), mask, False)


def plan_jacobi(work: torch.Tensor, vectors: torch.Tensor, u: torch.Tensor, eigenvalues: torch.Tensor) -> list[Launch]:
    """Diagonalize each symmetric (n, n) matrix of ``work`` (batch, n, n) in place, rotating
    ``vectors`` (the identity on entry) along; ``u`` gets the eigenvectors as rows and
    ``eigenvalues`` (batch, n) the eigenvalues, ascending."""
    fn = "linalg_syevd"
    for name, t in (("work", work), ("vectors", vectors), ("u", u)):
        check_tensor(fn, name, t, FLOAT_DTYPES)
        if t.dim() != 3 or t.shape[1] != t.shape[2] or t.shape != work.shape:
            raise KernelArgumentError(f"{fn}: {name} {tuple(t.shape)} must be (batch, n, n) as work "
                                      f"{tuple(work.shape)}")
    check_tensor(fn, "eigenvalues", eigenvalues, FLOAT_DTYPES)
    if tuple(eigenvalues.shape) != tuple(work.shape[:2]):
        raise KernelArgumentError(f"{fn}: eigenvalues must have shape {tuple(work.shape[:2])}, got "
                                  f"{tuple(eigenvalues.shape)}")
    if work.shape[0] > MAX_BATCH:
        raise KernelArgumentError(f"{fn}: a batch of {work.shape[0]} matrices is more than a launch holds "
                                  f"({MAX_BATCH})")
    for name, t in (("work", work), ("vectors", vectors), ("u", u), ("eigenvalues", eigenvalues)):
        check_writable(fn, name, t)
    return [Launch(_jacobi_kernel, (work.shape[0],),
                   [work, vectors, u, eigenvalues, work.shape[1], *work.stride(), *vectors.stride(), *u.stride(),
                    *eigenvalues.stride()],
                   dict(TOLERANCE=EPSILON[work.dtype], MAX_SWEEPS=MAX_SWEEPS, BLOCK=BLOCK))]


def plan_gradient_middle(x: torch.Tensor, eigenvalues: torch.Tensor, grad_eigenvalues: torch.Tensor,
                         y: torch.Tensor) -> list[Launch]:
    """``y`` = the symmetric middle matrix of syevd's gradient from ``x = U' U^T``, the
    eigenvalues and their gradient (all batched)."""
    fn = "linalg_syevd backward"
    for name, t in (("x", x), ("y", y)):
        check_tensor(fn, name, t, FLOAT_DTYPES)
        if t.dim() != 3 or t.shape != x.shape:
            raise KernelArgumentError(f"{fn}: {name} must be (batch, n, n) as x {tuple(x.shape)}")
    for name, t in (("eigenvalues", eigenvalues), ("grad_eigenvalues", grad_eigenvalues)):
        if tuple(t.shape) != tuple(x.shape[:2]):
            raise KernelArgumentError(f"{fn}: {name} must have shape {tuple(x.shape[:2])}, got {tuple(t.shape)}")
    check_writable(fn, "y", y)
    total, eps = x.numel(), 1e-100 if x.dtype == torch.float64 else 1e-30
    return [Launch(_gradient_middle_kernel, (triton.cdiv(total, ELEMENTWISE_BLOCK),),
                   [x, eigenvalues, grad_eigenvalues, y, total, x.shape[1], eps, *x.stride(), *eigenvalues.stride(),
                    *grad_eigenvalues.stride(), *y.stride()], dict(BLOCK=ELEMENTWISE_BLOCK))]


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    batch, n = (256, 64) if large else (3, 5)
    compute = compute_dtype(dtype)
    work, vectors = torch.empty(batch, n, n, dtype=compute), torch.empty(batch, n, n, dtype=compute)
    u, eigenvalues = torch.empty(batch, n, n, dtype=dtype), torch.empty(batch, n, dtype=dtype)
    return [("jacobi", plan_jacobi(work, vectors, u, eigenvalues)[0]),
            ("gradient middle", plan_gradient_middle(u, eigenvalues, eigenvalues, torch.empty_like(u))[0])]
