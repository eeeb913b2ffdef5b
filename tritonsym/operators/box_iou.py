"""_contrib_box_iou (MXNet's ``contrib.box_iou``): the intersection over union of every box
of ``lhs`` (..., 4) with every box of ``rhs`` (..., 4), ``lhs.shape[:-1] + rhs.shape[:-1]``,
boxes ``corner`` (x1, y1, x2, y2) or ``center`` (x, y, width, height) encoded; 0 where two
boxes do not overlap, NaN where either holds a NaN. Both inputs take the gradient of the
IoU (MXNet gives 0: IoU losses need it), each box's summed over the other side's in a
fixed order (``ops/box_iou.py``)."""

from __future__ import annotations

from ..ops import box_iou as kernels
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, register, unify


def _infer_shape(p, in_shapes, out_shapes):
    for name, s in zip(("lhs", "rhs"), in_shapes):
        if s is not None and (len(s) < 2 or s[-1] not in (0, 4)):
            raise ShapeMismatch(f"{name} of shape {tuple(s)} must hold boxes of 4 coordinates along its last axis "
                                f"(and have at least 2 axes)")
    lhs, rhs = in_shapes
    if lhs is None or rhs is None:
        return in_shapes, out_shapes
    return in_shapes, [unify("output", out_shapes[0], (*lhs[:-1], *rhs[:-1]))]


def _forward(a: ForwardArgs):
    return kernels.plan_box_iou(a.inputs[0], a.inputs[1], a.outputs[0], a.params["format"])


def _backward(a: BackwardArgs):
    return kernels.plan_box_iou_backward(a.out_grads[0], a.inputs[0], a.inputs[1], a.in_grads[0], a.in_grads[1],
                                         a.params["format"], accumulate_lhs=a.accumulate[0],
                                         accumulate_rhs=a.accumulate[1])


register(OpDef(
    name="_contrib_box_iou",
    doc="The intersection over union of every lhs box with every rhs box (corner or center encoded).",
    params=[Param("format", str, "corner", choices=kernels.FORMATS,
                  doc="corner: (x1, y1, x2, y2); center: (x, y, width, height)")],
    input_names=("lhs", "rhs"),
    infer_shape=_infer_shape,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((0, 1), ()),
))
