"""GatedActivation (tritonsym's; MXNet 1.x has none): ``data * act(gate)`` elementwise, the
gated linear unit of a transformer's feed-forward block: SwiGLU with ``act_type='silu'``
(LLaMA's), GeGLU with gelu or gelu_tanh, GLU with sigmoid, ReGLU with relu. The same
numbers as ``data * LeakyReLU(gate, act_type=...)`` (or ``Activation``), in one kernel each
way, and ``act(gate)`` is never stored: backward computes it again from the two inputs
(``ops/gated_activation.py``), so a training bind keeps one gate-sized array less.
"""

from __future__ import annotations

from ..ops import gated_activation as kernels
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, grad_over_out_grad, register, same_shape_everywhere


def _forward(a: ForwardArgs):
    return kernels.plan_gated_forward(a.inputs[0], a.inputs[1], a.outputs[0], a.params["act_type"])


def _backward(a: BackwardArgs):
    return kernels.plan_gated_backward(a.out_grads[0], a.inputs[0], a.inputs[1], a.in_grads[0], a.in_grads[1],
                                       a.params["act_type"], a.accumulate[0], a.accumulate[1])


register(OpDef(
    name="GatedActivation",
    doc="data * act(gate), elementwise (SwiGLU with silu, GeGLU with gelu, GLU with sigmoid, ReGLU with relu); "
        "data and gate have one shape.",
    params=[Param("act_type", str, "silu", choices=kernels.GATES, doc="the gate's activation")],
    input_names=("data", "gate"),
    infer_shape=same_shape_everywhere(["data", "gate"]),
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((0, 1), ()),
    inplace=lambda p: [(0, 0), (1, 0)],
    backward_inplace=grad_over_out_grad(2),
    # x * silu(x): one kernel stores each element's data gradient, then adds its gate gradient, from one thread
    repeated_input_grads=True,
    cheap=True,
))
