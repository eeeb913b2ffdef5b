"""softmax_cross_entropy (MXNet's): the cross entropy of softmax(data) and the one-hot labels,
summed over the rows: output shape (1,). data is (rows, classes), label one class index a
row (a float holding a whole number, or an integer dtype). The label takes no gradient;
data's is ``(softmax(data) - onehot(label)) * head``, recomputed from each row's
log-sum-exp, which a training forward keeps (``saved_for_backward``: one value a row). A
label that is not a whole number in [0, classes) makes the loss NaN and its row's
gradient NaN (``ops/cross_entropy.py``)."""

from __future__ import annotations

from ..ops import cross_entropy as kernels
from ..ops.attention import compute_dtype
from .registry import BackwardArgs, ForwardArgs, OpDef, ShapeMismatch, index_dtype, register, unify


def _infer_shape(p, in_shapes, out_shapes):
    data, label = in_shapes
    if data is not None:
        if len(data) != 2:
            raise ShapeMismatch(f"data must be (rows, classes), got {tuple(data)}")
        label = unify("label", label, (data[0],))
    return [data, label], [unify("output", out_shapes[0], (1,))]


def _infer_type(p, in_types, out_types):
    data = unify("data dtype", in_types[0], out_types[0])
    return [data, index_dtype(in_types[1], data)], [data]


def _rows(shapes, dtypes) -> dict:
    return {"rows": ((shapes[0][0],), compute_dtype(dtypes[0]))}


def _forward(a: ForwardArgs):
    return kernels.plan_cross_entropy(a.inputs[0], a.inputs[1], a.outputs[0], a.temps["rows"], a.saved.get("lse"))


def _backward(a: BackwardArgs):
    dx = a.in_grads[0]
    if dx is None:
        return []
    return kernels.plan_cross_entropy_backward(a.inputs[0], a.inputs[1], a.saved["lse"], a.out_grads[0], dx,
                                               accumulate=a.accumulate[0])


register(OpDef(
    name="softmax_cross_entropy",
    doc="The cross entropy of softmax(data) and the labels' one-hot rows, summed over the rows: shape (1,).",
    params=[],
    input_names=("data", "label"),
    infer_shape=_infer_shape,
    infer_type=_infer_type,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((0, 1), ()),
    no_grad_inputs=lambda p: {"label"},
    class_inputs=lambda p, shapes: {1: shapes[0][1]} if shapes[0] else {},
    forward_temps=lambda p, shapes, dtypes: _rows(shapes, dtypes),
    saved_for_backward=lambda p, shapes, dtypes: {"lse": _rows(shapes, dtypes)["rows"]},
))
