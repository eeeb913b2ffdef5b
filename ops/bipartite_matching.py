"""bipartite_matching (MXNet's ``contrib.bipartite_matching``): greedy matching of each
image's rows with its columns by a score matrix ``data`` (..., N, M), as MXNet computes it:
the pairs by descending score (ascending with ``is_ascend``), ties by their flat position
(MXNet's stable sort); a pair whose row and column are both free is matched, unless its
score fails ``threshold`` (not above it; not below it with ``is_ascend``), which ends the
matching, as do ``topk`` matches. Outputs: each row's column (``rows``, (..., N)) and each
column's row (``cols``, (..., M)), -1 where unmatched.

One program per image. Taking the best pair whose row and column are still free, again and
again, matches what MXNet's walk down the sorted pairs does (a pair it skips has a taken
row or column, and stays skipped), without sorting N M scores: at most min(N, M) passes
over the matrix in tiles, the markers written and read back (a barrier after each match).
An image holding a NaN score has NaN markers (MXNet sorts it somewhere). Markers are
written in the data's dtype: one that cannot hold every row and column number exactly is
refused.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from ._common import (
    EXACT_INTEGERS,
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

TESTS = ("tests/test_operators.py", "tests/test_bipartite_matching.py")
# A tile of the score matrix searched at once: the interpreter prefers few large tiles.
BLOCK_R, BLOCK_C = (64, 64) if INTERPRET else (32, 64)
BLOCK_MARKERS = 256  # markers initialised at once


@triton.jit
def _fill(PTR, n, value, BLOCK: tl.constexpr):
    for start in range(0, n, BLOCK):
        i = start + tl.arange(0, BLOCK)
        store(PTR, i, tl.zeros((BLOCK,), tl.float32) + value, i < n)


@triton.jit
def _matching_kernel(DATA, ROWS, COLS, N, M, matches, threshold, ASCEND: tl.constexpr, BLOCK_R: tl.constexpr,
                     BLOCK_C: tl.constexpr, BLOCK: tl.constexpr):
    image = tl.program_id(0).to(tl.int64)
    scores = DATA + image * N * M
    rows, cols = ROWS + image * N, COLS + image * M
    r_lanes = tl.arange(0, BLOCK_R).to(tl.int64)
    c_lanes = tl.arange(0, BLOCK_C).to(tl.int64)
    nan_tiles = tl.zeros((BLOCK_R, BLOCK_C), tl.int32)
    for r0 in range(0, N, BLOCK_R):
        r = r0 + r_lanes
        for c0 in range(0, M, BLOCK_C):
            c = c0 + c_lanes
            s = load_wide(scores, r[:, None] * M + c[None, :], (r[:, None] < N) & (c[None, :] < M), 0.0)
            nan_tiles += (s != s).to(tl.int32)
    if tl.sum(tl.sum(nan_tiles, axis=1), axis=0) > 0:
        _fill(rows, N, float("nan"), BLOCK)
        _fill(cols, M, float("nan"), BLOCK)
    else:
        _fill(rows, N, -1.0, BLOCK)
        _fill(cols, M, -1.0, BLOCK)
        tl.debug_barrier()
        going = tl.sum(tl.zeros((BLOCK_C,), tl.int32)) == 0  # True
        for _ in range(0, matches):
            if going:
                # the best pair of a free row and a free column: the greatest key, then the least flat place
                best_key = widen(tl.sum(tl.zeros((BLOCK_C,), tl.float32)), DATA) - float("inf")
                best_place = tl.sum(tl.zeros((BLOCK_C,), tl.int64)) + N * M
                for r0 in range(0, N, BLOCK_R):
                    r = r0 + r_lanes
                    row_free = load_wide(rows, r, r < N, 0.0) < 0  # widened: the interpreter's bfloat16
                    for c0 in range(0, M, BLOCK_C):
                        c = c0 + c_lanes
                        col_free = load_wide(cols, c, c < M, 0.0) < 0
                        free = row_free[:, None] & col_free[None, :]
                        place = r[:, None] * M + c[None, :]
                        s = load_wide(scores, place, free, 0.0)
                        if ASCEND:  # the least score first: the greatest of its negation
                            s = -s
                        key = tl.where(free, s, float("-inf"))
                        top = tl.max(tl.max(key, axis=1), axis=0)
                        at = tl.min(tl.min(tl.where(free & (key == top), place, N * M), axis=1), axis=0)
                        better = (at < N * M) & ((top > best_key) | ((top == best_key) & (at < best_place)))
                        best_key = tl.where(better, top, best_key)
                        best_place = tl.where(better, at, best_place)
                found = best_place < N * M
                best = load_wide(scores, tl.where(found, best_place, 0), found, 0.0)
                passes = found & ((best < threshold) if ASCEND else (best > threshold))
                if passes:
                    r_best = best_place // M
                    c_best = best_place % M
                    store(rows, r_best, c_best.to(tl.float32), found)
                    store(cols, c_best, r_best.to(tl.float32), found)
                going = passes
                tl.debug_barrier()  # the next pass reads these markers back, on other lanes


def plan_bipartite_matching(data: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, threshold: float,
                            is_ascend: bool = False, topk: int = -1) -> list[Launch]:
    """``rows`` (..., N), ``cols`` (..., M) = each row's matched column and each column's
    row (-1: none) of greedy matching by the scores ``data`` (..., N, M)."""
    fn = "bipartite_matching"
    check_tensor(fn, "data", data, FLOAT_DTYPES)
    if data.dim() < 2:
        raise KernelArgumentError(f"{fn}: data of shape {tuple(data.shape)} must be (..., rows, columns)")
    n, m = data.shape[-2:]
    for name, t, shape in (("rows", rows, data.shape[:-1]), ("cols", cols, (*data.shape[:-2], m))):
        if tuple(t.shape) != tuple(shape) or t.dtype != data.dtype or not t.is_contiguous() or t.device != data.device:
            raise KernelArgumentError(f"{fn}: {name} must be contiguous {tuple(shape)} {data.dtype} on {data.device}, "
                                      f"got {tuple(t.shape)} {t.dtype} on {t.device} strides {t.stride()}")
        check_writable(fn, name, t)
    if not data.is_contiguous():
        raise KernelArgumentError(f"{fn}: data must be contiguous, got strides {data.stride()}")
    largest = EXACT_INTEGERS[data.dtype]
    if max(n, m) - 1 > largest:
        raise KernelArgumentError(f"{fn}: {data.dtype} markers hold row and column numbers exactly only to {largest}; "
                                  f"data of shape {tuple(data.shape)} needs {max(n, m) - 1}: use float32")
    if topk == 0 or topk < -1:
        raise KernelArgumentError(f"{fn}: topk={topk} must be -1 (no limit) or at least 1")
    if not math.isfinite(threshold):
        raise KernelArgumentError(f"{fn}: threshold={threshold} must be a finite number")
    images = math.prod(data.shape[:-2])
    if images == 0 or n * m == 0:
        return []  # nothing to match: the markers of an empty side are themselves empty, or -1 below
    matches = min(n, m) if topk < 0 else min(n, m, topk)
    threshold = torch.tensor(threshold, dtype=torch.float32).item()  # MXNet's float parameter
    return [Launch(_matching_kernel, (images,), [data, rows, cols, n, m, matches, threshold],
                   dict(ASCEND=bool(is_ascend), BLOCK_R=BLOCK_R, BLOCK_C=BLOCK_C, BLOCK=BLOCK_MARKERS))]


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    # SSD's 8732 anchors against 50 ground-truth boxes' IoUs, 8 images (250 anchors in half
    # precision, whose markers number no more); 2 images of 5 x 3
    images, n, m = (8, 8732 if EXACT_INTEGERS[dtype] > 8732 else 250, 50) if large else (2, 5, 3)
    data = torch.empty(images, n, m, dtype=dtype)
    rows, cols = torch.empty(images, n, dtype=dtype), torch.empty(images, m, dtype=dtype)
    return [("bipartite matching", plan_bipartite_matching(data, rows, cols, 0.5)[0]),
            ("bipartite matching ascending top 10", plan_bipartite_matching(data, rows, cols, 0.5, True, 10)[0])]
