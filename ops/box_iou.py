"""box_iou (MXNet's ``contrib.box_iou``): the intersection over union of every pair of
boxes, ``out[i, j] = I / (A_i + A_j - I)`` for lhs boxes (L, 4) and rhs boxes (M, 4), each
``corner`` (x1, y1, x2, y2) or ``center`` (x, y, width, height) encoded, as MXNet computes
it: the intersection ``max(min(right) - max(left), 0)`` a side, 0 where it is not positive.
A NaN coordinate gives its pairs NaN (MXNet's comparisons answer 0).

Backward (MXNet gives none; detection losses on IoU need it): where I > 0 both boxes have
positive sides, so ``d IoU = dI (U + I) / U^2 - (dA_i + dA_j) I / U^2``, U the union, with
``dI`` taken on the side that bounds the intersection (a tie goes to rhs, whose edge
MXNet's ``max`` picks) and center boxes chained through their corners. One program per
block of lhs boxes sums over every rhs box in order, and one per block of rhs boxes over
every lhs box: the same bits every run, no atomics. Float32 arithmetic (float64 for
float64), rounded once.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from ._boxes import corners_of_center, load_box
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

TESTS = ("tests/test_operators.py", "tests/test_gradcheck.py", "tests/test_box_iou.py")
FORMATS = ("corner", "center")
BLOCK_BOXES = 128  # boxes of one side a gradient program owns


@triton.jit
def _corners(BOXES, box, mask, CENTER: tl.constexpr):
    """(left, top, right, bottom) of the boxes ``box`` (vectors, compute dtype)."""
    a, b, c, d = load_box(BOXES, box, mask, 4, 0)
    if CENTER:
        return corners_of_center(a, b, c, d)
    else:
        return a, b, c, d


@triton.jit
def _nan_if_any(value, a, b, c, d):
    return tl.where((a != a) | (b != b) | (c != c) | (d != d), float("nan"), value)


@triton.jit
def _pair(l0, l1, l2, l3, r0, r1, r2, r3):
    """For pairs of boxes as corners: IoU, and the coefficients of its gradient: (iou, c_i,
    c_a, wx, wy, the lhs's left, top, right and bottom bounding the
    intersection), c_i = (U + I) / U^2 and c_a = I / U^2, both 0 where the boxes do not
    overlap."""
    lhs_left = l0 > r0
    lhs_top = l1 > r1
    lhs_right = l2 < r2
    lhs_bottom = l3 < r3
    wx = tl.where(lhs_right, l2, r2) - tl.where(lhs_left, l0, r0)
    wy = tl.where(lhs_bottom, l3, r3) - tl.where(lhs_top, l1, r1)
    overlap = (wx > 0) & (wy > 0)
    inter = tl.where(overlap, wx * wy, 0.0)
    union = tl.where(overlap, (l2 - l0) * (l3 - l1) + (r2 - r0) * (r3 - r1) - inter, 1.0)
    iou = inter / union
    c_i = tl.where(overlap, (union + inter) / (union * union), 0.0)
    c_a = tl.where(overlap, inter / (union * union), 0.0)
    # a NaN coordinate: NaN for the pair and in both boxes' gradients (the comparisons above
    # would make it a plausible 0)
    nan = _nan_if_any(_nan_if_any(0.0 * inter, l0, l1, l2, l3), r0, r1, r2, r3)
    return iou + nan, c_i + nan, c_a + nan, wx, wy, lhs_left, lhs_top, lhs_right, lhs_bottom


@triton.jit
def _iou_kernel(LHS, RHS, OUT, n, M, CENTER: tl.constexpr, ACCUMULATE: tl.constexpr, BLOCK: tl.constexpr):
    index, mask = element_block(n, BLOCK)
    i, j = index // M, index % M
    l0, l1, l2, l3 = _corners(LHS, i, mask, CENTER)
    r0, r1, r2, r3 = _corners(RHS, j, mask, CENTER)
    iou, _, _, _, _, _, _, _, _ = _pair(l0, l1, l2, l3, r0, r1, r2, r3)
    store_result(OUT, index, iou, mask, ACCUMULATE)


@triton.jit
def _grad_kernel(DOUT, MINE, OTHER, DMINE, COUNT, OTHERS, MINE_IS_LHS: tl.constexpr, CENTER: tl.constexpr,
                 ACCUMULATE: tl.constexpr, BLOCK: tl.constexpr):
    """DMINE (+)= the gradient of this side's boxes, each summing over every box of the
    other side in order (DOUT is (L, M): row of lhs box i, column of rhs box j)."""
    box = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = box < COUNT
    m0, m1, m2, m3 = _corners(MINE, box, mask, CENTER)
    zero = widen(tl.zeros((BLOCK,), tl.float32), DMINE)
    g0, g1, g2, g3 = zero, zero, zero, zero
    same = tl.zeros((BLOCK,), tl.int64)  # the other box in every lane: vectors throughout
    for k in range(0, OTHERS):
        o0, o1, o2, o3 = _corners(OTHER, same + k, mask, CENTER)
        if MINE_IS_LHS:
            _, c_i, c_a, wx, wy, at_left, at_top, at_right, at_bottom = _pair(m0, m1, m2, m3, o0, o1, o2, o3)
            h = load_wide(DOUT, box * OTHERS + k, mask, 0.0)
        else:
            _, c_i, c_a, wx, wy, lhs_left, lhs_top, lhs_right, lhs_bottom = _pair(o0, o1, o2, o3, m0, m1, m2, m3)
            at_left, at_top, at_right, at_bottom = ~lhs_left, ~lhs_top, ~lhs_right, ~lhs_bottom
            h = load_wide(DOUT, k * COUNT + box, mask, 0.0)
        width, height = m2 - m0, m3 - m1
        g0 += h * (c_i * tl.where(at_left, -wy, 0.0) + c_a * height)
        g1 += h * (c_i * tl.where(at_top, -wx, 0.0) + c_a * width)
        g2 += h * (c_i * tl.where(at_right, wy, 0.0) - c_a * height)
        g3 += h * (c_i * tl.where(at_bottom, wx, 0.0) - c_a * width)
    if CENTER:  # chained through left = x - w / 2, right = x + w / 2 (and likewise y, h)
        g0, g1, g2, g3 = g0 + g2, g1 + g3, (g2 - g0) / 2, (g3 - g1) / 2
    g0 = _nan_if_any(g0, m0, m1, m2, m3)
    g1 = _nan_if_any(g1, m0, m1, m2, m3)
    g2 = _nan_if_any(g2, m0, m1, m2, m3)
    g3 = _nan_if_any(g3, m0, m1, m2, m3)
    store_result(DMINE, box * 4, g0, mask, ACCUMULATE)
    store_result(DMINE, box * 4 + 1, g1, mask, ACCUMULATE)
    store_result(DMINE, box * 4 + 2, g2, mask, ACCUMULATE)
    store_result(DMINE, box * 4 + 3, g3, mask, ACCUMULATE)


def _counts(fn: str, lhs: torch.Tensor, rhs: torch.Tensor, out: torch.Tensor, fmt: str) -> tuple[int, int]:
    """(boxes of lhs, boxes of rhs) after checking lhs (..., 4), rhs (..., 4) and the
    output (or its gradient) lhs.shape[:-1] + rhs.shape[:-1]."""
    if fmt not in FORMATS:
        raise KernelArgumentError(f"{fn}: format={fmt!r} is not one of {FORMATS}")
    for name, t in (("lhs", lhs), ("rhs", rhs), ("out", out)):
        check_tensor(fn, name, t, FLOAT_DTYPES)
        if not t.is_contiguous() or t.dtype != lhs.dtype or t.device != lhs.device:
            raise KernelArgumentError(f"{fn}: {name} must be contiguous, of lhs's {lhs.dtype} on {lhs.device}, got "
                                      f"{tuple(t.shape)} {t.dtype} on {t.device} strides {t.stride()}")
    if lhs.dim() < 1 or rhs.dim() < 1 or lhs.shape[-1] != 4 or rhs.shape[-1] != 4:
        raise KernelArgumentError(f"{fn}: lhs {tuple(lhs.shape)} and rhs {tuple(rhs.shape)} must hold boxes of 4 "
                                  f"coordinates along their last axis")
    expected = (*lhs.shape[:-1], *rhs.shape[:-1])
    if tuple(out.shape) != expected:
        raise KernelArgumentError(f"{fn}: out must be {expected} for lhs {tuple(lhs.shape)} and rhs "
                                  f"{tuple(rhs.shape)}, got {tuple(out.shape)}")
    return math.prod(lhs.shape[:-1]), math.prod(rhs.shape[:-1])


def plan_box_iou(lhs: torch.Tensor, rhs: torch.Tensor, out: torch.Tensor, fmt: str = "corner",
                 accumulate: bool = False) -> list[Launch]:
    """``out (+)=`` the IoU of every box of ``lhs`` with every box of ``rhs``."""
    fn = "box_iou"
    count_l, count_r = _counts(fn, lhs, rhs, out, fmt)
    check_writable(fn, "out", out)
    n = count_l * count_r
    if n == 0:
        return []
    return [Launch(_iou_kernel, (triton.cdiv(n, ELEMENTWISE_BLOCK),), [lhs, rhs, out, n, count_r],
                   dict(CENTER=fmt == "center", ACCUMULATE=accumulate, BLOCK=ELEMENTWISE_BLOCK))]


def plan_box_iou_backward(dout: torch.Tensor, lhs: torch.Tensor, rhs: torch.Tensor, dlhs: torch.Tensor | None,
                          drhs: torch.Tensor | None, fmt: str = "corner", accumulate_lhs: bool = False,
                          accumulate_rhs: bool = False) -> list[Launch]:
    """``dlhs``, ``drhs`` ``(+)=`` the gradients of the boxes through ``dout`` (None: not wanted)."""
    fn = "box_iou_backward"
    count_l, count_r = _counts(fn, lhs, rhs, dout, fmt)
    launches = []
    for name, grad, like, mine, other, count, others, is_lhs, accumulate in (
            ("dlhs", dlhs, lhs, lhs, rhs, count_l, count_r, True, accumulate_lhs),
            ("drhs", drhs, rhs, rhs, lhs, count_r, count_l, False, accumulate_rhs)):
        if grad is None:
            continue
        if tuple(grad.shape) != tuple(like.shape) or grad.dtype != like.dtype or not grad.is_contiguous():
            raise KernelArgumentError(f"{fn}: {name} must be contiguous {tuple(like.shape)} {like.dtype}, got "
                                      f"{tuple(grad.shape)} {grad.dtype}")
        check_writable(fn, name, grad)
        if count:
            launches.append(Launch(_grad_kernel, (triton.cdiv(count, BLOCK_BOXES),),
                                   [dout, mine, other, grad, count, others],
                                   dict(MINE_IS_LHS=is_lhs, CENTER=fmt == "center", ACCUMULATE=accumulate,
                                        BLOCK=BLOCK_BOXES)))
    return launches


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    # a detector's 8732 anchors against 64 ground-truth boxes (SSD's matching); 7 against 5
    anchors, truths = (8732, 64) if large else (7, 5)
    lhs, rhs = torch.empty(anchors, 4, dtype=dtype), torch.empty(truths, 4, dtype=dtype)
    out = torch.empty(anchors, truths, dtype=dtype)
    return [("box iou", plan_box_iou(lhs, rhs, out)[0]),
            ("box iou center", plan_box_iou(lhs, rhs, out, "center")[0]),
            ("box iou lhs gradient", plan_box_iou_backward(out, lhs, rhs, torch.empty_like(lhs), None)[0]),
            ("box iou rhs gradient center accumulating",
             plan_box_iou_backward(out, lhs, rhs, None, torch.empty_like(rhs), "center", accumulate_rhs=True)[0])]
