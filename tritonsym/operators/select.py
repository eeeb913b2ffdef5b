"""where and clip (MXNet's): ``where(condition, x, y)`` picks x where the condition is not 0
(a condition of shape (len(x),) picks whole rows), and ``clip(data, a_min, a_max)`` limits
data to [a_min, a_max] (gradient 0 where a bound held data, data < a_min or data > a_max;
a NaN stays and takes it). Kernels: ``ops/select.py``."""

from __future__ import annotations

from ..ops import select as kernels
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, register, same_shape_everywhere, unify


def _where_shape(p, in_shapes, out_shapes):
    cond, x, y = in_shapes
    known = same_shape_everywhere(["x", "y"])(p, [x, y], out_shapes)
    (x, y), (out,) = known
    if cond is not None and x is not None and tuple(cond) != tuple(x) and not (len(cond) == 1 and cond[0] == x[0]):
        raise ShapeMismatch(f"condition has shape {tuple(cond)}; it must be x's {tuple(x)} or ({x[0]},)")
    return [cond, x, y], [out]


def _where_type(p, in_types, out_types):
    value = unify("x dtype", in_types[1], in_types[2])
    value = unify("output dtype", value, out_types[0])
    return [in_types[0] if in_types[0] is not None else value, value, value], [value]


register(OpDef(
    name="where",
    doc="x where condition is not 0, else y; the condition takes no gradient.",
    params=[],
    input_names=("condition", "x", "y"),
    infer_shape=_where_shape,
    infer_type=_where_type,
    forward=lambda a: kernels.plan_where(a.inputs[0], a.inputs[1], a.inputs[2], a.outputs[0]),
    backward=lambda a: kernels.plan_where_backward(a.inputs[0], a.out_grads[0], a.in_grads[1], a.in_grads[2],
                                                   a.accumulate[1], a.accumulate[2]),
    backward_needs=lambda p, epilogue: ((0,), ()),
    no_grad_inputs=lambda p: {"condition"},
    cheap=True,
))


def _clip_forward(a: ForwardArgs):
    return kernels.plan_clip(a.inputs[0], a.outputs[0], a.params["a_min"], a.params["a_max"])


def _clip_backward(a: BackwardArgs):
    if a.in_grads[0] is None:
        return []
    return kernels.plan_clip_backward(a.inputs[0], a.out_grads[0], a.in_grads[0], a.params["a_min"],
                                      a.params["a_max"], a.accumulate[0])


register(OpDef(
    name="clip",
    doc="data limited to [a_min, a_max]; NaN stays NaN; gradient where a_min <= data <= a_max.",
    params=[Param("a_min", float, doc="the lower bound"), Param("a_max", float, doc="the upper bound")],
    input_names=("data",),
    infer_shape=same_shape_everywhere(["data"]),
    forward=_clip_forward,
    backward=_clip_backward,
    backward_needs=lambda p, epilogue: ((0,), ()),
    cheap=True,
))
