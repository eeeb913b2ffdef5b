"""Flatten: (batch, d1, d2, ...) -> (batch, d1*d2*...). The output is a view of the input
(no kernel, no memory); backward copies the gradient back into the input's shape."""

from __future__ import annotations

from ..ops import memory as kernels
from .registry import BackwardArgs, OpDef, ShapeMismatch, register, size, unify


def _infer_shape(p, in_shapes, out_shapes):
    data = in_shapes[0]
    if data is None:
        return in_shapes, out_shapes
    if len(data) < 1:
        raise ShapeMismatch("data must have at least one dimension")
    return in_shapes, [unify("output", out_shapes[0], (data[0], size(data[1:])))]


def _backward(a: BackwardArgs):
    if a.in_grads[0] is None:
        return []
    if a.in_grads[0].data_ptr() == a.out_grads[0].data_ptr() and not a.accumulate[0]:
        return []  # the planner put the input gradient over the output gradient: already there
    return kernels.plan_copy(a.out_grads[0].view(a.in_grads[0].shape), a.in_grads[0], accumulate=a.accumulate[0])


register(OpDef(
    name="Flatten",
    doc="Reshapes data of shape (batch, d1, d2, ...) to (batch, d1*d2*...).",
    params=[],
    input_names=("data",),
    infer_shape=_infer_shape,
    forward=lambda a: [],
    backward=_backward,
    backward_needs=lambda p, epilogue: ((), ()),
    output_aliases=lambda p: {0: 0},
    backward_inplace=lambda p, epilogue: [(0, ("out_grad", 0))],
))
