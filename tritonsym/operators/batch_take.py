"""batch_take (MXNet's, deprecated there for ``pick``): ``out[i] = a[i, indices[i]]`` for a
matrix ``a`` of ``indices.size`` rows, the output of the indices' shape, an index outside a
row clipped to its nearest end (as MXNet does). It is pick along axis 1 in clip mode, on
pick's kernels (``ops/pick.py``) through flat views of the indices and the output. MXNet
gives it no gradient; here the matrix gets pick's (the output gradient at the taken
elements, zero elsewhere) and the indices none."""

from __future__ import annotations

import math

from ..ops import pick as kernels
from .pick import index_input_types
from .registry import BackwardArgs, ForwardArgs, OpDef, ShapeMismatch, register, unify


def _infer_shape(p, in_shapes, out_shapes):
    a, indices = in_shapes
    indices = unify("indices", indices, out_shapes[0])
    if a is not None and len(a) != 2:
        raise ShapeMismatch(f"a of shape {tuple(a)} must be a matrix (rows, columns): MXNet 1.9.1 reads other "
                            "shapes past their end")
    if a is not None and indices is not None and math.prod(indices) != a[0]:
        raise ShapeMismatch(f"indices of shape {tuple(indices)} must hold one index per row of a {tuple(a)}: "
                            f"{a[0]}, not {math.prod(indices)}")
    return [a, indices], [indices]


def _flat(t):
    return t.reshape(-1)


def _forward(a: ForwardArgs):
    matrix, indices = a.inputs
    return kernels.plan_pick(matrix, _flat(indices), _flat(a.outputs[0]), 1, "clip")


def _backward(a: BackwardArgs):
    if a.in_grads[0] is None:
        return []
    return kernels.plan_pick_backward(_flat(a.out_grads[0]), _flat(a.inputs[1]), a.in_grads[0], 1, "clip",
                                      accumulate=a.accumulate[0])


register(OpDef(
    name="batch_take",
    doc="a[i, indices[i]] for each row i of the matrix a (indices outside a row clipped to its ends).",
    params=[],
    input_names=("a", "indices"),
    infer_shape=_infer_shape,
    infer_type=index_input_types,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((1,), ()),
    no_grad_inputs=lambda p: {"indices"},
    class_inputs=lambda p, shapes: {} if shapes[0] is None or len(shapes[0]) != 2 else {1: shapes[0][1]},
    cheap=True,
))
