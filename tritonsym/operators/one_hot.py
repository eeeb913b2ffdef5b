"""one_hot (MXNet's): each index as a row of ``depth`` values, ``on_value`` at the index and
``off_value`` elsewhere; the output has the indices' shape plus one axis, of ``dtype``. A
whole number outside ``[0, depth)`` gives a row of ``off_value`` (MXNet's rule); one that is
not a whole number gives a row of NaN (``ops/one_hot.py``). The indices take no gradient."""

from __future__ import annotations

import torch

from ..ops import one_hot as kernels
from .embedding import DTYPES
from .registry import ForwardArgs, OpDef, Param, positive, register, unify


def _infer_shape(p, in_shapes, out_shapes):
    indices, out = in_shapes[0], out_shapes[0]
    if indices is not None:
        out = unify("output", out, (*indices, p["depth"]))
    elif out is not None:
        indices = tuple(out[:-1])
    return [indices], [out]


def _infer_type(p, in_types, out_types):
    # the dtype parameter unless the graph says otherwise (an output type given), as Embedding's; inference
    # that reaches this node first fixes it, so one_hot(i) * x with bfloat16 x needs dtype="bfloat16"
    return [in_types[0] or torch.float32], [out_types[0] or DTYPES[p["dtype"]]]


def _forward(a: ForwardArgs):
    return kernels.plan_one_hot(a.inputs[0], a.outputs[0], a.params["depth"], a.params["on_value"],
                                a.params["off_value"])


register(OpDef(
    name="one_hot",
    doc="Each index as a row of depth values: on_value at the index, off_value elsewhere.",
    params=[Param("depth", int, check=positive, doc="the number of values per row (of classes)"),
            Param("on_value", float, 1.0, doc="the value at the index"),
            Param("off_value", float, 0.0, doc="the value elsewhere"),
            Param("dtype", str, "float32", choices=tuple(DTYPES), doc="the output's dtype when nothing else sets it")],
    input_names=("indices",),
    infer_shape=_infer_shape,
    infer_type=_infer_type,
    forward=_forward,
    backward=lambda a: [],
    backward_needs=lambda p, epilogue: ((), ()),
    no_grad_inputs=lambda p: {"indices"},
    class_inputs=lambda p, shapes: {0: p["depth"]},
    cheap=True,
))
