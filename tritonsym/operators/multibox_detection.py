"""_contrib_MultiBoxDetection (MXNet's ``contrib.MultiBoxDetection``): SSD's detections
(B, N, 6) rows [id, score, x1, y1, x2, y2] from class probabilities ``cls_prob`` (B, C, N)
(class 0 the background), box offsets ``loc_pred`` (B, 4 N) and corner anchors ``anchor``
(1, N, 4): each anchor's most probable class at or above ``threshold``, its box decoded with
``variances`` (clamped into [0, 1] when ``clip``); by descending score, the first
``nms_topk``, greedy suppression at an IoU of ``nms_threshold`` or more (by class unless
``force_suppress``), a suppressed one's id -1; then rows of -1. An image holding a NaN (but
in the background's probabilities, never read) is all NaN. No input takes a gradient
(MXNet's is 0) (``ops/multibox_detection.py``)."""

from __future__ import annotations

import torch

from ..ops import multibox_detection as kernels
from .registry import ForwardArgs, OpDef, Param, ShapeMismatch, register, unify

INPUTS = ("cls_prob", "loc_pred", "anchor")


def _infer_shape(p, in_shapes, out_shapes):
    cls_prob, loc_pred, anchor = in_shapes
    for name, shape, rank, form in (("cls_prob", cls_prob, 3, "(batch, classes, anchors)"),
                                    ("loc_pred", loc_pred, 2, "(batch, 4 anchors)"),
                                    ("anchor", anchor, 3, "(1, anchors, 4)")):
        if shape is not None and len(shape) != rank:
            raise ShapeMismatch(f"{name} of shape {tuple(shape)} must be {form}")
    if cls_prob is None:
        return in_shapes, out_shapes
    images, _, anchors = cls_prob
    loc_pred = unify("loc_pred", loc_pred, (images, 4 * anchors))
    anchor = unify("anchor", anchor, (1, anchors, 4))
    if anchors == 0:
        raise ShapeMismatch(f"cls_prob of shape {tuple(cls_prob)} must hold one anchor or more")
    return [cls_prob, loc_pred, anchor], [unify("output", out_shapes[0], (images, anchors, kernels.WIDTH))]


def _scratch(p, shapes, dtypes) -> dict:
    if shapes[0] is None:
        return {}
    images, _, anchors = shapes[0]
    return {name: (shape, dtypes[0] if name == "rows" else torch.int32)
            for name, shape in kernels.scratch_shapes(images, anchors).items()}


def _forward(a: ForwardArgs):
    p = a.params
    return kernels.plan_multibox_detection(*a.inputs, a.outputs[0], a.temps, clip=p["clip"], threshold=p["threshold"],
                                           nms_threshold=p["nms_threshold"], force_suppress=p["force_suppress"],
                                           variances=p["variances"], nms_topk=p["nms_topk"])


def _background_is_zero(value) -> str | None:
    # MXNet 1.9.1 reads background_id and ignores it: class 0 is always the background
    return None if value == 0 else "must be 0: class 0 is the background (MXNet 1.9.1 ignores any other value)"


register(OpDef(
    name="_contrib_MultiBoxDetection",
    doc="SSD's detections [id, score, x1, y1, x2, y2] from class probabilities, box offsets and anchors, by "
        "descending score after non-maximum suppression.",
    params=[Param("clip", bool, True, doc="clamp the boxes into [0, 1]"),
            Param("threshold", float, 0.01, doc="the least probability of a detection"),
            Param("background_id", int, 0, check=_background_is_zero, doc="the background class: 0"),
            Param("nms_threshold", float, 0.5, check=kernels.nms_threshold_complaint,
                  doc="the IoU at or above which a detection suppresses a later one"),
            Param("force_suppress", bool, False, doc="suppress across classes"),
            Param("variances", "floats", (0.1, 0.1, 0.2, 0.2),
                  check=kernels.variances_complaint,
                  doc="the scales of the x, y, width and height offsets"),
            Param("nms_topk", int, -1, check=kernels.nms_topk_complaint,
                  doc="the most detections of an image taken into suppression")],
    input_names=INPUTS,
    infer_shape=_infer_shape,
    forward=_forward,
    backward=lambda a: [],
    backward_needs=lambda p, epilogue: ((), ()),
    no_grad_inputs=lambda p: set(INPUTS),
    forward_temps=_scratch,
))
