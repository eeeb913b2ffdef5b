"""_contrib_box_nms (MXNet's ``contrib.box_nms``, also ``box_non_maximum_suppression``):
greedy non-maximum suppression of each image's boxes, rows of ``data`` (..., N, W) holding
a score, four coordinates and optionally a class id (SSD's (id, score, x1, y1, x2, y2)).
Candidates (score above ``valid_thresh``, id not ``background_id``) are taken by
descending score, ties by row, the ``topk`` first; each survivor suppresses the later
candidates it overlaps by an IoU above ``overlap_thresh`` (of its class unless
``force_suppress``). The output, data's shape: the survivors' rows first, in that order,
re-encoded to ``out_format``; the other rows -1. An image holding a NaN score, coordinate
or id is all NaN. The gradient: each survivor's row takes its output row's, through the
re-encoding (MXNet copies it unchanged); the suppression is recomputed in backward
(``ops/box_nms.py``)."""

from __future__ import annotations

import torch

from ..ops import box_nms as kernels
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, register, unify

_SCRATCH = ("order", "record", "position")


def _infer_shape(p, in_shapes, out_shapes):
    data = in_shapes[0]
    if data is None and out_shapes[0] is not None:
        data = out_shapes[0]
    if data is None:
        return in_shapes, out_shapes
    if 0 not in data[-1:]:  # the width known: MXNet's checks of the columns
        complaint = kernels.check_layout("_contrib_box_nms", data, p["coord_start"], p["score_index"],
                                         p["id_index"])
        if complaint:
            raise ShapeMismatch(complaint)
    elif len(data) < 2:
        raise ShapeMismatch(f"data of shape {tuple(data)} must have at least 2 axes (boxes, and each box's values)")
    return [data], [unify("output", out_shapes[0], data)]


def _scratch(p, shapes, dtypes) -> dict:
    if shapes[0] is None:
        return {}
    return {name: (kernels.scratch_shape(shapes[0]), torch.int32) for name in _SCRATCH}


def _params(p) -> dict:
    return {name: p[name] for name in ("overlap_thresh", "valid_thresh", "topk", "coord_start", "score_index",
                                       "id_index", "background_id", "force_suppress", "in_format", "out_format")}


def _forward(a: ForwardArgs):
    return kernels.plan_box_nms(a.inputs[0], a.outputs[0], *(a.temps[name] for name in _SCRATCH),
                                **_params(a.params))


def _backward(a: BackwardArgs):
    if a.in_grads[0] is None:
        return []
    return kernels.plan_box_nms_backward(a.out_grads[0], a.inputs[0], a.in_grads[0],
                                         *(a.temps[name] for name in _SCRATCH), accumulate=a.accumulate[0],
                                         **_params(a.params))


def _topk(value: int) -> str | None:
    return None if value == -1 or value >= 1 else "must be -1 (every box) or at least 1"


register(OpDef(
    name="_contrib_box_nms",
    doc="Greedy non-maximum suppression of each image's boxes: the survivors' rows first, by descending score, "
        "the other rows -1.",
    params=[Param("overlap_thresh", float, 0.5, doc="IoU above which a box suppresses a lower-scored one"),
            Param("valid_thresh", float, 0.0, doc="boxes scored at or below it are dropped"),
            Param("topk", int, -1, check=_topk, doc="NMS over the topk best of each image; -1: all"),
            Param("coord_start", int, 2, doc="the column of the first of the 4 coordinates"),
            Param("score_index", int, 1, doc="the column of the score"),
            Param("id_index", int, -1, doc="the column of the class id; -1: none"),
            Param("background_id", int, -1, doc="the class id dropped as background; -1: none"),
            Param("force_suppress", bool, False, doc="suppress across classes too"),
            Param("in_format", str, "corner", choices=kernels.FORMATS,
                  doc="corner: (x1, y1, x2, y2); center: (x, y, width, height)"),
            Param("out_format", str, "corner", choices=kernels.FORMATS, doc="the output's encoding")],
    input_names=("data",),
    infer_shape=_infer_shape,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((0,), ()),
    forward_temps=_scratch,
    backward_temps=_scratch,
    aliases=("_contrib_box_non_maximum_suppression",),
))
