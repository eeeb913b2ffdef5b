"""_contrib_box_decode (MXNet's ``contrib.box_decode``): the boxes (x1, y1, x2, y2) a
detector's regression offsets ``data`` (B, N, 4) decode to against ``anchors`` (1, N, 4),
``center`` (x, y, w, h) or ``corner`` encoded: center x + t0 std0 w, width
w exp(min(t2 std2, clip)) (clip when positive), and likewise y and h. Both inputs take the
gradient (MXNet gives 0: losses on decoded boxes need it), the anchors' summed over the
batch in order; a clipped side takes none through its offset (``ops/box_decode.py``)."""

from __future__ import annotations

import math

from ..ops import box_decode as kernels
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, register, unify


def _infer_shape(p, in_shapes, out_shapes):
    data, anchors = in_shapes
    data = unify("data", data, out_shapes[0]) if out_shapes[0] is not None else data
    if data is not None and (len(data) != 3 or data[-1] not in (0, 4)):
        raise ShapeMismatch(f"data of shape {tuple(data)} must be (batch, boxes, 4)")
    if anchors is not None and (len(anchors) < 3 or anchors[-1] not in (0, 4)):
        raise ShapeMismatch(f"anchors of shape {tuple(anchors)} must be (1, boxes, 4)")
    if data is not None and anchors is not None and 0 not in (data[1], *anchors[:-1]) \
            and math.prod(anchors[:-1]) != data[1]:
        raise ShapeMismatch(f"anchors of shape {tuple(anchors)} must hold one anchor for each of data's {data[1]} "
                            f"boxes: (1, {data[1]}, 4)")
    if data is None:
        return in_shapes, out_shapes
    if anchors is None:
        anchors = (1, data[1], 4)
    return [data, anchors], [tuple(data)]


def _params(p) -> dict:
    return dict(stds=(p["std0"], p["std1"], p["std2"], p["std3"]), clip=p["clip"], fmt=p["format"])


def _forward(a: ForwardArgs):
    return kernels.plan_box_decode(a.inputs[0], a.inputs[1], a.outputs[0], **_params(a.params))


def _backward(a: BackwardArgs):
    return kernels.plan_box_decode_backward(a.out_grads[0], a.inputs[0], a.inputs[1], a.in_grads[0], a.in_grads[1],
                                            accumulate_data=a.accumulate[0], accumulate_anchors=a.accumulate[1],
                                            **_params(a.params))


register(OpDef(
    name="_contrib_box_decode",
    doc="The boxes (x1, y1, x2, y2) a detector's offsets decode to against its anchors (center or corner encoded).",
    params=[*(Param(f"std{i}", float, 1.0, doc=f"the scale of offset {i}") for i in range(4)),
            Param("clip", float, -1.0, doc="the largest scaled width and height offset, when positive"),
            Param("format", str, "center", choices=kernels.FORMATS,
                  doc="the anchors': center (x, y, width, height) or corner (x1, y1, x2, y2)")],
    input_names=("data", "anchors"),
    infer_shape=_infer_shape,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((0, 1), ()),
))
