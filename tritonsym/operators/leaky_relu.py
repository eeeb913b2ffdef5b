"""LeakyReLU: the parametrised activations of MXNet's LeakyReLU operator.

leaky: x if x > 0 else slope*x; elu: x if x > 0 else slope*(exp(x)-1); selu (fixed
constants); gelu: x*Phi(x); gelu_tanh: GPT-2's tanh approximation of it (MXNet 2's name);
silu: x*sigmoid(x) (torch's name; SwiGLU's gate); prelu: x if x > 0 else gamma*x with a learned ``gamma`` input
(one slope per channel of axis 1, or one for all: ``ops/prelu.py``); rrelu: x if x > 0 else
slope*x with each element's slope drawn from [lower_bound, upper_bound) when training
(redrawn by backward, never stored: ``ops/rrelu.py``), their mean in inference. Backward
reads the output where the derivative can be written from it (leaky with slope >= 0, elu
with slope > 0, selu), else the input; only the former can fuse into a FullyConnected
epilogue.
"""

from __future__ import annotations

from .. import random
from ..ops import activation as kernels
from ..ops import prelu as prelu_kernels
from ..ops import rrelu as rrelu_kernels
from ..ops.gated_activation import GATES
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, register, unify

ACT_TYPES = ("leaky", "elu", "selu", "gelu", "gelu_tanh", "silu", "prelu", "rrelu")


def _from_output(p) -> bool:
    return p["act_type"] not in ("prelu", "rrelu") and kernels.grad_from_output(p["act_type"], p["slope"])


def _rrelu(p) -> bool:
    return p["act_type"] == "rrelu"


def _mean_slope(p) -> float:
    return (p["lower_bound"] + p["upper_bound"]) / 2.0


def _rrelu_launches(a, x, out, **gradient):
    p = a.params
    return rrelu_kernels.plan_rrelu(x, out, random.device_state(x.device), lower=p["lower_bound"],
                                    upper=p["upper_bound"], salt=random.salt(a.node), **gradient)


def _infer_shape(p, in_shapes, out_shapes):
    if _rrelu(p) and p["lower_bound"] > p["upper_bound"]:
        raise ShapeMismatch(f"lower_bound={p['lower_bound']} is above upper_bound={p['upper_bound']}")
    data = unify("data", in_shapes[0], out_shapes[0])
    if p["act_type"] != "prelu":
        return [data], [data]
    gamma = in_shapes[1]
    if data is not None:
        if len(data) < 2:
            raise ShapeMismatch(f"prelu needs data with a channel axis (axis 1), got {tuple(data)}")
        if gamma is None or tuple(gamma) != (1,):
            gamma = unify("gamma", gamma, (data[1],))
    return [data, gamma], [data]


def _forward(a: ForwardArgs):
    if a.params["act_type"] == "prelu":
        return prelu_kernels.plan_prelu(a.inputs[0], a.inputs[1], a.outputs[0])
    if _rrelu(a.params):
        if a.is_train:
            return _rrelu_launches(a, a.inputs[0], a.outputs[0])
        return kernels.plan_activation_forward(a.inputs[0], a.outputs[0], "leaky", _mean_slope(a.params))
    return kernels.plan_activation_forward(a.inputs[0], a.outputs[0], a.params["act_type"], a.params["slope"])


def _backward(a: BackwardArgs):
    p = a.params
    if p["act_type"] == "prelu":
        return prelu_kernels.plan_prelu_backward(
            a.inputs[0], a.inputs[1], a.out_grads[0], a.in_grads[0], a.in_grads[1], a.temps.get("gamma_parts"),
            accumulate_x=a.accumulate[0], accumulate_gamma=a.accumulate[1])
    if _rrelu(p):
        return _rrelu_launches(a, a.inputs[0], a.in_grads[0], grad_out=a.out_grads[0], accumulate=a.accumulate[0])
    from_output = _from_output(p)
    saved = a.outputs[0] if from_output else a.inputs[0]
    return kernels.plan_activation_backward(a.out_grads[0], saved, a.in_grads[0], p["act_type"], p["slope"],
                                            from_output=from_output, accumulate=a.accumulate[0])


register(OpDef(
    name="LeakyReLU",
    doc="Leaky rectified linear units and relatives, elementwise: leaky x>0 ? x : slope*x; "
        "elu x>0 ? x : slope*(exp(x)-1); selu 1.0507*(x>0 ? x : 1.6733*(exp(x)-1)); "
        "gelu 0.5*x*(1+erf(x/sqrt(2))); gelu_tanh 0.5*x*(1+tanh(sqrt(2/pi)*(x+0.044715*x^3))); silu x*sigmoid(x); "
        "prelu x>0 ? x : gamma*x with a learned gamma (per channel of axis 1, "
        "or (1,)); rrelu x>0 ? x : slope*x, the slope drawn from [lower_bound, upper_bound) per element when "
        "training, their mean in inference.",
    params=[
        Param("act_type", str, "leaky", choices=ACT_TYPES, doc="the activation function"),
        Param("slope", float, 0.25, doc="negative slope of leaky, alpha of elu"),
        Param("lower_bound", float, 0.125, doc="rrelu's lowest slope"),
        Param("upper_bound", float, 0.334, doc="rrelu's highest slope (drawn below it)"),
    ],
    input_names=("data", "gamma"),
    active_inputs=lambda p: ["data", "gamma"] if p["act_type"] == "prelu" else ["data"],
    infer_shape=_infer_shape,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((0, 1), ()) if p["act_type"] == "prelu" else
    ((), (0,)) if _from_output(p) else ((0,), ()),
    backward_temps=lambda p, shapes, dtypes: {"gamma_parts": (tuple(shapes[0]), dtypes[0])}
    if p["act_type"] == "prelu" else {},
    epilogue=lambda p: (p["act_type"], p["slope"]) if _from_output(p) else None,
    gate=lambda p: p["act_type"] if p["act_type"] in GATES else None,  # silu, gelu, gelu_tanh: no slope
    # prelu's and rrelu's backward read the input: the output may not overwrite it
    inplace=lambda p: [] if p["act_type"] in ("prelu", "rrelu") else [(0, 0)],
    backward_inplace=lambda p, epilogue: [(0, ("out_grad", 0))] if p["act_type"] == "prelu" else
    [(0, ("out_grad", 0)), (0, ("output", 0) if _from_output(p) else ("input", 0))],
    cheap=True,  # rrelu too: a recomputed forward at the same step draws the same slopes
    forward_in_training=_rrelu,
    draws_random=_rrelu,
))
