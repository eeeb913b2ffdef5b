"""_contrib_div_sqrt_dim (MXNet's; ``ts.sym.contrib.div_sqrt_dim``): the data divided by the
square root of its last axis's length, attention's ``q / sqrt(d)`` as GluonNLP's exported
transformers write it. One scalar-multiply pass each way on the elementwise kernels, the
factor 1 / sqrt(d) rounded once in float64."""

from __future__ import annotations

import math

from ..ops import elementwise as kernels
from .registry import BackwardArgs, ForwardArgs, OpDef, elementwise_inplace, register, same_shape_everywhere


def _factor(t) -> float:
    return 1.0 / math.sqrt(t.shape[-1])


def _forward(a: ForwardArgs):
    x = a.inputs[0]
    return kernels.plan_scalar_forward("mul", x, _factor(x), a.outputs[0])


def _backward(a: BackwardArgs):
    dx = a.in_grads[0]
    if dx is None:
        return []
    return kernels.plan_scalar_backward("mul", a.out_grads[0], None, None, dx, _factor(dx), a.accumulate[0])


register(OpDef(
    name="_contrib_div_sqrt_dim",
    doc="The data divided by the square root of the length of its last axis.",
    params=[],
    input_names=("data",),
    infer_shape=same_shape_everywhere(["data"]),
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((), ()),
    inplace=elementwise_inplace,
    backward_inplace=lambda p, epilogue: [(0, ("out_grad", 0))],
    cheap=True,
))
