"""shape_array and size_array (MXNet's): the data's shape as a 1-d int64 array, and its
number of elements as an int64 array of one element, as exported Gluon graphs use them to
reshape by a shape read from another array. Shapes are fixed at bind, so the values are
known there: each forward writes them with the ramp kernel of ``ops/arange.py`` (a ramp of
step 0, one launch per value), reading nothing, and the data gets a gradient of zero, as in
MXNet."""

from __future__ import annotations

import math

import torch

from ..ops import arange as kernels
from .registry import ForwardArgs, OpDef, register, unify


def _infer_type(p, in_types, out_types):
    return in_types, [unify("output dtype", out_types[0], torch.int64)]


def _register(name: str, doc: str, values) -> None:
    """``values(shape)``: what the output holds for data of that shape."""
    def infer_shape(p, in_shapes, out_shapes):
        data = in_shapes[0]
        if data is None:
            return in_shapes, out_shapes
        return in_shapes, [unify("output", out_shapes[0], (len(values(tuple(data))),))]

    def forward(a: ForwardArgs):
        out = a.outputs[0]
        return [launch for i, value in enumerate(values(tuple(a.inputs[0].shape)))
                for launch in kernels.plan_ramp(out[i:i + 1], float(value), 0.0)]

    register(OpDef(
        name=name,
        doc=doc,
        params=[],
        input_names=("data",),
        infer_shape=infer_shape,
        infer_type=_infer_type,
        forward=forward,
        backward=lambda a: [],
        backward_needs=lambda p, epilogue: ((), ()),
        no_grad_inputs=lambda p: {"data"},
        cheap=True,
    ))


_register("shape_array", "The data's shape as a 1-d int64 array.", lambda shape: shape)
_register("size_array", "The data's number of elements as an int64 array of one element.",
          lambda shape: (math.prod(shape),))
