"""multibox_detection (MXNet's ``contrib.MultiBoxDetection``): SSD's detections from its
class probabilities ``cls_prob`` (B, C, N), box offsets ``loc_pred`` (B, 4 N) and anchors
(1, N, 4), as MXNet computes them on its CPU:

  1. each anchor takes its most probable class past the background (class 0; the first of
     equal ones), a detection (id = class - 1, that probability) when it is at least
     ``threshold``; its box decoded as box_decode does against the corner anchor, with
     ``variances`` as the scales, clamped into [0, 1] when ``clip``;
  2. the detections of each image by descending score, ties by anchor (MXNet's stable
     sort), the first ``nms_topk``; each one not yet suppressed suppresses every later one
     it overlaps by an IoU at or above ``nms_threshold`` (of its own class, unless
     ``force_suppress``): ``ops/box_nms.py``'s rank and suppress kernels, on the rows
     [id, score, x1, y1, x2, y2] step 1 writes to scratch;
  3. the output (B, N, 6): those detections in that order, a suppressed one with id -1,
     then rows of -1.

An image whose probabilities (past the background's, which is never read), offsets or
anchors hold a NaN is all NaN (its detections' order is unknown; MXNet's comparisons skip a
NaN probability and its clip makes a NaN coordinate 1). Float32 arithmetic (float64 for
float64), rows rounded to the data's dtype as MXNet's are. No gradient: MXNet's is 0 (the
output is inference's).
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from . import box_nms
from ._boxes import center_of_corners, load_box
from ._common import (
    ELEMENTWISE_BLOCK,
    EXACT_INTEGERS,
    FLOAT_DTYPES,
    KernelArgumentError,
    Launch,
    check_tensor,
    check_writable,
    element_block,
    load_wide,
    store,
    widen,
)

TESTS = ("tests/test_operators.py", "tests/test_multibox_detection.py")
WIDTH = 6  # a detection's row: id, score, x1, y1, x2, y2
BLOCK_OUT = 128  # rows an output program writes at once


@triton.jit
def _clipped(v, CLIP: tl.constexpr):
    if CLIP:  # NaN kept (MXNet's max(0, min(1, v)) makes it 1)
        return tl.where(v < 0.0, 0.0, tl.where(v > 1.0, 1.0, v))
    else:
        return v


@triton.jit
def _detect_kernel(CLS_PROB, LOC_PRED, ANCHOR, ROWS, n_anchors, N, C, threshold, v0, v1, v2, v3,
                   CLIP: tl.constexpr, BLOCK: tl.constexpr):
    index, mask = element_block(n_anchors, BLOCK)
    image, anchor = index // N, index % N
    score = widen(tl.zeros((BLOCK,), tl.float32), CLS_PROB) - 1.0  # MXNet's start: -1, class 0
    best = tl.zeros((BLOCK,), tl.int32)
    unknown = index < 0  # a NaN probability seen
    for c in range(1, C):
        p = load_wide(CLS_PROB, (image * C + c) * N + anchor, mask, 0.0)
        unknown = unknown | (p != p)
        better = p > score
        score = tl.where(better, p, score)
        best = tl.where(better, c, best)
    best = tl.where((best > 0) & (score < threshold), 0, best)
    score = tl.where(unknown, float("nan"), score)
    a0, a1, a2, a3 = load_box(ANCHOR, anchor, mask, 4, 0)
    ax, ay, aw, ah = center_of_corners(a0, a1, a2, a3)
    t0, t1, t2, t3 = load_box(LOC_PRED, index, mask, 4, 0)
    ox = t0 * v0 * aw + ax
    oy = t1 * v1 * ah + ay
    ow = tl.exp(t2 * v2) * aw / 2
    oh = tl.exp(t3 * v3) * ah / 2
    row = index * 6
    store(ROWS, row, (best - 1).to(score.dtype), mask)
    store(ROWS, row + 1, score, mask)
    store(ROWS, row + 2, _clipped(ox - ow, CLIP), mask)
    store(ROWS, row + 3, _clipped(oy - oh, CLIP), mask)
    store(ROWS, row + 4, _clipped(ox + ow, CLIP), mask)
    store(ROWS, row + 5, _clipped(oy + oh, CLIP), mask)


@triton.jit
def _output_kernel(ROWS, ORDER, POSITION, OUT, N, K, NAN_IMAGE: tl.constexpr, BLOCK: tl.constexpr,
                   BLOCK_W: tl.constexpr):
    image = tl.program_id(0).to(tl.int64)
    base = image * N
    lanes = tl.arange(0, BLOCK)
    cols = tl.arange(0, BLOCK_W)
    # the image's detections (the first K of them ranked), and whether suppression saw a NaN
    count_lanes = tl.zeros((BLOCK,), tl.int32)
    for start in range(0, N, BLOCK):
        i = start + lanes
        label = load_wide(ROWS, (base + i) * 6, i < N, -1.0)
        count_lanes += (label >= 0).to(tl.int32)
    count = tl.minimum(tl.sum(count_lanes), K)
    nan_image = tl.load(POSITION + base) == NAN_IMAGE
    for start in range(0, N, BLOCK):
        k = start + lanes
        inside = k < N
        ranked = inside & (k < count)
        source = tl.load(ORDER + base + k, mask=ranked, other=0).to(tl.int64)
        survived = tl.load(POSITION + base + source, mask=ranked, other=-1) >= 0
        value = load_wide(ROWS, (base + source)[:, None] * 6 + cols[None, :], ranked[:, None] & (cols[None, :] < 6),
                          -1.0)
        value = tl.where((cols[None, :] == 0) & ~survived[:, None], -1.0, value)  # a suppressed one's id
        value = tl.where(ranked[:, None], value, -1.0)
        value = tl.where(nan_image, float("nan"), value)
        store(OUT, (base + k)[:, None] * 6 + cols[None, :], value, inside[:, None] & (cols[None, :] < 6))


def scratch_shapes(images: int, anchors: int) -> dict[str, tuple]:
    """The detections' rows (the data's dtype) and box_nms's three int32 arrays."""
    return {"rows": (images, anchors, WIDTH), "order": (images * anchors,), "record": (images * anchors,),
            "position": (images * anchors,)}


def nms_threshold_complaint(value) -> str | None:
    """MXNet 1.9.1 neither suppresses nor sorts outside (0, 1]: refused here."""
    return None if 0 < value <= 1 else "must be in (0, 1] (MXNet 1.9.1 neither suppresses nor sorts outside it)"


def nms_topk_complaint(value) -> str | None:
    return None if value == -1 or value >= 1 else "must be -1 (every detection) or at least 1"


def variances_complaint(value) -> str | None:
    return None if len(value) == 4 and all(math.isfinite(v) for v in value) else "must be four numbers"


def check_parameters(fn: str, nms_threshold: float, nms_topk: int, variances) -> None:
    for name, value, complaint in (("nms_threshold", nms_threshold, nms_threshold_complaint(nms_threshold)),
                                   ("nms_topk", nms_topk, nms_topk_complaint(nms_topk)),
                                   ("variances", tuple(variances), variances_complaint(variances))):
        if complaint:
            raise KernelArgumentError(f"{fn}: {name}={value} {complaint}")


def plan_multibox_detection(cls_prob: torch.Tensor, loc_pred: torch.Tensor, anchor: torch.Tensor,
                            out: torch.Tensor, scratch: dict[str, torch.Tensor], *, clip: bool = True,
                            threshold: float = 0.01, nms_threshold: float = 0.5, force_suppress: bool = False,
                            variances=(0.1, 0.1, 0.2, 0.2), nms_topk: int = -1) -> list[Launch]:
    """``out`` (B, N, 6) = SSD's detections of ``cls_prob`` (B, C, N), ``loc_pred`` (B, 4 N)
    and ``anchor`` (1, N, 4); ``scratch`` as ``scratch_shapes`` says."""
    fn = "multibox_detection"
    check_parameters(fn, nms_threshold, nms_topk, variances)
    check_tensor(fn, "cls_prob", cls_prob, FLOAT_DTYPES)
    if cls_prob.dim() != 3:
        raise KernelArgumentError(f"{fn}: cls_prob of shape {tuple(cls_prob.shape)} must be (batch, classes, "
                                  f"anchors)")
    images, classes, anchors = cls_prob.shape
    shapes = {"loc_pred": (images, anchors * 4), "anchor": (1, anchors, 4), "out": (images, anchors, WIDTH),
              "rows": scratch_shapes(images, anchors)["rows"]}
    for name, t in (("loc_pred", loc_pred), ("anchor", anchor), ("out", out), ("rows", scratch["rows"])):
        if tuple(t.shape) != shapes[name] or t.dtype != cls_prob.dtype or not t.is_contiguous() \
                or t.device != cls_prob.device:
            raise KernelArgumentError(f"{fn}: {name} must be contiguous {shapes[name]} {cls_prob.dtype} on "
                                      f"{cls_prob.device}, got {tuple(t.shape)} {t.dtype} on {t.device} strides "
                                      f"{t.stride()}")
    check_writable(fn, "out", out)
    rows = scratch["rows"]
    check_writable(fn, "rows", rows)
    if classes - 2 > EXACT_INTEGERS[cls_prob.dtype]:  # the largest id, written in the data's dtype
        raise KernelArgumentError(f"{fn}: {cls_prob.dtype} holds class ids exactly only to "
                                  f"{EXACT_INTEGERS[cls_prob.dtype]}; cls_prob of shape {tuple(cls_prob.shape)} needs "
                                  f"{classes - 2}: use float32")
    if images * anchors == 0:
        return []
    suppression, _ = box_nms.plan_suppression(
        fn, rows, scratch["order"], scratch["record"], scratch["position"], nms_threshold, float("-inf"), nms_topk,
        coord_start=2, score_index=1, id_index=0, background_id=-1, force_suppress=force_suppress,
        in_format="corner", out_format="corner", inclusive=True)
    # float32 parameters, as MXNet's (compared and multiplied in the compute dtype)
    variances = [torch.tensor(v, dtype=torch.float32).item() for v in variances]
    threshold = torch.tensor(threshold, dtype=torch.float32).item()
    k = anchors if nms_topk < 0 else min(anchors, nms_topk)
    return [Launch(_detect_kernel, (triton.cdiv(images * anchors, ELEMENTWISE_BLOCK),),
                   [cls_prob, loc_pred, anchor, rows, images * anchors, anchors, classes, threshold, *variances],
                   dict(CLIP=bool(clip), BLOCK=ELEMENTWISE_BLOCK)),
            *suppression,
            Launch(_output_kernel, (images,), [rows, scratch["order"], scratch["position"], out, anchors, k],
                   dict(NAN_IMAGE=box_nms.NAN_IMAGE, BLOCK=BLOCK_OUT, BLOCK_W=8))]


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    # SSD300 on VOC: 8 images, 21 classes, 8732 anchors, the 400 best; 2 images, 3 classes, 7 anchors
    images, classes, anchors, topk = (8, 21, 8732, 400) if large else (2, 3, 7, 4)
    cls_prob = torch.empty(images, classes, anchors, dtype=dtype)
    scratch = {name: torch.empty(shape, dtype=dtype if name == "rows" else torch.int32)
               for name, shape in scratch_shapes(images, anchors).items()}
    launches = plan_multibox_detection(cls_prob, torch.empty(images, anchors * 4, dtype=dtype),
                                       torch.empty(1, anchors, 4, dtype=dtype),
                                       torch.empty(images, anchors, WIDTH, dtype=dtype), scratch, nms_topk=topk)
    # launches[1:3]: box_nms's rank, and its suppression at an IoU at or above the threshold
    return [("multibox detection decode", launches[0]), ("multibox detection suppress", launches[2]),
            ("multibox detection output", launches[-1])]
