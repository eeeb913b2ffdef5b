"""LRN (MXNet's local response normalization, AlexNet's): each element divided by
``(knorm + alpha / nsize * sum of squares over its window of nsize channels) ** beta``, the
window centred on its channel (channels past the ends count as 0; ``nsize`` odd).

Data of at least 2 axes (batch, channels, positions...); MXNet 1.9.1 takes 4 (and float32
only). Backward reads the input and recomputes the windows' sums (``ops/lrn.py``), so a
training bind keeps nothing more; MXNet keeps the scale as a hidden output, which
tritonsym does not list either.
"""

from __future__ import annotations

from ..ops import lrn as kernels
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, positive, register, same_shape_everywhere


def _infer_shape(p, in_shapes, out_shapes):
    new_in, new_out = same_shape_everywhere(["data"])(p, in_shapes, out_shapes)
    if new_in[0] is not None and len(new_in[0]) < 2:
        raise ShapeMismatch(f"data must have a batch and a channel axis, got shape {tuple(new_in[0])}")
    return new_in, new_out


def _constants(p) -> dict:
    return dict(nsize=p["nsize"], alpha=p["alpha"], beta=p["beta"], knorm=p["knorm"])


def _forward(a: ForwardArgs):
    return kernels.plan_lrn(a.inputs[0], a.outputs[0], **_constants(a.params))


def _backward(a: BackwardArgs):
    dx = a.in_grads[0]
    if dx is None:
        return []
    return kernels.plan_lrn_backward(a.inputs[0], a.out_grads[0], a.temps["terms"], dx, **_constants(a.params),
                                     accumulate=a.accumulate[0])


def _odd(value) -> str | None:
    return positive(value) or (None if value % 2 else "must be odd (a window centred on its channel)")


register(OpDef(
    name="LRN",
    doc="Local response normalization across channels: x / (knorm + alpha/nsize * window sum of x**2) ** beta.",
    params=[
        Param("alpha", float, 1e-4, doc="the scale of the window's sum of squares (divided by nsize)"),
        Param("beta", float, 0.75, doc="the exponent"),
        Param("knorm", float, 2.0, doc="added to the scaled sum"),
        Param("nsize", int, check=_odd, doc="the window's width in channels (odd)"),
    ],
    input_names=("data",),
    infer_shape=_infer_shape,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((0,), ()),
    backward_temps=lambda p, shapes, dtypes: {"terms": (tuple(shapes[0]), kernels.scratch_dtype(dtypes[0]))},
))
