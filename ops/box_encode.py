"""box_encode (MXNet's ``contrib.box_encode``): a detector's regression targets, each
anchor's offsets to the ground-truth box it was matched with, as MXNet computes them. For
anchor n of image b (``anchors`` (B, N, 4), corner encoded) whose sample
``samples[b, n]`` is above 0.5 (a positive), matched with ``refs[b, matches[b, n]]``
(``refs`` (B, M, 4), corner encoded), both as centers and sides (x, y, w, h):

    t0 = ((x_ref - x) / w - means[0]) / stds[0],  t2 = (log(w_ref / w) - means[2]) / stds[2]

(and t1, t3 with y and h); ``targets`` (B, N, 4) holds them and ``masks`` (B, N, 4) 1 for a
positive, both 0 for the rest (negatives and ignored anchors: -1 and 0, whose matches are
not read). A positive whose match is not a whole number in [0, M) gives NaN targets (MXNet
reads past refs, or truncates 1.5 to 1); a NaN sample NaN targets and masks (MXNet's
comparison makes it a negative). One program per block of anchors, float32 arithmetic
(float64 for float64), rounded once. No gradient: the targets are labels, as MXNet's.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._boxes import center_of_corners, load_box
from ._common import (
    ELEMENTWISE_BLOCK,
    FLOAT_DTYPES,
    INDEX_DTYPES,
    KernelArgumentError,
    Launch,
    check_tensor,
    check_writable,
    element_block,
    load_wide,
    store,
    widen,
)

TESTS = ("tests/test_operators.py", "tests/test_box_encode.py")


@triton.jit
def _target(ref_part, anchor_part, anchor_side, MEANS, STDS, k):
    """((ref - anchor) / side - means[k]) / stds[k], MXNet's center offset ``k``."""
    mean = widen(tl.load(MEANS + k), MEANS)
    std = widen(tl.load(STDS + k), STDS)
    return ((ref_part - anchor_part) / anchor_side - mean) / std


@triton.jit
def _log_target(ref_side, anchor_side, MEANS, STDS, k):
    """(log(ref / anchor) - means[k]) / stds[k], MXNet's side offset ``k``."""
    mean = widen(tl.load(MEANS + k), MEANS)
    std = widen(tl.load(STDS + k), STDS)
    return (tl.log(ref_side / anchor_side) - mean) / std


@triton.jit
def _encode_kernel(SAMPLES, MATCHES, ANCHORS, REFS, MEANS, STDS, TARGETS, MASKS, n_boxes, N, M,
                   BLOCK: tl.constexpr):
    box, mask = element_block(n_boxes, BLOCK)
    sample = load_wide(SAMPLES, box, mask, 0.0)
    positive = mask & (sample > 0.5)
    match = tl.load(MATCHES + box, mask=positive, other=0).to(tl.float64)
    found = positive & (match == tl.floor(match)) & (match >= 0) & (match < M)
    ref = (box // N) * M + tl.where(found, match, 0.0).to(tl.int64)
    r0, r1, r2, r3 = load_box(REFS, ref, found, 4, 0)
    rx, ry, rw, rh = center_of_corners(r0, r1, r2, r3)
    a0, a1, a2, a3 = load_box(ANCHORS, box, positive, 4, 0)
    ax, ay, aw, ah = center_of_corners(a0, a1, a2, a3)
    # a box that is not a positive: 0 (its match unread), NaN for a NaN sample
    other = tl.where(sample != sample, float("nan"), 0.0)
    unknown = float("nan")
    t0 = tl.where(positive, tl.where(found, _target(rx, ax, aw, MEANS, STDS, 0), unknown), other)
    t1 = tl.where(positive, tl.where(found, _target(ry, ay, ah, MEANS, STDS, 1), unknown), other)
    t2 = tl.where(positive, tl.where(found, _log_target(rw, aw, MEANS, STDS, 2), unknown), other)
    t3 = tl.where(positive, tl.where(found, _log_target(rh, ah, MEANS, STDS, 3), unknown), other)
    flag = tl.where(positive, 1.0, other)
    store(TARGETS, box * 4, t0, mask)
    store(TARGETS, box * 4 + 1, t1, mask)
    store(TARGETS, box * 4 + 2, t2, mask)
    store(TARGETS, box * 4 + 3, t3, mask)
    for k in tl.static_range(4):
        store(MASKS, box * 4 + k, flag, mask)


def plan_box_encode(samples: torch.Tensor, matches: torch.Tensor, anchors: torch.Tensor, refs: torch.Tensor,
                    means: torch.Tensor, stds: torch.Tensor, targets: torch.Tensor,
                    masks: torch.Tensor) -> list[Launch]:
    """``targets``, ``masks`` (B, N, 4) = the regression targets of ``anchors`` (B, N, 4)
    against the ``refs`` (B, M, 4) they are matched with, and where they count."""
    fn = "box_encode"
    check_tensor(fn, "anchors", anchors, FLOAT_DTYPES)
    check_tensor(fn, "samples", samples, FLOAT_DTYPES)
    check_tensor(fn, "matches", matches, FLOAT_DTYPES + INDEX_DTYPES)
    for name, t in (("anchors", anchors), ("refs", refs)):
        if t.dim() != 3 or t.shape[-1] != 4:
            raise KernelArgumentError(f"{fn}: {name} of shape {tuple(t.shape)} must be (batch, {name}, 4)")
    images, boxes = anchors.shape[:2]
    expected = {"samples": (images, boxes), "matches": (images, boxes), "anchors": (images, boxes, 4),
                "refs": (images, refs.shape[1], 4), "means": (4,), "stds": (4,),
                "targets": (images, boxes, 4), "masks": (images, boxes, 4)}
    tensors = dict(samples=samples, matches=matches, anchors=anchors, refs=refs, means=means, stds=stds,
                   targets=targets, masks=masks)
    for name, t in tensors.items():
        same_dtype = name not in ("samples", "matches")
        if (tuple(t.shape) != expected[name] or not t.is_contiguous() or t.device != anchors.device
                or (same_dtype and t.dtype != anchors.dtype)):
            raise KernelArgumentError(f"{fn}: {name} must be contiguous {expected[name]}"
                                      f"{f' {anchors.dtype}' if same_dtype else ''} on {anchors.device}, got "
                                      f"{tuple(t.shape)} {t.dtype} on {t.device} strides {t.stride()}")
    for name in ("targets", "masks"):
        check_writable(fn, name, tensors[name])
    n_boxes = images * boxes
    if n_boxes == 0:
        return []
    return [Launch(_encode_kernel, (triton.cdiv(n_boxes, ELEMENTWISE_BLOCK),),
                   [samples, matches, anchors, refs, means, stds, targets, masks, n_boxes, boxes, refs.shape[1]],
                   dict(BLOCK=ELEMENTWISE_BLOCK))]


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    # SSD's 8732 anchors a batch of 32 images matched with up to 56 ground-truth boxes each; 2 images of 7
    images, boxes, refs = (32, 8732, 56) if large else (2, 7, 3)
    anchors = torch.empty(images, boxes, 4, dtype=dtype)
    samples = torch.empty(images, boxes, dtype=dtype)
    matches = torch.empty(images, boxes, dtype=torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype)
    four = torch.empty(4, dtype=dtype)
    return [("box encode", plan_box_encode(samples, matches, anchors, torch.empty(images, refs, 4, dtype=dtype),
                                           four, four, torch.empty_like(anchors), torch.empty_like(anchors))[0]),
            ("box encode int32 matches", plan_box_encode(
                samples, matches.to(torch.int32), anchors, torch.empty(images, refs, 4, dtype=dtype), four, four,
                torch.empty_like(anchors), torch.empty_like(anchors))[0])]
