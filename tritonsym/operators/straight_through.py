"""Straight-through estimators and the gradient multiplier (MXNet's contrib operators for
quantized training and domain adaptation):

- ``_contrib_round_ste(data)``, ``_contrib_sign_ste(data)``: round (halves away from zero)
  and sign forward, as ``round`` and ``sign``; backward passes the head gradient through
  unchanged, as if the step were the identity (Bengio et al., 2013);
- ``_contrib_gradientmultiplier(data, scalar)``: the data unchanged forward (a view: no
  kernel, no memory); backward the head gradient times ``scalar`` (-lambda: the gradient
  reversal layer of domain-adversarial training).

Their backward is one copy (scaled), none where the planner put the input gradient over the
head gradient and there is nothing to scale."""

from __future__ import annotations

from ..ops import elementwise as elementwise_kernels
from .registry import (
    ForwardArgs,
    OpDef,
    Param,
    elementwise_inplace,
    grad_over_out_grad,
    register,
    same_shape_everywhere,
)
from .view import view_backward, view_op


def _register_estimator(step: str):
    def forward(a: ForwardArgs):
        return elementwise_kernels.plan_unary_forward(step, a.inputs[0], a.outputs[0])

    register(OpDef(
        name=f"_contrib_{step}_ste",
        doc=f"Elementwise {step}(x) forward; the head gradient passed through unchanged (straight-through).",
        params=[],
        input_names=("data",),
        infer_shape=same_shape_everywhere(["data"]),
        forward=forward,
        backward=view_backward,  # the head gradient passed through
        backward_needs=lambda p, epilogue: ((), ()),
        inplace=elementwise_inplace,
        backward_inplace=grad_over_out_grad(1),
        cheap=True,
    ))


for _step in ("round", "sign"):
    _register_estimator(_step)

register(view_op(
    name="_contrib_gradientmultiplier",
    doc="The data unchanged (a view); the gradient passed back times scalar.",
    params=[Param("scalar", float, 1.0, doc="the factor of the gradient (negative: gradient reversal)"),
            Param("is_int", bool, True, doc="MXNet's scalar-type flag; read and unused (the factor is a float)")],
    infer_shape=same_shape_everywhere(["data"]),
    backward=lambda a: view_backward(a, a.params["scalar"]),
))
