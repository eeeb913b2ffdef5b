"""What the box operators (``box_iou``, ``box_nms``, ``box_decode``, ``box_encode``) share:
reading a box's four coordinates and moving between its two encodings, ``corner``
(x1, y1, x2, y2) and ``center`` (x, y, width, height), as MXNet computes them (halves by
``* 0.5``, exact, so ``/ 2`` gives the same bits)."""

from __future__ import annotations

import triton

from ._common import load_wide


@triton.jit
def load_box(PTR, row, mask, STRIDE, FIRST):
    """Columns FIRST..FIRST + 3 of rows ``row`` of a (rows, STRIDE) array, in the compute
    dtype (0 where masked)."""
    a = load_wide(PTR, row * STRIDE + FIRST, mask, 0.0)
    b = load_wide(PTR, row * STRIDE + FIRST + 1, mask, 0.0)
    c = load_wide(PTR, row * STRIDE + FIRST + 2, mask, 0.0)
    d = load_wide(PTR, row * STRIDE + FIRST + 3, mask, 0.0)
    return a, b, c, d


@triton.jit
def corners_of_center(x, y, w, h):
    """(x1, y1, x2, y2) of the center-encoded box (x, y, w, h)."""
    return x - w * 0.5, y - h * 0.5, x + w * 0.5, y + h * 0.5


@triton.jit
def center_of_corners(x1, y1, x2, y2):
    """(x, y, w, h) of the corner-encoded box, MXNet's ``x1 + w * 0.5`` for the center."""
    w = x2 - x1
    h = y2 - y1
    return x1 + w * 0.5, y1 + h * 0.5, w, h
