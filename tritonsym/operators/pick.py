"""pick (MXNet's): one element per position along ``axis``, chosen by ``index``
(``out[i, j] = data[i, index[i, j], j]``): what a loss written by hand takes from its
probabilities (``-log(pick(softmax(x), label))``). ``index`` has the data's shape without
the axis (or with it as 1); the output too, or with the axis as 1 under ``keepdims``.
``mode="clip"`` (the default) moves an index outside the axis to its nearest end, ``"wrap"``
takes it modulo the length; an index that is not a whole number gives NaN, not some element
(``ops/pick.py``). The index takes no gradient; the data's is the output gradient at the
picked elements, zero elsewhere."""

from __future__ import annotations

import torch

from ..ops import pick as kernels
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, register, unify


def _axis(p, ndim: int) -> int:
    if not -ndim <= p["axis"] < ndim:
        raise ShapeMismatch(f"axis={p['axis']} is out of range for data of shape with {ndim} dimension(s)")
    return p["axis"] % ndim


def _infer_shape(p, in_shapes, out_shapes):
    data, index = in_shapes
    if data is None:
        return in_shapes, out_shapes
    axis = _axis(p, len(data))
    kept = tuple(data[:axis]) + tuple(data[axis + 1:])
    with_one = tuple(data[:axis]) + (1,) + tuple(data[axis + 1:])
    if index is not None and tuple(index) not in (kept, with_one):
        raise ShapeMismatch(f"index of shape {tuple(index)} must have the shape of data {tuple(data)} without axis "
                            f"{p['axis']}: {kept} (or {with_one})")
    out = with_one if p["keepdims"] else kept
    return [data, index if index is not None else kept], [unify("output", out_shapes[0], out)]


def index_input_types(p, in_types, out_types):
    """Types of (data, index) operators: the output the data's dtype; an index left open
    float32 for half-precision data (wide enough for its positions), else the data's."""
    data = in_types[0] or out_types[0]
    if data is None:
        return in_types, out_types
    index = in_types[1]
    if index is None:  # positions past 256 (bfloat16) or 2048 (float16) need a wider dtype
        index = torch.float32 if data in (torch.float16, torch.bfloat16) else data
    return [data, index], [unify("output dtype", out_types[0], data)]


def _forward(a: ForwardArgs):
    return kernels.plan_pick(a.inputs[0], a.inputs[1], a.outputs[0], a.params["axis"], a.params["mode"])


def _backward(a: BackwardArgs):
    dx = a.in_grads[0]
    if dx is None:
        return []
    return kernels.plan_pick_backward(a.out_grads[0], a.inputs[1], dx, a.params["axis"], a.params["mode"],
                                      accumulate=a.accumulate[0])


register(OpDef(
    name="pick",
    aliases=("choose_element_0index",),  # MXNet 0.x's name, kept by MXNet 1.x
    doc="data's element at index along axis, for every other position.",
    params=[Param("axis", int, -1, doc="the axis to pick along"),
            Param("keepdims", bool, False, doc="keep the axis as size 1"),
            Param("mode", str, "clip", choices=kernels.MODES,
                  doc="an index outside the axis: clip to its ends or wrap around")],
    input_names=("data", "index"),
    infer_shape=_infer_shape,
    infer_type=index_input_types,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((1,), ()),
    no_grad_inputs=lambda p: {"index"},
    class_inputs=lambda p, shapes: {} if shapes[0] is None else {1: shapes[0][_axis(p, len(shapes[0]))]},
    cheap=True,
))
