"""MakeLoss: turn any symbol into a loss. Forward is the identity (a view); backward
ignores the head gradient and writes a constant ``grad_scale`` (divided by the batch size
with ``normalization='batch'``) into the data's gradient."""

from __future__ import annotations

from ..ops import memory as kernels
from .registry import BackwardArgs, OpDef, Param, register, same_shape_everywhere


def _backward(a: BackwardArgs):
    grad = a.in_grads[0]
    if grad is None:
        return []
    scale = a.params["grad_scale"]
    if a.params["normalization"] == "batch":
        scale /= grad.shape[0] if grad.dim() else 1
    return kernels.plan_fill(grad, scale, accumulate=a.accumulate[0], loss_scale=a.loss_scale)


register(OpDef(
    name="MakeLoss",
    doc="Treats data as a loss to minimise: d(loss)/d(data) = grad_scale (/ batch size with "
        "normalization='batch'). Use it for a hand-written loss, e.g. MakeLoss(square(pred - y)).",
    params=[
        Param("grad_scale", float, 1.0, doc="gradient of the loss"),
        Param("normalization", str, "null", choices=("null", "batch"), doc="divide by the batch size"),
    ],
    input_names=("data",),
    infer_shape=same_shape_everywhere(["data"]),
    forward=lambda a: [],
    backward=_backward,
    backward_needs=lambda p, epilogue: ((), ()),
    output_aliases=lambda p: {0: 0},
    needs_head_grad=lambda p: False,
    applies_loss_scale=True,
))
