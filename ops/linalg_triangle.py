"""A triangle of square matrices packed into vectors and back (MXNet's ``linalg_extracttrian``
and ``linalg_maketrian``, each the other's gradient), and matrices reduced to their lower
triangle or mirrored from it (``plan_copy_triangle``: the gradients of the triangular
operators, which read one triangle only).

The triangle is the entries ``(i, j)`` with ``i - j >= d`` of a (batch, n, n) view, packed
row by row: entry ``(i, j)`` goes to position ``(i - d)(i - d + 1) / 2 + j``. MXNet's upper
triangles are packed column by column, which is this order on the transposed view, so the
caller passes the transpose and no kernel knows about upper triangles. Each program takes a
block of matrix elements (flat over the batch): packing moves the triangle's, unpacking
writes every element, zero outside the triangle. Values move unchanged (accumulating adds
in the compute type and rounds once).
"""

from __future__ import annotations

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
    load_wide,
    store_result,
    widen,
)

TESTS = ("tests/test_operators.py", "tests/test_gradcheck.py", "tests/test_linalg.py")


@triton.jit
def _triangle_kernel(MATRIX, PACKED, total, n, d, smb, smi, smj, spb, spl,
                     PACK: tl.constexpr, ACCUMULATE: tl.constexpr, BLOCK: tl.constexpr):
    """PACK: packed[b, p(i, j)] (+)= matrix[b, i, j] on the triangle; else matrix[b, i, j]
    (+)= packed[b, p(i, j)] on the triangle and 0 off it."""
    index = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    in_range = index < total
    b = index // n // n  # in int64: n * n may pass int32
    i = (index // n) % n
    j = index % n
    row = i - d
    on_triangle = in_range & (row >= j)
    matrix_offsets = b * smb + i * smi + j * smj
    packed_offsets = b * spb + ((row * (row + 1)) // 2 + j) * spl
    if PACK:
        v = load_wide(MATRIX, matrix_offsets, on_triangle, 0.0)
        store_result(PACKED, packed_offsets, v, on_triangle, ACCUMULATE)
    else:
        v = load_wide(PACKED, packed_offsets, on_triangle, 0.0)
        store_result(MATRIX, matrix_offsets, v, in_range, ACCUMULATE)


@triton.jit
def _copy_triangle_kernel(SRC, DST, total, n, scale: tl.float64, ssb, ssi, ssj, sdb, sdi, sdj,
                          MIRROR: tl.constexpr, ACCUMULATE: tl.constexpr, BLOCK: tl.constexpr):
    """dst[b, i, j] (+)= scale src[b, i, j] on and below the diagonal; above it 0, or with
    MIRROR src[b, j, i] (a symmetric matrix from the lower triangle)."""
    index = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    in_range = index < total
    b = index // n // n
    i = (index // n) % n
    j = index % n
    lower = i >= j
    if MIRROR:
        row, column = tl.where(lower, i, j), tl.where(lower, j, i)
        v = load_wide(SRC, b * ssb + row * ssi + column * ssj, in_range, 0.0)
    else:
        v = load_wide(SRC, b * ssb + i * ssi + j * ssj, in_range & lower, 0.0)
    store_result(DST, b * sdb + i * sdi + j * sdj, v * widen(scale, DST), in_range, ACCUMULATE)


def plan_copy_triangle(src: torch.Tensor, dst: torch.Tensor, *, scale: float = 1.0, mirror: bool = False,
                       accumulate: bool = False) -> list[Launch]:
    """``dst (+)= scale tril(src)`` of (batch, n, n) matrices (an upper triangle through
    transposed views of both), or with ``mirror`` the symmetric matrix of src's lower
    triangle; any strides (``dst`` may be ``src`` unless mirroring)."""
    fn = "linalg_copy_triangle"
    check_tensor(fn, "src", src, FLOAT_DTYPES)
    check_tensor(fn, "dst", dst, FLOAT_DTYPES)
    if src.dim() != 3 or src.shape[1] != src.shape[2] or dst.shape != src.shape:
        raise KernelArgumentError(f"{fn}: src {tuple(src.shape)} must be (batch, n, n) and dst {tuple(dst.shape)} "
                                  "of its shape")
    if src.device != dst.device:
        raise KernelArgumentError(f"{fn}: src is on {src.device} but dst is on {dst.device}")
    check_writable(fn, "dst", dst)
    total = src.numel()
    return [Launch(_copy_triangle_kernel, (triton.cdiv(total, ELEMENTWISE_BLOCK),),
                   [src, dst, total, src.shape[1], float(scale), *src.stride(), *dst.stride()],
                   dict(MIRROR=mirror, ACCUMULATE=accumulate, BLOCK=ELEMENTWISE_BLOCK))]


def triangle_size(n: int, d: int) -> int:
    """Entries of the triangle ``i - j >= d`` of an n x n matrix."""
    m = n - d
    return m * (m + 1) // 2


def plan_triangle(matrix: torch.Tensor, packed: torch.Tensor, offset: int, *, pack: bool,
                  accumulate: bool = False) -> list[Launch]:
    """``pack``: ``packed (+)=`` the triangle ``i - j >= offset`` of ``matrix`` (batch, n, n),
    row by row; else ``matrix (+)=`` that triangle read from ``packed`` (batch, L), zero off
    it. Any strides (a transposed view packs an upper triangle column by column)."""
    fn = "linalg_triangle"
    check_tensor(fn, "matrix", matrix, FLOAT_DTYPES)
    check_tensor(fn, "packed", packed, FLOAT_DTYPES)
    if matrix.dim() != 3 or matrix.shape[1] != matrix.shape[2] or packed.dim() != 2:
        raise KernelArgumentError(f"{fn}: matrix must be (batch, n, n) and packed (batch, L); got "
                                  f"{tuple(matrix.shape)} and {tuple(packed.shape)}")
    batch, n = matrix.shape[0], matrix.shape[1]
    if not 0 <= offset < n or packed.shape != (batch, triangle_size(n, offset)):
        raise KernelArgumentError(f"{fn}: the triangle i - j >= {offset} of {n} x {n} matrices needs packed of "
                                  f"shape ({batch}, {triangle_size(n, offset) if 0 <= offset < n else '-'}); got "
                                  f"{tuple(packed.shape)}")
    if matrix.dtype != packed.dtype or matrix.device != packed.device:
        raise KernelArgumentError(f"{fn}: matrix ({matrix.dtype} on {matrix.device}) and packed ({packed.dtype} "
                                  f"on {packed.device}) must share a dtype and a device")
    check_writable(fn, "packed" if pack else "matrix", packed if pack else matrix)
    total = batch * n * n
    return [Launch(_triangle_kernel, (triton.cdiv(total, ELEMENTWISE_BLOCK),),
                   [matrix, packed, total, n, offset, *matrix.stride(), *packed.stride()],
                   dict(PACK=pack, ACCUMULATE=accumulate, BLOCK=ELEMENTWISE_BLOCK))]


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    """Packing a lower triangle, unpacking into an upper one (a transposed view),
    accumulating."""
    batch, n = (256, 512) if large else (3, 5)
    matrix = torch.empty(batch, n, n, dtype=dtype)
    packed = torch.empty(batch, triangle_size(n, 0), dtype=dtype)
    return [("pack a triangle", plan_triangle(matrix, packed, 0, pack=True)[0]),
            ("unpack into an upper triangle", plan_triangle(matrix.transpose(1, 2), packed, 0, pack=False)[0]),
            ("pack accumulating", plan_triangle(matrix, packed, 0, pack=True, accumulate=True)[0]),
            ("lower triangle, scaled, accumulating", plan_copy_triangle(matrix, matrix.transpose(1, 2), scale=-2.0,
                                                                        accumulate=True)[0]),
            ("mirrored lower triangle", plan_copy_triangle(matrix, torch.empty_like(matrix), mirror=True)[0])]
