"""Activation: relu, sigmoid, tanh, softrelu (softplus) and softsign, elementwise.

Backward needs only the output (each derivative is written in terms of it), so the
input can be freed after forward, and the activation can fuse into a preceding
FullyConnected's epilogue.
"""

from __future__ import annotations

from ..ops import activation as kernels
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, elementwise_inplace, register, same_shape_everywhere

ACT_TYPES = ("relu", "sigmoid", "tanh", "softrelu", "softsign")


def _forward(a: ForwardArgs):
    return kernels.plan_activation_forward(a.inputs[0], a.outputs[0], a.params["act_type"])


def _backward(a: BackwardArgs):
    return kernels.plan_activation_backward(a.out_grads[0], a.outputs[0], a.in_grads[0], a.params["act_type"],
                                            from_output=True, accumulate=a.accumulate[0])


register(OpDef(
    name="Activation",
    doc="Applies an activation function elementwise: relu max(x, 0); sigmoid 1/(1+exp(-x)); "
        "tanh; softrelu log(1+exp(x)); softsign x/(1+|x|).",
    params=[Param("act_type", str, choices=ACT_TYPES, doc="the activation function")],
    input_names=("data",),
    infer_shape=same_shape_everywhere(["data"]),
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((), (0,)),
    epilogue=lambda p: (p["act_type"], 0.0),
    inplace=elementwise_inplace,
    backward_inplace=lambda p, epilogue: [(0, ("out_grad", 0)), (0, ("output", 0))],
    cheap=True,
))
