"""_contrib_MultiBoxTarget (MXNet's ``contrib.MultiBoxTarget``): SSD's training targets from
corner anchors ``anchor`` (1, N, 4), ground truth ``label`` (B, M, W >= 5) rows [class, x1,
y1, x2, y2, ...] (a row of class -1 ends an image's boxes) and class predictions
``cls_pred`` (B, C, N): anchors matched with boxes (each box its best anchor, then every
anchor its best box above ``overlap_threshold``), negatives mined by the least background
probability (``negative_mining_ratio`` per positive, below ``negative_mining_thresh``) or
all the rest; outputs the box offsets ``loc_target`` (B, 4 N) with ``variances``, their
masks ``loc_mask`` (B, 4 N) and the classes ``cls_target`` (B, N): a positive's class + 1,
0 a negative, ``ignore_label`` the rest. NaN rules and MXNet's order:
``ops/multibox_target.py``. No input takes a gradient (the targets are labels; MXNet's is 0).
"""

from __future__ import annotations

from ..ops import multibox_target as kernels
from .registry import ForwardArgs, OpDef, Param, ShapeMismatch, register, unify

INPUTS = ("anchor", "label", "cls_pred")


def _infer_shape(p, in_shapes, out_shapes):
    anchor, label, cls_pred = in_shapes
    for name, shape, form in (("anchor", anchor, "(1, anchors, 4)"), ("label", label, "(batch, boxes, width >= 5)"),
                              ("cls_pred", cls_pred, "(batch, classes, anchors)")):
        if shape is not None and len(shape) != 3:
            raise ShapeMismatch(f"{name} of shape {tuple(shape)} must be {form}")
    if label is not None and (label[1] == 0 or label[2] < 5):
        raise ShapeMismatch(f"label of shape {tuple(label)} must be (batch, boxes >= 1, width >= 5): [class, x1, y1, "
                            f"x2, y2, ...] rows")
    anchors = anchor[1] if anchor is not None else cls_pred[2] if cls_pred is not None else None
    if anchors is None:
        return in_shapes, out_shapes
    anchor = unify("anchor", anchor, (1, anchors, 4))
    if anchors == 0:
        raise ShapeMismatch(f"anchor of shape {tuple(anchor)} must hold one anchor or more")
    images = label[0] if label is not None else cls_pred[0] if cls_pred is not None else None
    if images is None:
        return [anchor, label, cls_pred], out_shapes
    if cls_pred is not None:
        cls_pred = unify("cls_pred", cls_pred, (images, cls_pred[1], anchors))
    return [anchor, label, cls_pred], [unify("loc_target", out_shapes[0], (images, 4 * anchors)),
                                       unify("loc_mask", out_shapes[1], (images, 4 * anchors)),
                                       unify("cls_target", out_shapes[2], (images, anchors))]


def _scratch(p, shapes, dtypes) -> dict:
    if shapes[0] is None or shapes[1] is None:
        return {}
    return kernels.scratch_shapes(shapes[1][0], shapes[0][1], shapes[1][1], dtypes[0])


def _forward(a: ForwardArgs):
    p = a.params
    return kernels.plan_multibox_target(*a.inputs, *a.outputs, a.temps, overlap_threshold=p["overlap_threshold"],
                                        ignore_label=p["ignore_label"],
                                        negative_mining_ratio=p["negative_mining_ratio"],
                                        negative_mining_thresh=p["negative_mining_thresh"],
                                        minimum_negative_samples=p["minimum_negative_samples"],
                                        variances=p["variances"])


register(OpDef(
    name="_contrib_MultiBoxTarget",
    doc="SSD's training targets: anchors matched with ground-truth boxes, hard negatives mined by the class "
        "predictions; the box offsets, their masks and the classes.",
    params=[Param("overlap_threshold", float, 0.5, check=kernels.finite_complaint,
                  doc="an anchor whose best IoU is above it is a positive (0 or less: only each box's best anchor)"),
            Param("ignore_label", float, -1.0, check=kernels.finite_complaint,
                  doc="the class target of an anchor neither positive nor negative"),
            Param("negative_mining_ratio", float, -1.0, check=kernels.finite_complaint,
                  doc="negatives per positive, the hardest (0 or less: every anchor left is a negative)"),
            Param("negative_mining_thresh", float, 0.5, check=kernels.finite_complaint,
                  doc="a mined negative's best IoU is below it"),
            Param("minimum_negative_samples", int, 0, check=kernels.minimum_complaint,
                  doc="the fewest negatives an image mines (MXNet's GPU code; its CPU code ignores it)"),
            Param("variances", "floats", (0.1, 0.1, 0.2, 0.2), check=kernels.variances_complaint,
                  doc="the x, y, width and height offsets are divided by them")],
    input_names=INPUTS,
    infer_shape=_infer_shape,
    forward=_forward,
    backward=lambda a: [],
    backward_needs=lambda p, epilogue: ((), ()),
    num_outputs=3,
    output_names=lambda p: ["loc_target", "loc_mask", "cls_target"],
    no_grad_inputs=lambda p: set(INPUTS),
    forward_temps=_scratch,
))
