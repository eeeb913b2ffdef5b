"""take (MXNet's): the slices of ``a`` along ``axis`` at ``indices`` (any shape, float or
integer): the output is ``a.shape[:axis] + indices.shape + a.shape[axis + 1:]``. ``mode``
says what an index outside the axis means: ``clip`` (MXNet's default) to its ends, ``wrap``
around it, ``raise`` an error in MXNet, and NaN here (no kernel can raise). An index that
is not a whole number (1.5, NaN) gives its slice NaN and takes no gradient, as Embedding's
and pick's do (MXNet truncates it). The gradient of ``a`` sums the output gradients of the
slices each index took, in a fixed order; ``indices`` takes none. Kernels: ``ops/take.py``
(Embedding's gather and gradient on ``a`` seen as a table)."""

from __future__ import annotations

import torch

from ..ops import take as kernels
from .pick import index_input_types
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, register, unify


def _axis(p, a) -> int:
    if not -len(a) <= p["axis"] < len(a):
        raise ShapeMismatch(f"axis={p['axis']} is out of range for a of shape {tuple(a)}")
    return p["axis"] % len(a)


def _infer_shape(p, in_shapes, out_shapes):
    a, indices = in_shapes
    if a is None or indices is None:
        return in_shapes, out_shapes
    axis = _axis(p, a)
    if a[axis] == 0:
        raise ShapeMismatch(f"a of shape {tuple(a)} has nothing to take along axis {axis}")
    return in_shapes, [unify("output", out_shapes[0], (*a[:axis], *indices, *a[axis + 1:]))]


def _temps(p, shapes, dtypes):
    axis = _axis(p, shapes[0])
    count = 1
    for n in shapes[1]:
        count *= n
    return {name: (shape, torch.float64 if name == "indices" else dtypes[0])
            for name, shape in kernels.scratch_shapes(shapes[0], axis, count).items()}


def _forward(a: ForwardArgs):
    x = a.inputs[0]
    return kernels.plan_take(x, a.inputs[1], a.outputs[0], _axis(a.params, x.shape), a.params["mode"], a.temps)


def _backward(a: BackwardArgs):
    dx = a.in_grads[0]
    if dx is None:
        return []
    return kernels.plan_take_backward(a.out_grads[0], a.inputs[1], dx, _axis(a.params, dx.shape), a.params["mode"],
                                      a.temps, accumulate=a.accumulate[0])


register(OpDef(
    name="take",
    doc="The slices of a along axis at indices (clipped, wrapped, or NaN outside the axis).",
    params=[Param("axis", int, 0, doc="the axis to take along (negative: from the end)"),
            Param("mode", str, "clip", choices=kernels.MODES,
                  doc="an index outside the axis: clip to its ends, wrap around, or raise (NaN here)")],
    input_names=("a", "indices"),
    infer_shape=_infer_shape,
    infer_type=index_input_types,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((1,), ()),
    no_grad_inputs=lambda p: {"indices"},
    class_inputs=lambda p, shapes: {} if shapes[0] is None else {1: shapes[0][_axis(p, shapes[0])]},
    forward_temps=_temps,
    backward_temps=_temps,
))
