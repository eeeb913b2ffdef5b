"""Batched matrix products: ``C[b] (+)= alpha op(A[b]) @ op(B[b])`` for ``dot``, ``batch_dot``
and the linalg products (``linalg_gemm``, ``linalg_gemm2``, ``linalg_syrk``).

One kernel serves the forward and both gradients: operands are read through their strides,
so a transposed operand (``transpose_a``/``transpose_b``, or the ``A^T`` of a gradient) is a
view, never a copy, and the output may be a transposed view too. The tiles, their grouped
order, the autotuned configs and the dtype rules are those of FullyConnected's GEMM
(``fully_connected.py``): float32 exact by default (``precision="tf32"`` for tensor cores),
float16/bfloat16 on tensor cores with float32 accumulation, float64 accumulated in float64.
The batch is the grid's second axis.

Each operand is told how its rows are aligned along the axis it is contiguous on
(``_alignments``, ``aligned``): a product over sequences of 1000 would otherwise copy
its 16-bit operands two bytes at a time, unpipelined, and store one element at a time.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._common import (
    INTERPRET,
    KernelArgumentError,
    Launch,
    aligned,
    check_tensor,
    check_writable,
    prepare_out,
    row_alignment,
    store_result,
    widen,
)
from .fully_connected import PRECISIONS, _autotune, _mma, _operand, _tile

TESTS = ("tests/test_operators.py", "tests/test_gradcheck.py", "tests/test_batch_dot.py")
MAX_BATCH = 65535  # a CUDA grid's second axis


@_autotune(restore=["C"])
@triton.jit
def _batch_dot_kernel(A, B, C, M, N, K, alpha: tl.float64, sa_b, sa_m, sa_k, sb_b, sb_k, sb_n, sc_b, sc_m, sc_n,
                      ACCUMULATE: tl.constexpr, SCALED: tl.constexpr, PRECISION: tl.constexpr, UPCAST: tl.constexpr,
                      ALIGN_AM: tl.constexpr, ALIGN_AK: tl.constexpr, ALIGN_BK: tl.constexpr, ALIGN_BN: tl.constexpr,
                      ALIGN_CM: tl.constexpr, ALIGN_CN: tl.constexpr,
                      BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr):
    """C[b] (+)= alpha A[b] @ B[b] (alpha, where SCALED, in C's compute type, as BLAS takes
    it; dot's and batch_dot's launches are not SCALED and keep their registers). ALIGN_XY:
    the alignment of operand X's rows along its axis Y where X is contiguous along Y (else
    1): of that axis's length and of X's other two strides, which are computed as
    ``aligned`` values so that the compiler knows it."""
    sa_b, sa_m, sa_k = aligned(aligned(sa_b, ALIGN_AM), ALIGN_AK), aligned(sa_m, ALIGN_AK), aligned(sa_k, ALIGN_AM)
    sb_b, sb_k, sb_n = aligned(aligned(sb_b, ALIGN_BK), ALIGN_BN), aligned(sb_k, ALIGN_BN), aligned(sb_n, ALIGN_BK)
    sc_b, sc_m, sc_n = aligned(aligned(sc_b, ALIGN_CM), ALIGN_CN), aligned(sc_m, ALIGN_CN), aligned(sc_n, ALIGN_CM)
    pid_m, pid_n = _tile(tl.program_id(0), M, N, BLOCK_M, BLOCK_N, GROUP_M)
    batch = tl.program_id(1).to(tl.int64)
    rm = pid_m.to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n.to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_K)
    a_rows = A + batch * sa_b + rm[:, None] * sa_m
    b_cols = B + batch * sb_b + rn[None, :] * sb_n
    a_in = (rm < aligned(M, ALIGN_AM))[:, None]
    b_in = (rn < aligned(N, ALIGN_BN))[None, :]
    ACC = tl.float64 if C.dtype.element_ty == tl.float64 else tl.float32
    acc = tl.zeros((BLOCK_M, BLOCK_N), ACC)
    for start in range(0, K, BLOCK_K):
        kk = start + rk
        a = tl.load(a_rows + kk[None, :] * sa_k, mask=a_in & (kk < aligned(K, ALIGN_AK))[None, :], other=0.0)
        b = tl.load(b_cols + kk[:, None] * sb_k, mask=(kk < aligned(K, ALIGN_BK))[:, None] & b_in, other=0.0)
        acc = _mma(_operand(a, UPCAST), _operand(b, UPCAST), acc, PRECISION)
    if SCALED:
        acc = acc * widen(alpha, C)
    mask = (rm < aligned(M, ALIGN_CM))[:, None] & (rn < aligned(N, ALIGN_CN))[None, :]
    store_result(C + batch * sc_b + rm[:, None] * sc_m + rn[None, :] * sc_n, 0, acc, mask, ACCUMULATE)


def _alignments(name: str, t: torch.Tensor, first: str, second: str) -> dict[str, int]:
    """``ALIGN_<name><axis>`` of a (batch, first, second) operand for both of its axes: along
    the axis it is contiguous on, the largest power of two up to 16 dividing that axis's
    length and the operand's other two strides; 1 along the other axis (and along both
    where it is contiguous on neither: nothing to copy 16 bytes at a time)."""
    (_, rows, cols), (batch_stride, row_stride, col_stride) = t.shape, t.stride()
    along = {first: 1, second: 1}
    if col_stride == 1:
        along[second] = row_alignment(cols, row_stride, batch_stride)
    elif row_stride == 1:
        along[first] = row_alignment(rows, col_stride, batch_stride)
    return {f"ALIGN_{name}{axis}": value for axis, value in along.items()}


def plan_batch_dot(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor | None = None, *, accumulate: bool = False,
                   precision: str = "ieee", alpha: float = 1.0) -> list[Launch]:
    """``out[i] (+)= alpha a[i] @ b[i]`` for 3-d ``a`` (batch, M, K) and ``b`` (batch, K, N),
    any strides (pass ``x.transpose(1, 2)`` for a transposed operand); ``out`` (batch, M, N)
    may be a strided view too."""
    fn = "batch_dot"
    for name, t in (("a", a), ("b", b)):
        check_tensor(fn, name, t)
        if t.dim() != 3:
            raise KernelArgumentError(f"{fn}: {name} must be 3-d (batch, rows, columns), got shape {tuple(t.shape)}")
    if a.dtype != b.dtype or a.device != b.device:
        raise KernelArgumentError(f"{fn}: a ({a.dtype} on {a.device}) and b ({b.dtype} on {b.device}) must share "
                                  "a dtype and a device")
    batch, m, k = a.shape
    if b.shape[0] != batch or b.shape[1] != k:
        raise KernelArgumentError(f"{fn}: a has shape {tuple(a.shape)} but b has {tuple(b.shape)}; b must be "
                                  f"({batch}, {k}, N)")
    if precision not in PRECISIONS:
        raise KernelArgumentError(f"{fn}: precision={precision!r} is not one of {', '.join(PRECISIONS)}")
    if batch > MAX_BATCH:
        raise KernelArgumentError(f"{fn}: a batch of {batch} products is more than a launch holds ({MAX_BATCH})")
    n = b.shape[2]
    out = prepare_out(fn, "out", out, (batch, m, n), a.dtype, a.device)
    check_writable(fn, "out", out)
    options = dict(PRECISION=precision if a.dtype == torch.float32 else "ieee",
                   UPCAST=INTERPRET and a.dtype == torch.bfloat16)

    def grid(meta):
        return (triton.cdiv(m, meta["BLOCK_M"]) * triton.cdiv(n, meta["BLOCK_N"]), batch)

    alignments = {**_alignments("A", a, "M", "K"), **_alignments("B", b, "K", "N"), **_alignments("C", out, "M", "N")}
    return [Launch(_batch_dot_kernel, grid, [a, b, out, m, n, k, float(alpha), *a.stride(), *b.stride(), *out.stride()],
                   dict(ACCUMULATE=accumulate, SCALED=alpha != 1.0, **alignments, **options))]


def plan_batch_dot_backward(grad_out: torch.Tensor, a: torch.Tensor, b: torch.Tensor, grad_a: torch.Tensor | None,
                            grad_b: torch.Tensor | None, *, transpose_a: bool = False, transpose_b: bool = False,
                            accumulate_a: bool = False, accumulate_b: bool = False,
                            precision: str = "ieee", alpha: float = 1.0) -> list[Launch]:
    """The gradients of ``C = alpha op(a) @ op(b)`` (op: a transpose where asked), all 3-d:
    ``op(a)' = alpha C' @ op(b)^T`` and ``op(b)' = alpha op(a)^T @ C'``, each written through
    a view of the gradient (transposed where the operand was), so no transpose is ever copied."""
    def op(t, transposed):
        return t.transpose(1, 2) if transposed else t

    launches = []
    if grad_a is not None:
        launches += plan_batch_dot(grad_out, op(b, transpose_b).transpose(1, 2), op(grad_a, transpose_a),
                                   accumulate=accumulate_a, precision=precision, alpha=alpha)
    if grad_b is not None:
        launches += plan_batch_dot(op(a, transpose_a).transpose(1, 2), grad_out, op(grad_b, transpose_b),
                                   accumulate=accumulate_b, precision=precision, alpha=alpha)
    return launches


def batch_dot(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor | None = None, precision: str = "ieee"):
    """Standalone ``a @ b`` of 3-d tensors."""
    launches = plan_batch_dot(a, b, out, precision=precision)
    for launch in launches:
        launch()
    return launches[0].args[2]


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    batch, m, n, k = (64, 1024, 1024, 128) if large else (3, 5, 7, 6)
    a, b = torch.empty(batch, m, k, dtype=dtype), torch.empty(batch, k, n, dtype=dtype)
    out = torch.empty(batch, m, n, dtype=dtype)
    # Attention written with batch_dot over 1000 keys: rows a multiple of 8, not 16 (ALIGN 8).
    heads, keys, width = (8, 1000, 128) if large else (2, 1000, 16)
    q, scores = torch.empty(heads, keys, width, dtype=dtype), torch.empty(heads, keys, keys, dtype=dtype)
    return [("batch_dot", plan_batch_dot(a, b, out)[0]),
            ("batch_dot of transposed operands", plan_batch_dot(b.transpose(1, 2), a.transpose(1, 2),
                                                                 out.transpose(1, 2))[0]),
            ("batch_dot accumulating", plan_batch_dot(a, b, out, accumulate=True)[0]),
            ("batch_dot scaled (linalg's alpha)", plan_batch_dot(a, b, out, alpha=0.5)[0]),
            ("batch_dot scores over 1000 keys", plan_batch_dot(q, q.transpose(1, 2), scores)[0]),
            ("batch_dot scores times values over 1000 keys", plan_batch_dot(scores, q, q)[0])]
