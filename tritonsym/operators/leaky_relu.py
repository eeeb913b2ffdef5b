"""LeakyReLU: the parametrised activations of MXNet's LeakyReLU operator.

leaky: x if x > 0 else slope*x; elu: x if x > 0 else slope*(exp(x)-1); selu (fixed
constants); gelu: x*Phi(x). Backward reads the output where the derivative can be
written from it (leaky with slope >= 0, elu with slope > 0, selu), else the input; only
the former can fuse into a FullyConnected epilogue.
"""

from __future__ import annotations

from ..ops import activation as kernels
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, elementwise_inplace, register, same_shape_everywhere

ACT_TYPES = ("leaky", "elu", "selu", "gelu")


def _from_output(p) -> bool:
    return kernels.grad_from_output(p["act_type"], p["slope"])


def _forward(a: ForwardArgs):
    return kernels.plan_activation_forward(a.inputs[0], a.outputs[0], a.params["act_type"], a.params["slope"])


def _backward(a: BackwardArgs):
    p = a.params
    from_output = _from_output(p)
    saved = a.outputs[0] if from_output else a.inputs[0]
    return kernels.plan_activation_backward(a.out_grads[0], saved, a.in_grads[0], p["act_type"], p["slope"],
                                            from_output=from_output, accumulate=a.accumulate[0])


register(OpDef(
    name="LeakyReLU",
    doc="Leaky rectified linear units and relatives, elementwise: leaky x>0 ? x : slope*x; "
        "elu x>0 ? x : slope*(exp(x)-1); selu 1.0507*(x>0 ? x : 1.6733*(exp(x)-1)); "
        "gelu 0.5*x*(1+erf(x/sqrt(2))). (MXNet's prelu and rrelu are not supported.)",
    params=[
        Param("act_type", str, "leaky", choices=ACT_TYPES, doc="the activation function"),
        Param("slope", float, 0.25, doc="negative slope of leaky, alpha of elu"),
    ],
    input_names=("data",),
    infer_shape=same_shape_everywhere(["data"]),
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((), (0,)) if _from_output(p) else ((0,), ()),
    epilogue=lambda p: (p["act_type"], p["slope"]) if _from_output(p) else None,
    inplace=elementwise_inplace,
    backward_inplace=lambda p, epilogue: [(0, ("out_grad", 0)),
                                          (0, ("output", 0) if _from_output(p) else ("input", 0))],
    cheap=True,
))
