"""_contrib_MultiBoxPrior (MXNet's ``contrib.MultiBoxPrior``): SSD's prior (anchor) boxes
of the (N, C, H, W) data's H x W feature map, corner encoded, (1, H W A, 4) with
A = len(sizes) + len(ratios) - 1 boxes a cell, as MXNet computes them, in the data's dtype
(MXNet's float32 only). The data's values are never read and it takes no gradient (its
derivative: the boxes depend on its shape alone) (``ops/multibox_prior.py``)."""

from __future__ import annotations

from ..ops import multibox_prior as kernels
from .registry import ForwardArgs, OpDef, Param, ShapeMismatch, register, unify


def _infer_shape(p, in_shapes, out_shapes):
    data = in_shapes[0]
    if data is None:
        return in_shapes, out_shapes
    if len(data) < 4:
        raise ShapeMismatch(f"data of shape {tuple(data)} must be (batch, channels, height, width)")
    count = kernels.boxes_per_cell(p["sizes"], p["ratios"])
    return [data], [unify("output", out_shapes[0], (1, data[2] * data[3] * count, 4))]


def _like_type(p, in_types, out_types):
    data = unify("data dtype", in_types[0], out_types[0])
    return [data], [data]


def _forward(a: ForwardArgs):
    p, shape = a.params, a.inputs[0].shape
    return kernels.plan_multibox_prior(a.outputs[0], shape[2], shape[3], p["sizes"], p["ratios"], p["clip"],
                                       p["steps"], p["offsets"])


register(OpDef(
    name="_contrib_MultiBoxPrior",
    doc="SSD's prior boxes of the data's height x width feature map: each size at the first ratio, the first size "
        "at every other ratio, centered on each cell.",
    params=[Param("sizes", "floats", (1.0,), check=kernels.positive_numbers_complaint,
                  doc="the boxes' sizes, fractions of the image's height"),
            Param("ratios", "floats", (1.0,), check=kernels.positive_numbers_complaint,
                  doc="the boxes' aspect ratios (width over height)"),
            Param("clip", bool, False, doc="clamp every coordinate into [0, 1]"),
            Param("steps", "floats", (-1.0, -1.0), check=kernels.steps_complaint,
                  doc="(step_y, step_x) between cell centers; not positive: 1 / height and 1 / width"),
            Param("offsets", "floats", (0.5, 0.5), check=kernels.offsets_complaint,
                  doc="(offset_y, offset_x) of a cell's center within it, in cells")],
    input_names=("data",),
    infer_shape=_infer_shape,
    infer_type=_like_type,
    forward=_forward,
    backward=lambda a: [],
    backward_needs=lambda p, epilogue: ((), ()),
    no_grad_inputs=lambda p: {"data"},
    cheap=True,
))
