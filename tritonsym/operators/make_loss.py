"""MakeLoss: turn any symbol into a loss. Forward is the identity (a view); backward
ignores the head gradient and writes a constant ``grad_scale`` into the data's gradient:
divided by the batch size with ``normalization='batch'``, by the number of the data's
elements above ``valid_thresh`` (at least 1, counted on the device each step; NaN if one is
NaN) with ``normalization='valid'`` (``ops/make_loss.py``). ``make_loss`` is MXNet's other
operator of that name, without parameters: its gradient is 1 (``ones_like(data)``)."""

from __future__ import annotations

import torch

from ..ops import make_loss as count_kernels
from ..ops import memory as kernels
from .registry import BackwardArgs, OpDef, Param, register, same_shape_everywhere


def _valid(p) -> bool:
    return p.get("normalization") == "valid"


def _backward(a: BackwardArgs):
    grad = a.in_grads[0]
    if grad is None:
        return []
    scale = a.params.get("grad_scale", 1.0)
    if a.params.get("normalization") == "batch":
        scale /= grad.shape[0] if grad.dim() else 1
    if _valid(a.params):
        count = a.temps["count"]
        return [*count_kernels.plan_count_valid(a.inputs[0], count, a.params["valid_thresh"]),
                *kernels.plan_fill(grad, scale, accumulate=a.accumulate[0], loss_scale=a.loss_scale, divisor=count)]
    return kernels.plan_fill(grad, scale, accumulate=a.accumulate[0], loss_scale=a.loss_scale)


def _register(name: str, doc: str, params: list):
    register(OpDef(
        name=name,
        doc=doc,
        params=params,
        input_names=("data",),
        infer_shape=same_shape_everywhere(["data"]),
        forward=lambda a: [],
        backward=_backward,
        backward_needs=lambda p, epilogue: ((0,), ()) if _valid(p) else ((), ()),
        backward_temps=lambda p, shapes, dtypes: {"count": ((1,), torch.float64)} if _valid(p) else {},
        output_aliases=lambda p: {0: 0},
        needs_head_grad=lambda p: False,
        applies_loss_scale=True,
    ))


_register(
    "MakeLoss",
    "Treats data as a loss to minimise: d(loss)/d(data) = grad_scale (/ batch size with "
    "normalization='batch', / the elements above valid_thresh with normalization='valid'). Use it for a "
    "hand-written loss, e.g. MakeLoss(square(pred - y)).",
    [Param("grad_scale", float, 1.0, doc="gradient of the loss"),
     Param("valid_thresh", float, 0.0, check=lambda v: None if v == v else "must be a number",
           doc="normalization='valid' counts the elements above it"),
     Param("normalization", str, "null", choices=("null", "batch", "valid"),
           doc="divide by the batch size ('batch') or by the elements above valid_thresh, at least 1 ('valid')")])
_register("make_loss", "Treats data as a loss to minimise: d(loss)/d(data) = 1 (MakeLoss without its parameters).",
          [])
