"""multibox_target (MXNet's ``contrib.MultiBoxTarget``): SSD's training targets from its
anchors (1, N, 4), each image's ground truth ``label`` (B, M, W) rows [class, x1, y1, x2,
y2, ...] (the first row of class -1 ends an image's boxes) and the class predictions
``cls_pred`` (B, C, N), as MXNet computes them on its CPU:

  1. matching, on the IoU of every anchor with every box (0 where the union is 0): first
     each box takes one anchor, the best pair of a free anchor and a free box again and
     again (IoU above 1e-6; ties by anchor, then box); then each anchor left takes the box
     it overlaps most (the first of equal ones), a positive if that IoU is above
     ``overlap_threshold`` (when it is above 0);
  2. negatives: with ``negative_mining_ratio`` above 0, the anchors left whose best IoU is
     below ``negative_mining_thresh``, fewest background probability (softmax of
     ``cls_pred`` over the classes) first, ties by anchor, ``ratio x positives`` of them
     (at least ``minimum_negative_samples``, as MXNet's GPU code; at most what is left);
     else every anchor left;
  3. targets: a positive's class + 1, mask 1, and the box's center offsets
     ``((gx - ax) / aw / v0, ..., log(gw / aw) / v2, ...)``; a negative's class 0; the rest
     ``ignore_label``; masks and offsets 0 but for positives. An image without boxes
     ignores every anchor.

One program per image, its choices kept in scratch: the anchors' state (1 positive, 0
negative, -1 neither), match and best IoU, the boxes taken, the candidates' background
probabilities. Overlaps are recomputed from the boxes rather than kept (N M values a pass).
Picking the k least probabilities needs no sort: the k-th least is found by bisection on
their bits (non-negative floats order as their bits do), then ties by anchor number by
bisection too, about 31 + log2 N counting passes (63 for float64).

NaN: an image whose anchors or boxes make an IoU NaN is all NaN (its matching is unknown);
a NaN among the negative candidates' predictions makes its classes NaN (which anchors are
negatives is unknown; the offsets and masks of positives stand); a positive's class that is
not a whole number in [0, C - 1) gives NaN (no class C can hold). Float32 arithmetic
(float64 for float64), as MXNet's order; results rounded to the data's dtype. No gradient:
the targets are labels (MXNet's is 0).
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from ._boxes import load_box
from ._common import (
    EXACT_INTEGERS,
    FLOAT_DTYPES,
    INTERPRET,
    KernelArgumentError,
    Launch,
    check_tensor,
    check_writable,
    compute_dtype,
    load_wide,
    store,
    widen,
)

TESTS = ("tests/test_operators.py", "tests/test_multibox_target.py")
# A tile of anchors x boxes matched at once: the interpreter prefers few large tiles.
BLOCK_R, BLOCK_C = (64, 64) if INTERPRET else (32, 64)
BLOCK_ANCHORS = 256  # anchors a per-anchor pass handles at once
BEST_PAIR_FLOOR = 1e-6  # MXNet's: a box takes an anchor only above this IoU


@triton.jit
def _overlaps(ANCHOR, BOXES, j, k, j_in, k_in, W):
    """IoU (BLOCK_R, BLOCK_C) of the anchors ``j`` with the boxes ``k``, as MXNet computes
    it: sides max(0, min(right) - max(left)), 0 where the union is 0; NaN from a NaN
    coordinate (it reaches the union)."""
    a0, a1, a2, a3 = load_box(ANCHOR, j, j_in, 4, 0)
    g0, g1, g2, g3 = load_box(BOXES, k, k_in, W, 1)
    a0, a1, a2, a3 = a0[:, None], a1[:, None], a2[:, None], a3[:, None]
    g0, g1, g2, g3 = g0[None, :], g1[None, :], g2[None, :], g3[None, :]
    iw = tl.maximum(tl.minimum(a2, g2) - tl.maximum(a0, g0), 0.0)
    ih = tl.maximum(tl.minimum(a3, g3) - tl.maximum(a1, g1), 0.0)
    inter = iw * ih
    union = (a2 - a0) * (a3 - a1) + (g2 - g0) * (g3 - g1) - inter
    return tl.where(union == 0.0, 0.0, inter / tl.where(union == 0.0, 1.0, union))


@triton.jit
def _boxes_of_image(BOXES, M, W, BLOCK_C: tl.constexpr):
    """How many boxes the image has: the rows before the first of class -1."""
    lanes = tl.arange(0, BLOCK_C).to(tl.int64)
    first = tl.sum(tl.zeros((BLOCK_C,), tl.int64), axis=0) + M
    for k0 in range(0, M, BLOCK_C):
        k = k0 + lanes
        cls = load_wide(BOXES, k * W, k < M, 0.0)
        first = tl.minimum(first, tl.min(tl.where((k < M) & (cls == -1.0), k, M), axis=0))
    return first


@triton.jit
def _overlaps_hold_nan(ANCHOR, BOXES, N, boxes, W, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    r_lanes = tl.arange(0, BLOCK_R).to(tl.int64)
    c_lanes = tl.arange(0, BLOCK_C).to(tl.int64)
    seen = tl.zeros((BLOCK_R, BLOCK_C), tl.int32)
    for r0 in range(0, N, BLOCK_R):
        j = r0 + r_lanes
        for c0 in range(0, boxes, BLOCK_C):
            k = c0 + c_lanes
            inside = (j < N)[:, None] & (k < boxes)[None, :]
            iou = _overlaps(ANCHOR, BOXES, j, k, j < N, k < boxes, W)
            seen += (inside & (iou != iou)).to(tl.int32)
    return tl.sum(tl.sum(seen, axis=1), axis=0) > 0


@triton.jit
def _reset(STATE, MATCH, OVERLAP, TAKEN, N, M, BLOCK: tl.constexpr):
    lanes = tl.arange(0, BLOCK).to(tl.int64)
    for start in range(0, N, BLOCK):
        j = start + lanes
        tl.store(STATE + j, tl.zeros((BLOCK,), tl.int32) - 1, mask=j < N)
        tl.store(MATCH + j, tl.zeros((BLOCK,), tl.int32) - 1, mask=j < N)
        store(OVERLAP, j, tl.zeros((BLOCK,), tl.float32) - 1.0, j < N)
    for start in range(0, M, BLOCK):
        k = start + lanes
        tl.store(TAKEN + k, tl.zeros((BLOCK,), tl.int32), mask=k < M)


@triton.jit
def _match_best_pairs(ANCHOR, BOXES, STATE, MATCH, OVERLAP, TAKEN, N, M, boxes, W, passes, floor,
                      BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    """Each box its anchor: the best pair of a free anchor and a free box, again and again,
    while its IoU is above ``floor``; ties by anchor then box (MXNet's scan order)."""
    r_lanes = tl.arange(0, BLOCK_R).to(tl.int64)
    c_lanes = tl.arange(0, BLOCK_C).to(tl.int64)
    going = tl.sum(tl.zeros((BLOCK_C,), tl.int32), axis=0) == 0  # True
    for _ in range(0, passes):
        if going:
            best = widen(tl.sum(tl.zeros((BLOCK_C,), tl.float32), axis=0), OVERLAP) - float("inf")
            best_place = tl.sum(tl.zeros((BLOCK_C,), tl.int64), axis=0) + N * M
            for r0 in range(0, N, BLOCK_R):
                j = r0 + r_lanes
                free_j = (j < N) & (tl.load(STATE + j, mask=j < N, other=1) != 1)
                for c0 in range(0, boxes, BLOCK_C):
                    k = c0 + c_lanes
                    free_k = (k < boxes) & (tl.load(TAKEN + k, mask=k < boxes, other=1) == 0)
                    free = free_j[:, None] & free_k[None, :]
                    key = tl.where(free, _overlaps(ANCHOR, BOXES, j, k, free_j, free_k, W), float("-inf"))
                    top = tl.max(tl.max(key, axis=1), axis=0)
                    place = j[:, None] * M + k[None, :]
                    at = tl.min(tl.min(tl.where(free & (key == top), place, N * M), axis=1), axis=0)
                    better = (at < N * M) & ((top > best) | ((top == best) & (at < best_place)))
                    best = tl.where(better, top, best)
                    best_place = tl.where(better, at, best_place)
            found = (best_place < N * M) & (best > floor)
            if found:
                anchor = best_place // M
                box = best_place % M
                tl.store(STATE + anchor, 1)
                tl.store(MATCH + anchor, box.to(tl.int32))
                store(OVERLAP, anchor, best, found)
                tl.store(TAKEN + box, 1)
            going = found
            tl.debug_barrier()  # the next pass reads these back, on other lanes


@triton.jit
def _match_the_rest(ANCHOR, BOXES, STATE, MATCH, OVERLAP, N, boxes, W, overlap_threshold, BY_THRESHOLD: tl.constexpr,
                    BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    """Each anchor not yet matched: the box it overlaps most (the first of equal ones; none
    if no IoU is above -1, MXNet's start), a positive above ``overlap_threshold``."""
    r_lanes = tl.arange(0, BLOCK_R).to(tl.int64)
    c_lanes = tl.arange(0, BLOCK_C).to(tl.int64)
    for r0 in range(0, N, BLOCK_R):
        j = r0 + r_lanes
        todo = (j < N) & (tl.load(STATE + j, mask=j < N, other=1) != 1)
        best = widen(tl.zeros((BLOCK_R,), tl.float32), OVERLAP) - 1.0
        best_box = tl.zeros((BLOCK_R,), tl.int64) - 1
        for c0 in range(0, boxes, BLOCK_C):
            k = c0 + c_lanes
            pair = todo[:, None] & (k < boxes)[None, :]
            key = tl.where(pair, _overlaps(ANCHOR, BOXES, j, k, todo, k < boxes, W), float("-inf"))
            top = tl.max(key, axis=1)
            first = tl.min(tl.where(pair & (key == top[:, None]), k[None, :], boxes), axis=1)
            better = top > best  # an earlier tile keeps a tie
            best = tl.where(better, top, best)
            best_box = tl.where(better, first, best_box)
        store(OVERLAP, j, best, todo)
        tl.store(MATCH + j, best_box.to(tl.int32), mask=todo)
        if BY_THRESHOLD:
            tl.store(STATE + j, tl.zeros((BLOCK_R,), tl.int32) + 1, mask=todo & (best > overlap_threshold))


@triton.jit
def _key(s, WIDE: tl.constexpr):
    """A non-negative float's bits as an integer: they order as the floats do."""
    if WIDE:
        return s.to(tl.int64, bitcast=True)
    else:
        return s.to(tl.int32, bitcast=True)


@triton.jit
def _count_keys(SCORE, N, below, at, cut, WIDE: tl.constexpr, BLOCK: tl.constexpr):
    """How many anchors have a key below ``below``, or equal to ``at`` with a number up to ``cut``."""
    lanes = tl.arange(0, BLOCK).to(tl.int64)
    count = tl.zeros((BLOCK,), tl.int32)
    for start in range(0, N, BLOCK):
        j = start + lanes
        key = _key(tl.load(SCORE + j, mask=j < N, other=float("inf")), WIDE)
        count += ((j < N) & ((key < below) | ((key == at) & (j <= cut)))).to(tl.int32)
    return tl.sum(count, axis=0)


@triton.jit
def _mine_negatives(CLS_PRED, STATE, OVERLAP, SCORE, N, C, ratio, mining_threshold, minimum, index_steps,
                    WIDE: tl.constexpr, KEY_STEPS: tl.constexpr, BLOCK: tl.constexpr):
    """The hardest negatives: the candidates' background probabilities into SCORE (+inf for
    the rest), then the least k of them marked 0. Returns whether a candidate's was NaN."""
    lanes = tl.arange(0, BLOCK).to(tl.int64)
    positives = tl.zeros((BLOCK,), tl.int32)
    candidates = tl.zeros((BLOCK,), tl.int32)
    unknown = tl.zeros((BLOCK,), tl.int32)
    for start in range(0, N, BLOCK):
        j = start + lanes
        state = tl.load(STATE + j, mask=j < N, other=1)
        positives += ((j < N) & (state == 1)).to(tl.int32)
        candidate = (j < N) & (state == -1) & (tl.load(OVERLAP + j, mask=j < N, other=0.0) < mining_threshold)
        # the background's softmax probability, MXNet's order: the max from class 0 on, then the sum
        first = load_wide(CLS_PRED, j, candidate, 0.0)
        top = first
        for c in range(1, C):  # a NaN is skipped here, as MXNet's max, but reaches the sum below
            p = load_wide(CLS_PRED, c * N + j, candidate, 0.0)
            top = tl.where(p > top, p, top)
        total = tl.zeros_like(top)
        for c in range(0, C):
            total += tl.exp(load_wide(CLS_PRED, c * N + j, candidate, 0.0) - top)
        prob = tl.exp(first - top) / total
        unknown += (candidate & (prob != prob)).to(tl.int32)
        candidates += candidate.to(tl.int32)
        tl.store(SCORE + j, tl.where(candidate, prob, float("inf")), mask=j < N)
    positive_count = tl.sum(positives, axis=0)
    # MXNet's int(positives * ratio) (kept in range), at least the minimum, at most the anchors left and the candidates
    wanted = tl.minimum(positive_count.to(tl.float32) * ratio, N + 0.0).to(tl.int32)
    wanted = tl.minimum(tl.minimum(tl.maximum(wanted, minimum), N - positive_count), tl.sum(candidates, axis=0))
    nan_scores = tl.sum(unknown, axis=0) > 0
    if (wanted > 0) & (nan_scores == 0):
        tl.debug_barrier()  # SCORE was written by other lanes
        # the least key t with at least `wanted` keys at or below it
        zero = widen(tl.sum(tl.zeros((BLOCK,), tl.float32), axis=0), SCORE)
        lo = _key(zero, WIDE)
        hi = _key(zero + float("inf"), WIDE)
        for _ in range(0, KEY_STEPS):
            mid = lo + (hi - lo) // 2
            enough = _count_keys(SCORE, N, mid + 1, -1, -1, WIDE, BLOCK) >= wanted
            hi = tl.where(enough, mid, hi)
            lo = tl.where(enough, lo, mid + 1)
        # then, of the keys equal to t, those up to the least anchor number that makes enough
        first_cut = tl.sum(tl.zeros((BLOCK,), tl.int64), axis=0)
        last_cut = first_cut + N - 1
        for _ in range(0, index_steps):
            mid = (first_cut + last_cut) // 2
            enough = _count_keys(SCORE, N, lo, lo, mid, WIDE, BLOCK) >= wanted
            last_cut = tl.where(enough, mid, last_cut)
            first_cut = tl.where(enough, first_cut, mid + 1)
        for start in range(0, N, BLOCK):
            j = start + lanes
            key = _key(tl.load(SCORE + j, mask=j < N, other=float("inf")), WIDE)
            candidate = (j < N) & (tl.load(STATE + j, mask=j < N, other=1) == -1)
            chosen = candidate & ((key < lo) | ((key == lo) & (j <= first_cut)))
            tl.store(STATE + j, tl.zeros((BLOCK,), tl.int32), mask=chosen)
    return nan_scores


@triton.jit
def _target_kernel(ANCHOR, LABEL, CLS_PRED, LOC_TARGET, LOC_MASK, CLS_TARGET, STATE, MATCH, OVERLAP, SCORE, TAKEN,
                   N, M, W, C, passes, index_steps, floor, overlap_threshold, ignore_label, ratio, mining_threshold,
                   minimum, v0, v1, v2, v3, BY_THRESHOLD: tl.constexpr, MINING: tl.constexpr, WIDE: tl.constexpr,
                   KEY_STEPS: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK: tl.constexpr):
    image = tl.program_id(0).to(tl.int64)
    boxes_ptr = LABEL + image * M * W
    cls_pred = CLS_PRED + image * C * N
    state, match, overlap, score = STATE + image * N, MATCH + image * N, OVERLAP + image * N, SCORE + image * N
    taken = TAKEN + image * M
    boxes = _boxes_of_image(boxes_ptr, M, W, BLOCK_C)
    nan_image = _overlaps_hold_nan(ANCHOR, boxes_ptr, N, boxes, W, BLOCK_R, BLOCK_C)
    _reset(state, match, overlap, taken, N, M, BLOCK)
    tl.debug_barrier()
    nan_scores = nan_image & (boxes < 0)  # False
    if (boxes > 0) & (nan_image == 0):
        _match_best_pairs(ANCHOR, boxes_ptr, state, match, overlap, taken, N, M, boxes, W, passes, floor,
                          BLOCK_R, BLOCK_C)
        _match_the_rest(ANCHOR, boxes_ptr, state, match, overlap, N, boxes, W, overlap_threshold, BY_THRESHOLD,
                        BLOCK_R, BLOCK_C)
        tl.debug_barrier()
        lanes = tl.arange(0, BLOCK).to(tl.int64)
        if MINING:
            nan_scores = _mine_negatives(cls_pred, state, overlap, score, N, C, ratio, mining_threshold, minimum,
                                         index_steps, WIDE, KEY_STEPS, BLOCK)
        else:  # every anchor left is a negative
            for start in range(0, N, BLOCK):
                j = start + lanes
                left = (j < N) & (tl.load(state + j, mask=j < N, other=1) == -1)
                tl.store(state + j, tl.zeros((BLOCK,), tl.int32), mask=left)
        tl.debug_barrier()
    _assign(ANCHOR, boxes_ptr, state, match, LOC_TARGET + image * N * 4, LOC_MASK + image * N * 4,
            CLS_TARGET + image * N, N, W, C, ignore_label, v0, v1, v2, v3, nan_image, nan_scores, BLOCK)


@triton.jit
def _rounded_log(x):
    """log(x) correctly rounded to x's type (glibc's logf, MXNet's, is): computed in float64.
    Only positives' offsets take it, a few an image."""
    return tl.log(x.to(tl.float64)).to(x.dtype)


@triton.jit
def _assign(ANCHOR, BOXES, STATE, MATCH, LOC_TARGET, LOC_MASK, CLS_TARGET, N, W, C, ignore_label, v0, v1, v2, v3,
            nan_image, nan_scores, BLOCK: tl.constexpr):
    lanes = tl.arange(0, BLOCK).to(tl.int64)
    for start in range(0, N, BLOCK):
        j = start + lanes
        inside = j < N
        state = tl.load(STATE + j, mask=inside, other=-1)
        positive = inside & (state == 1)
        box = tl.load(MATCH + j, mask=positive, other=0).to(tl.int64)
        cls = load_wide(BOXES, box * W, positive, 0.0)
        whole = (cls >= 0.0) & (cls <= C - 2) & (cls == tl.floor(cls))
        target = tl.where(positive, tl.where(whole, cls + 1.0, float("nan")),
                          tl.where(state == 0, 0.0, ignore_label))
        store(CLS_TARGET, j, tl.where(nan_image | nan_scores, float("nan"), target), inside)
        # MXNet's float arithmetic in its order: centers as (left + right) * 0.5
        a0, a1, a2, a3 = load_box(ANCHOR, j, positive, 4, 0)
        g0, g1, g2, g3 = load_box(BOXES, box, positive, W, 1)
        aw, ah = a2 - a0, a3 - a1
        gw, gh = g2 - g0, g3 - g1
        ax, ay = (a0 + a2) * 0.5, (a1 + a3) * 0.5
        gx, gy = (g0 + g2) * 0.5, (g1 + g3) * 0.5
        safe_w, safe_h = tl.where(positive, aw, 1.0), tl.where(positive, ah, 1.0)
        offsets = ((gx - ax) / safe_w / v0, (gy - ay) / safe_h / v1,
                   _rounded_log(tl.where(positive, gw / safe_w, 1.0)) / v2,
                   _rounded_log(tl.where(positive, gh / safe_h, 1.0)) / v3)
        mask = tl.where(nan_image, float("nan"), tl.where(positive, 1.0, 0.0))
        for q in tl.static_range(4):
            value = tl.where(positive, offsets[q], 0.0)
            store(LOC_TARGET, j * 4 + q, tl.where(nan_image, float("nan"), value), inside)
            store(LOC_MASK, j * 4 + q, mask, inside)


def scratch_shapes(images: int, anchors: int, boxes: int, dtype: torch.dtype) -> dict[str, tuple]:
    """Each anchor's state, match, best IoU and background probability; each box's taken mark."""
    wide = compute_dtype(dtype)
    return {"state": ((images, anchors), torch.int32), "match": ((images, anchors), torch.int32),
            "overlap": ((images, anchors), wide), "score": ((images, anchors), wide),
            "taken": ((images, boxes), torch.int32)}


def variances_complaint(value) -> str | None:
    return None if len(value) == 4 and all(math.isfinite(v) and v != 0 for v in value) else \
        "must be four nonzero numbers (the offsets are divided by them)"


def finite_complaint(value) -> str | None:
    return None if math.isfinite(value) else "must be a finite number"


def minimum_complaint(value) -> str | None:
    return None if value >= 0 else "must be 0 or more"


def plan_multibox_target(anchor: torch.Tensor, label: torch.Tensor, cls_pred: torch.Tensor, loc_target: torch.Tensor,
                         loc_mask: torch.Tensor, cls_target: torch.Tensor, scratch: dict[str, torch.Tensor], *,
                         overlap_threshold: float = 0.5, ignore_label: float = -1.0,
                         negative_mining_ratio: float = -1.0, negative_mining_thresh: float = 0.5,
                         minimum_negative_samples: int = 0, variances=(0.1, 0.1, 0.2, 0.2)) -> list[Launch]:
    """``loc_target`` (B, 4 N), ``loc_mask`` (B, 4 N), ``cls_target`` (B, N) = SSD's training
    targets of ``anchor`` (1, N, 4), ``label`` (B, M, W >= 5) and ``cls_pred`` (B, C, N);
    ``scratch`` as ``scratch_shapes`` says."""
    fn = "multibox_target"
    for name, value, complaint in (("overlap_threshold", overlap_threshold, finite_complaint(overlap_threshold)),
                                   ("ignore_label", ignore_label, finite_complaint(ignore_label)),
                                   ("negative_mining_ratio", negative_mining_ratio,
                                    finite_complaint(negative_mining_ratio)),
                                   ("negative_mining_thresh", negative_mining_thresh,
                                    finite_complaint(negative_mining_thresh)),
                                   ("minimum_negative_samples", minimum_negative_samples,
                                    minimum_complaint(minimum_negative_samples)),
                                   ("variances", tuple(variances), variances_complaint(variances))):
        if complaint:
            raise KernelArgumentError(f"{fn}: {name}={value} {complaint}")
    mining = negative_mining_ratio > 0
    if mining and not negative_mining_thresh > 0:
        raise KernelArgumentError(f"{fn}: negative_mining_thresh={negative_mining_thresh} must be above 0 when "
                                  f"negative_mining_ratio={negative_mining_ratio} mines negatives (MXNet's check)")
    check_tensor(fn, "label", label, FLOAT_DTYPES)
    if label.dim() != 3 or label.shape[2] < 5 or label.shape[1] == 0:
        raise KernelArgumentError(f"{fn}: label of shape {tuple(label.shape)} must be (batch, boxes >= 1, width >= 5)")
    if cls_pred.dim() != 3:
        raise KernelArgumentError(f"{fn}: cls_pred of shape {tuple(cls_pred.shape)} must be (batch, classes, anchors)")
    images, boxes, width = label.shape
    classes, anchors = cls_pred.shape[1:]
    dtype = label.dtype
    shapes = {"anchor": (1, anchors, 4), "cls_pred": (images, classes, anchors), "loc_target": (images, anchors * 4),
              "loc_mask": (images, anchors * 4), "cls_target": (images, anchors)}
    tensors = {"anchor": anchor, "cls_pred": cls_pred, "loc_target": loc_target, "loc_mask": loc_mask,
               "cls_target": cls_target}
    for name, t in tensors.items():
        if tuple(t.shape) != shapes[name] or t.dtype != dtype or not t.is_contiguous() or t.device != label.device:
            raise KernelArgumentError(f"{fn}: {name} must be contiguous {shapes[name]} {dtype} on {label.device}, got "
                                      f"{tuple(t.shape)} {t.dtype} on {t.device} strides {t.stride()}")
    if not label.is_contiguous():
        raise KernelArgumentError(f"{fn}: label must be contiguous, got strides {label.stride()}")
    for name in ("loc_target", "loc_mask", "cls_target"):
        check_writable(fn, name, tensors[name])
    for name, (shape, scratch_dtype) in scratch_shapes(images, anchors, boxes, dtype).items():
        t = scratch[name]
        if tuple(t.shape) != shape or t.dtype != scratch_dtype or not t.is_contiguous():
            raise KernelArgumentError(f"{fn}: scratch {name} must be contiguous {shape} {scratch_dtype}, got "
                                      f"{tuple(t.shape)} {t.dtype}")
    if classes - 1 > EXACT_INTEGERS[dtype]:  # the largest class target, written in the data's dtype
        raise KernelArgumentError(f"{fn}: {dtype} holds class targets exactly only to {EXACT_INTEGERS[dtype]}; "
                                  f"cls_pred of shape {tuple(cls_pred.shape)} needs {classes - 1}: use float32")
    if images * anchors == 0:
        return []
    # float32 parameters, as MXNet's (compared and divided in the compute dtype)
    as_float = lambda v: torch.tensor(v, dtype=torch.float32).item()  # noqa: E731
    wide = dtype == torch.float64
    return [Launch(_target_kernel, (images,),
                   [anchor, label, cls_pred, loc_target, loc_mask, cls_target, scratch["state"], scratch["match"],
                    scratch["overlap"], scratch["score"], scratch["taken"], anchors, boxes, width, classes,
                    min(anchors, boxes), anchors.bit_length(), as_float(BEST_PAIR_FLOOR), as_float(overlap_threshold),
                    as_float(ignore_label), as_float(negative_mining_ratio), as_float(negative_mining_thresh),
                    minimum_negative_samples, *map(as_float, variances)],
                   dict(BY_THRESHOLD=overlap_threshold > 0, MINING=mining, WIDE=wide, KEY_STEPS=63 if wide else 31,
                        BLOCK_R=BLOCK_R, BLOCK_C=BLOCK_C, BLOCK=BLOCK_ANCHORS))]


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    # SSD300 on VOC: 8 images, 8732 anchors, 21 classes, 50 boxes an image padded; 2 images of 7 anchors, 3 boxes
    images, anchors, classes, boxes = (8, 8732, 21, 50) if large else (2, 7, 3, 3)
    label = torch.empty(images, boxes, 6, dtype=dtype)
    outputs = [torch.empty(images, anchors * 4, dtype=dtype), torch.empty(images, anchors * 4, dtype=dtype),
               torch.empty(images, anchors, dtype=dtype)]
    scratch = {name: torch.empty(shape, dtype=t) for name, (shape, t) in
               scratch_shapes(images, anchors, boxes, dtype).items()}
    make = lambda **p: plan_multibox_target(torch.empty(1, anchors, 4, dtype=dtype), label,  # noqa: E731
                                            torch.empty(images, classes, anchors, dtype=dtype), *outputs, scratch,
                                            **p)[0]
    return [("multibox target", make()), ("multibox target mining", make(negative_mining_ratio=3.0))]
