"""L2Normalization (MXNet's): data divided by ``sqrt(sum(data**2) + eps)`` over
``mode``'s axes: ``instance`` (every axis but the batch's: each sample a unit vector),
``channel`` (axis 1: each position's channels; at least 3 axes) or ``spatial`` (the axes
after the channels: each channel's map; at least 3 axes).

The norm is found from each row's largest magnitude, in float64 (``ops/l2_normalization.py``):
no float32 row overflows or underflows in its sum of squares. A training forward keeps one
float64 reciprocal norm per row for backward (``saved_for_backward``); MXNet keeps the norm
as a hidden output, which tritonsym does not list either.
"""

from __future__ import annotations

import math

import torch

from ..ops import l2_normalization as kernels
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, register, same_shape_everywhere

MODES = ("instance", "channel", "spatial")


def axes(p, shape) -> tuple[int, int]:
    """The first and last axis ``mode`` normalises over, for data of ``shape``."""
    least = 2 if p["mode"] == "instance" else 3
    if len(shape) < least:
        raise ShapeMismatch(f"mode={p['mode']!r} needs data of at least {least} axes, got shape {tuple(shape)}")
    return {"instance": (1, len(shape) - 1), "channel": (1, 1), "spatial": (2, len(shape) - 1)}[p["mode"]]


def _infer_shape(p, in_shapes, out_shapes):
    new_in, new_out = same_shape_everywhere(["data"])(p, in_shapes, out_shapes)
    if new_in[0] is not None:
        axes(p, new_in[0])
    return new_in, new_out


def _rows(p, shape) -> int:
    first, last = axes(p, shape)
    return math.prod(shape[:first]) * math.prod(shape[last + 1:])


def _forward(a: ForwardArgs):
    x = a.inputs[0]
    first, last = axes(a.params, x.shape)
    return kernels.plan_l2_normalization(x, a.outputs[0], first=first, last=last, eps=a.params["eps"],
                                         kept_rstd=a.saved.get("rstd"))


def _backward(a: BackwardArgs):
    x, dx = a.inputs[0], a.in_grads[0]
    if dx is None:
        return []
    first, last = axes(a.params, x.shape)
    return kernels.plan_l2_normalization_backward(x, a.out_grads[0], a.saved["rstd"], dx, first=first, last=last,
                                                  accumulate=a.accumulate[0])


register(OpDef(
    name="L2Normalization",
    doc="data / sqrt(sum(data**2) + eps) over each instance, each position's channels, or each channel's map.",
    params=[
        Param("eps", float, 1e-10, doc="added to the sum of squares",
              check=lambda v: None if v >= 0 else "must not be negative"),
        Param("mode", str, "instance", choices=MODES,
              doc="instance: all axes but the batch's; channel: axis 1; spatial: the axes after the channels"),
    ],
    input_names=("data",),
    infer_shape=_infer_shape,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((0,), ()),
    saved_for_backward=lambda p, shapes, dtypes: {"rstd": ((_rows(p, shapes[0]),), torch.float64)},
))
