"""cumsum (MXNet 1.9's ``mx.sym.cumsum``, the operator ``_np_cumsum``): the running sum of
``a`` along ``axis`` (None: the flattened data, shape (size,)), in ``dtype`` (left out: the
data's, int64 for integers, as numpy's; MXNet 1.9.1 keeps int32). Positions from a mask
(``cumsum(mask, axis=1) - 1``), a prefix sum inside a network. Floats are summed in float64
and rounded to the output's dtype at the store (through float32 for bfloat16); the gradient
is the running sum of the output gradient from the axis's far end (``ops/cumsum.py``).
Integer data takes no gradient."""

from __future__ import annotations

import math

import torch

from ..ops import cumsum as kernels
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, register, unify

DTYPES = {"float64": torch.float64, "float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
          "int32": torch.int32, "int64": torch.int64}


def _infer_shape(p, in_shapes, out_shapes):
    data = in_shapes[0]
    if data is None:
        return in_shapes, out_shapes
    if p["axis"] is not None and not -len(data) <= p["axis"] < len(data):
        raise ShapeMismatch(f"axis={p['axis']} is out of range for data of shape {tuple(data)}")
    out = (math.prod(data),) if p["axis"] is None else tuple(data)
    return in_shapes, [unify("output", out_shapes[0], out)]


def _infer_type(p, in_types, out_types):
    data = in_types[0]
    if p["dtype"] is not None:
        chosen = DTYPES[p["dtype"]]
    elif data is not None:
        chosen = data if data.is_floating_point else torch.int64
    else:
        return in_types, out_types
    if data is not None and data.is_floating_point and not chosen.is_floating_point:
        raise ShapeMismatch(f"dtype={p['dtype']} would drop the fractions of {str(data).replace('torch.', '')} "
                            f"data; give a float dtype")
    return in_types, [unify("output dtype", out_types[0], chosen)]


def _forward(a: ForwardArgs):
    return kernels.plan_cumsum(a.inputs[0], a.outputs[0], a.params["axis"])


def _backward(a: BackwardArgs):
    if a.in_grads[0] is None:
        return []
    return kernels.plan_cumsum(a.out_grads[0], a.in_grads[0], a.params["axis"], reverse=True,
                               accumulate=a.accumulate[0])


register(OpDef(
    name="_np_cumsum",
    doc="The running sum along axis (None: over the flattened data), in dtype (the data's; int64 for integers).",
    params=[Param("axis", "optional_int", None, doc="the axis summed along (None: the flattened data)"),
            Param("dtype", str, None, choices=tuple(DTYPES), doc="the output's dtype (left out: the data's, int64 "
                                                                  "for integer data)")],
    input_names=("a",),
    infer_shape=_infer_shape,
    infer_type=_infer_type,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((), ()),
    aliases=("cumsum",),
))
