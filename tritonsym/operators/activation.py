"""Activation: relu, sigmoid, tanh, softrelu (softplus) and softsign, elementwise; and
MXNet's unary operators ``relu``, ``sigmoid``, ``tanh`` and ``softsign``, the same functions.

Backward needs only the output (each derivative is written in terms of it), so the
input can be freed after forward, and the activation can fuse into a preceding
FullyConnected's epilogue.
"""

from __future__ import annotations

from ..ops import activation as kernels
from ..ops.gated_activation import GATES
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, elementwise_inplace, register, same_shape_everywhere

ACT_TYPES = ("relu", "sigmoid", "tanh", "softrelu", "softsign")


def _register(name: str, doc: str, params: list, act_type):
    """An activation operator; ``act_type`` picks the function from the parameters."""

    def forward(a: ForwardArgs):
        return kernels.plan_activation_forward(a.inputs[0], a.outputs[0], act_type(a.params))

    def backward(a: BackwardArgs):
        return kernels.plan_activation_backward(a.out_grads[0], a.outputs[0], a.in_grads[0], act_type(a.params),
                                                from_output=True, accumulate=a.accumulate[0])

    register(OpDef(
        name=name,
        doc=doc,
        params=params,
        input_names=("data",),
        infer_shape=same_shape_everywhere(["data"]),
        forward=forward,
        backward=backward,
        backward_needs=lambda p, epilogue: ((), (0,)),
        epilogue=lambda p: (act_type(p), 0.0),
        gate=lambda p: act_type(p) if act_type(p) in GATES else None,
        inplace=elementwise_inplace,
        backward_inplace=lambda p, epilogue: [(0, ("out_grad", 0)), (0, ("output", 0))],
        cheap=True,
    ))


_register("Activation", "Applies an activation function elementwise: relu max(x, 0); sigmoid 1/(1+exp(-x)); "
          "tanh; softrelu log(1+exp(x)); softsign x/(1+|x|).",
          [Param("act_type", str, choices=ACT_TYPES, doc="the activation function")], lambda p: p["act_type"])
# MXNet's unary operators of the same functions: sym.relu(x) is Activation(x, act_type="relu"),
# with its own name (relu0) in a graph and its file.
for _act, _rule in (("relu", "max(x, 0)"), ("sigmoid", "1/(1+exp(-x))"), ("tanh", "tanh(x)"),
                    ("softsign", "x/(1+|x|)")):
    _register(_act, f"Elementwise {_rule}, as Activation(act_type={_act!r}).", [], lambda p, a=_act: a)
