"""LinearRegressionOutput, MAERegressionOutput and LogisticRegressionOutput: loss operators
for regression.

Forward is the identity (a view of data: no kernel, no memory) or a sigmoid. Backward
ignores any head gradient and writes ``(out - label) * grad_scale / num_outputs`` (MAE:
``sign(out - label)``, -1 where they are equal as MXNet's, NaN where either is) with
``num_outputs`` the number of values per sample; the label gets no gradient. The label
has the data's shape, or (batch,) when data is (batch, 1).
"""

from __future__ import annotations

from ..ops import activation as activation_kernels
from ..ops import regression_output as kernels
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, elementwise_inplace, register, size, unify


def _infer_shape(p, in_shapes, out_shapes):
    data, label = in_shapes
    data = unify("data", data, out_shapes[0])
    if data is None:
        return in_shapes, out_shapes
    if label is not None and tuple(label) != tuple(data) and not (len(data) == 2 and data[1] == 1
                                                                  and tuple(label) == (data[0],)):
        raise ShapeMismatch(f"label has shape {tuple(label)} but data has shape {tuple(data)}; they must match")
    return [data, label if label is not None else data], [data]


def _make(name: str, logistic: bool, doc: str, absolute: bool = False):
    def backward(a: BackwardArgs):
        out = a.outputs[0]
        if a.in_grads[0] is None:
            return []
        per_sample = size(out.shape[1:]) if out.dim() > 1 else 1
        return kernels.plan_regression_output_backward(out, a.inputs[1], a.in_grads[0],
                                                       a.params["grad_scale"] / per_sample,
                                                       accumulate=a.accumulate[0], loss_scale=a.loss_scale,
                                                       absolute=absolute)

    def forward(a: ForwardArgs):
        if logistic:
            return activation_kernels.plan_activation_forward(a.inputs[0], a.outputs[0], "sigmoid")
        return []  # the output is a view of the data

    register(OpDef(
        name=name,
        doc=doc,
        params=[Param("grad_scale", float, 1.0, doc="scale of the gradient")],
        input_names=("data", "label"),
        infer_shape=_infer_shape,
        forward=forward,
        backward=backward,
        backward_needs=lambda p, epilogue: ((1,), (0,)),
        no_grad_inputs=lambda p: {"label"},
        needs_head_grad=lambda p: False,
        applies_loss_scale=True,
        output_aliases=(lambda p: {}) if logistic else (lambda p: {0: 0}),
        inplace=elementwise_inplace if logistic else (lambda p: ()),
        backward_inplace=lambda p, epilogue: [(0, ("output", 0))],
    ))


_make("LinearRegressionOutput", False, "Least-squares loss: forward is the identity, backward "
                                       "(out - label) * grad_scale / num_outputs.")
_make("MAERegressionOutput", False, "Mean absolute error loss: forward is the identity, backward "
                                    "sign(out - label) * grad_scale / num_outputs.", absolute=True)
_make("LogisticRegressionOutput", True, "Logistic loss: forward sigmoid(data), backward "
                                        "(out - label) * grad_scale / num_outputs.")
