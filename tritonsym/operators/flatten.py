"""Flatten: (batch, d1, d2, ...) -> (batch, d1*d2*...). The output is a view of the input
(no kernel, no memory); backward copies the gradient back into the input's shape."""

from __future__ import annotations

from .registry import ShapeMismatch, register, size, unify
from .view import view_op


def _infer_shape(p, in_shapes, out_shapes):
    data = in_shapes[0]
    if data is None:
        return in_shapes, out_shapes
    if len(data) < 1:
        raise ShapeMismatch("data must have at least one dimension")
    return in_shapes, [unify("output", out_shapes[0], (data[0], size(data[1:])))]


register(view_op(
    name="Flatten",
    aliases=("flatten",),
    doc="Reshapes data of shape (batch, d1, d2, ...) to (batch, d1*d2*...).",
    params=[],
    infer_shape=_infer_shape,
))
