"""SVMOutput (MXNet's): a support-vector-machine output layer. Forward is the identity (a
view of the data: no kernel, no memory); backward ignores any head gradient and writes the
L2-SVM gradient of each row's scores over the last axis against its class label (L1-SVM
with ``use_linear``), times ``regularization_coefficient`` (``ops/svm_output.py``). The
label has the data's shape without its last axis; it gets no gradient."""

from __future__ import annotations

from ..ops import svm_output as kernels
from .pick import index_input_types
from .registry import BackwardArgs, OpDef, Param, ShapeMismatch, register, unify


def _infer_shape(p, in_shapes, out_shapes):
    data, label = in_shapes
    data = unify("data", data, out_shapes[0])
    if data is None:
        return in_shapes, out_shapes
    if len(data) < 2:
        raise ShapeMismatch(f"data of shape {tuple(data)} must be (..., classes): a row of scores per label")
    return [data, unify("label", label, tuple(data[:-1]))], [data]


def _backward(a: BackwardArgs):
    if a.in_grads[0] is None:
        return []
    p = a.params
    return kernels.plan_svm_output_backward(a.outputs[0], a.inputs[1], a.in_grads[0], margin=p["margin"],
                                            coefficient=p["regularization_coefficient"], linear=p["use_linear"],
                                            accumulate=a.accumulate[0], loss_scale=a.loss_scale)


register(OpDef(
    name="SVMOutput",
    doc="Support-vector-machine output: forward the identity, backward the L2-SVM (or L1-SVM) gradient.",
    params=[Param("margin", float, 1.0, doc="the margin the scores must clear"),
            Param("regularization_coefficient", float, 1.0, doc="the gradient's factor"),
            Param("use_linear", bool, False, doc="the L1-SVM objective (default: L2-SVM)")],
    input_names=("data", "label"),
    infer_shape=_infer_shape,
    infer_type=index_input_types,  # labels: float or integer classes
    forward=lambda a: [],  # the output is a view of the data
    backward=_backward,
    backward_needs=lambda p, epilogue: ((1,), (0,)),
    no_grad_inputs=lambda p: {"label"},
    class_inputs=lambda p, shapes: {1: shapes[0][-1]},
    needs_head_grad=lambda p: False,
    applies_loss_scale=True,
    output_aliases=lambda p: {0: 0},
    backward_inplace=lambda p, epilogue: [(0, ("output", 0))],
))
