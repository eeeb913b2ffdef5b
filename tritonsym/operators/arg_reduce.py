"""argmax and argmin (MXNet's): the index of the largest (smallest) element along ``axis``
(over the flattened data when it is None, giving shape (1,)), a float in the data's dtype;
the first where several tie, the first NaN where there is one (``ops/arg_reduce.py``).
``keepdims`` keeps the axis as 1; ``argmax_channel`` is argmax along axis 1. No gradient
flows to the data; an axis longer than the
dtype holds indices exactly (float16: 2048, bfloat16: 256) is refused at bind."""

from __future__ import annotations

from ..ops import arg_reduce as kernels
from .registry import ForwardArgs, OpDef, Param, ShapeMismatch, register, unify


def _infer_shape(p, in_shapes, out_shapes):
    data = in_shapes[0]
    if data is None:
        return in_shapes, out_shapes
    if p["axis"] is None:
        out = (1,) * len(data) if p["keepdims"] else (1,)
    else:
        if not -len(data) <= p["axis"] < len(data):
            raise ShapeMismatch(f"axis={p['axis']} is out of range for data of shape {tuple(data)}")
        axis = p["axis"] % len(data)
        out = tuple(1 if k == axis else n for k, n in enumerate(data) if p["keepdims"] or k != axis) or (1,)
    return in_shapes, [unify("output", out_shapes[0], out)]


def _register(kind: str) -> None:
    def forward(a: ForwardArgs):
        return kernels.plan_arg_reduce(a.inputs[0], a.outputs[0], kind, a.params["axis"])

    register(OpDef(
        name=kind,
        doc=f"The index of the {'largest' if kind == 'argmax' else 'smallest'} element along axis (first of ties, "
            f"first NaN); no gradient.",
        params=[Param("axis", "optional_int", None, doc="the axis searched (None: the flattened data)"),
                Param("keepdims", bool, False, doc="keep the axis as size 1")],
        input_names=("data",),
        infer_shape=_infer_shape,
        forward=forward,
        backward=lambda a: [],
        backward_needs=lambda p, epilogue: ((), ()),
        no_grad_inputs=lambda p: {"data"},
    ))


_register("argmax")
_register("argmin")

# MXNet's argmax_channel: argmax along axis 1 (each sample's class of a (batch, classes) score).
_CHANNEL = {"axis": 1, "keepdims": False}
register(OpDef(
    name="argmax_channel",
    doc="The index of the largest element along axis 1 (first of ties, first NaN); no gradient.",
    params=[],
    input_names=("data",),
    infer_shape=lambda p, in_shapes, out_shapes: _infer_shape(_CHANNEL, in_shapes, out_shapes),
    forward=lambda a: kernels.plan_arg_reduce(a.inputs[0], a.outputs[0], "argmax", 1),
    backward=lambda a: [],
    backward_needs=lambda p, epilogue: ((), ()),
    no_grad_inputs=lambda p: {"data"},
))
