"""flip (MXNet's; alias ``reverse``): the elements reversed along ``axis`` (one or several).
One strided pass each way; the gradient is the output gradient flipped back (``ops/flip.py``)."""

from __future__ import annotations

from ..ops import flip as kernels
from .registry import BackwardArgs, OpDef, Param, ShapeMismatch, register, same_shape_everywhere


def _infer_shape(p, in_shapes, out_shapes):
    new_in, new_out = same_shape_everywhere(["data"])(p, in_shapes, out_shapes)
    data = new_in[0]
    if data is not None:
        bad = [a for a in p["axis"] if not -len(data) <= a < len(data)]
        if bad:
            raise ShapeMismatch(f"axis={tuple(p['axis'])} has {bad[0]}, out of range for data of shape {tuple(data)}")
    return new_in, new_out


def _backward(a: BackwardArgs):
    if a.in_grads[0] is None:
        return []
    return kernels.plan_flip(a.out_grads[0], a.in_grads[0], a.params["axis"], accumulate=a.accumulate[0])


register(OpDef(
    name="flip",
    doc="Reverses the order of the elements along axis (one or several axes).",
    params=[Param("axis", "ints", doc="the axis or axes to reverse")],
    input_names=("data",),
    infer_shape=_infer_shape,
    forward=lambda a: kernels.plan_flip(a.inputs[0], a.outputs[0], a.params["axis"]),
    backward=_backward,
    backward_needs=lambda p, epilogue: ((), ()),
    aliases=("reverse",),
    cheap=True,
))
