"""diag (MXNet's): from data of 1 axis, the square matrix with it on diagonal ``k`` (side
len + |k|, zero elsewhere); from data of 2 or more axes, the ``k``-th diagonals of the
sub-arrays on ``axis1`` and ``axis2``, those axes removed and the diagonal's axis appended
(numpy's ``diagonal``). A diagonal is a strided view of its matrix, so each direction is a
strided copy (``ops/memory.py``), plus a zero fill of the matrix that is written."""

from __future__ import annotations

from ..ops import memory as kernels
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, register, unify


def _axes(p, ndim: int, data) -> tuple[int, int]:
    a1, a2 = p["axis1"], p["axis2"]
    for name, a in (("axis1", a1), ("axis2", a2)):
        if not -ndim <= a < ndim:
            raise ShapeMismatch(f"diag: {name}={a} is out of range for data of shape {tuple(data)}")
    a1, a2 = a1 % ndim, a2 % ndim
    if a1 == a2:
        raise ShapeMismatch(f"diag: axis1={p['axis1']} and axis2={p['axis2']} name the same axis of data "
                            f"{tuple(data)}")
    return a1, a2


def _diagonal_length(rows: int, cols: int, k: int) -> int:
    return max(0, min(rows, cols - k) if k >= 0 else min(rows + k, cols))


def _infer_shape(p, in_shapes, out_shapes):
    data, k = in_shapes[0], p["k"]
    if data is None:
        return in_shapes, out_shapes
    if len(data) == 1:
        side = data[0] + abs(k)
        return in_shapes, [unify("output", out_shapes[0], (side, side))]
    a1, a2 = _axes(p, len(data), data)
    length = _diagonal_length(data[a1], data[a2], k)
    if length == 0:
        raise ShapeMismatch(f"diag: data {tuple(data)} has no diagonal k={k} on axes {a1} and {a2} (sizes "
                            f"{data[a1]} and {data[a2]})")
    out = tuple(d for i, d in enumerate(data) if i not in (a1, a2)) + (length,)
    return in_shapes, [unify("output", out_shapes[0], out)]


def _diagonal(matrix, p, vector_input: bool):
    """The view of ``matrix`` (the output for a vector input, else the input) holding the diagonal."""
    if vector_input:
        return matrix.diagonal(p["k"], 0, 1)
    a1, a2 = _axes(p, matrix.dim(), matrix.shape)
    return matrix.diagonal(p["k"], a1, a2)


def _forward(a: ForwardArgs):
    x, out = a.inputs[0], a.outputs[0]
    if x.dim() == 1:
        return kernels.plan_fill(out, 0.0) + kernels.plan_copy(x, _diagonal(out, a.params, True))
    return kernels.plan_copy(_diagonal(x, a.params, False), out)


def _backward(a: BackwardArgs):
    dx, dy = a.in_grads[0], a.out_grads[0]
    if dx is None:
        return []
    if dx.dim() == 1:
        return kernels.plan_copy(_diagonal(dy, a.params, True), dx, accumulate=a.accumulate[0])
    clear = [] if a.accumulate[0] else kernels.plan_fill(dx, 0.0)
    return clear + kernels.plan_copy(dy, _diagonal(dx, a.params, False), accumulate=a.accumulate[0])


register(OpDef(
    name="diag",
    doc="The k-th diagonal of data on axis1 and axis2, or (data of 1 axis) the matrix with data on it.",
    params=[Param("k", int, 0, doc="which diagonal: above the main one when positive, below when negative"),
            Param("axis1", int, 0, doc="the first axis of the matrices (data of 2 or more axes)"),
            Param("axis2", int, 1, doc="the second axis of the matrices (data of 2 or more axes)")],
    input_names=("data",),
    infer_shape=_infer_shape,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((), ()),
    cheap=True,
))
