"""_contrib_index_array (MXNet's ``contrib.index_array``): for data (d_1, ..., d_n), the int64
array (d_1, ..., d_n, m) of each position's coordinates along ``axes`` (all n by default;
negative axes count from the end, and an axis may repeat; ``axes=()``, an empty last axis in
MXNet, is refused: a size of 0 means unknown in tritonsym's shapes). The data's values are
never read, only its shape; it gets a gradient of zero (``ops/index_array.py``)."""

from __future__ import annotations

import torch

from ..ops import index_array as kernels
from .registry import ForwardArgs, OpDef, Param, ShapeMismatch, register, unify


def _axes(p, ndim: int) -> tuple[int, ...]:
    axes = tuple(range(ndim)) if p["axes"] is None else tuple(p["axes"])
    if not axes:  # MXNet gives an empty last axis; in tritonsym's shapes a size of 0 means unknown
        raise ShapeMismatch(f"axes={p['axes']} of data with {ndim} dimension(s) leaves no coordinate to give: name "
                            "at least one axis of data with one")
    if any(not -ndim <= a < ndim for a in axes):
        raise ShapeMismatch(f"axes={axes} names an axis outside data of {ndim} dimension(s)")
    return tuple(a % ndim for a in axes)


def _infer_shape(p, in_shapes, out_shapes):
    data = in_shapes[0]
    if data is None:
        return in_shapes, out_shapes
    return in_shapes, [unify("output", out_shapes[0], (*data, len(_axes(p, len(data)))))]


def _forward(a: ForwardArgs):
    shape = tuple(a.inputs[0].shape)
    return kernels.plan_index_array(shape, _axes(a.params, len(shape)), a.outputs[0])


register(OpDef(
    name="_contrib_index_array",
    doc="Each position's coordinates along axes (all by default), as an int64 array of the data's shape plus one "
        "axis.",
    params=[Param("axes", "ints", None, doc="the axes whose coordinates are given, in this order (None: all)")],
    input_names=("data",),
    infer_shape=_infer_shape,
    infer_type=lambda p, in_types, out_types: (in_types, [unify("output dtype", out_types[0], torch.int64)]),
    forward=_forward,
    backward=lambda a: [],
    backward_needs=lambda p, epilogue: ((), ()),
    no_grad_inputs=lambda p: {"data"},
    cheap=True,
))
