"""_contrib_quadratic (MXNet's; ``ts.sym.contrib.quadratic``): ``a x**2 + b x + c`` of every
element, its gradient ``(2 a x + b) * dy``; one elementwise pass each way
(``ops/quadratic.py``)."""

from __future__ import annotations

from ..ops import quadratic as kernels
from .registry import (
    BackwardArgs,
    ForwardArgs,
    OpDef,
    Param,
    elementwise_inplace,
    grad_over_out_grad,
    register,
    same_shape_everywhere,
)


def _forward(a: ForwardArgs):
    p = a.params
    return kernels.plan_quadratic(a.inputs[0], a.outputs[0], p["a"], p["b"], p["c"])


def _backward(a: BackwardArgs):
    if a.in_grads[0] is None:
        return []
    p = a.params
    return kernels.plan_quadratic_backward(a.out_grads[0], a.inputs[0], a.in_grads[0], p["a"], p["b"],
                                           a.accumulate[0])


register(OpDef(
    name="_contrib_quadratic",
    doc="Elementwise a x**2 + b x + c; gradient (2 a x + b) times the head's.",
    params=[Param("a", float, 0.0, doc="the coefficient of x**2"), Param("b", float, 0.0, doc="the coefficient of x"),
            Param("c", float, 0.0, doc="the constant")],
    input_names=("data",),
    infer_shape=same_shape_everywhere(["data"]),
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((0,), ()),
    inplace=elementwise_inplace,
    backward_inplace=grad_over_out_grad(1),
    cheap=True,
))
