"""SoftmaxOutput (alias Softmax): softmax forward, cross-entropy gradient backward.

Forward returns the probabilities. Backward ignores any head gradient (unless
``out_grad``) and writes ``(p - onehot(label)) * grad_scale / norm`` into the data's
gradient; the label gets none. Layouts, as in MXNet:

- default: data (batch, ...) is normalised over everything after the batch axis (read
  as (batch, classes)); label is (batch,);
- ``preserve_shape``: over the last axis; label is data.shape[:-1];
- ``multi_output``: over axis 1; label is (batch, d2, d3, ...);
- a label with the data's own shape is a probability target (no normalization).

``normalization``: ``null`` (sum over the batch), ``batch`` (divide by the batch size) or
``valid`` (divide by the number of labels not equal to ``ignore_label``); with
``multi_output``, ``null`` and ``batch`` also divide by the positions per sample
(d2 * d3 * ...), as MXNet does. A class label
that is not a whole number in [0, classes) (NaN, 1.5, -2) and is not ignored gives that
row a NaN gradient, where MXNet would truncate it to some class.
"""

from __future__ import annotations

import math

import torch

from ..ops import softmax as softmax_kernels
from ..ops import softmax_output as kernels
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, elementwise_inplace, register, unify
from .softmax import row_stats_temps


def _class_axis_view(t: torch.Tensor, p) -> tuple[torch.Tensor, int]:
    """``t`` as a view whose class axis is a single axis, and that axis."""
    shape, axis = _class_axis_shape(t.shape, p)
    return t.view(shape), axis


def _class_axis_shape(shape, p) -> tuple[tuple, int]:
    """The shape of ``_class_axis_view`` of a tensor of this shape, and its class axis."""
    if p["multi_output"]:
        return tuple(shape), 1
    if p["preserve_shape"]:
        return tuple(shape), -1
    return (shape[0], math.prod(shape[1:])), -1


def _label_shape(p, data):
    if p["multi_output"]:
        return (data[0], *data[2:])
    if p["preserve_shape"]:
        return tuple(data[:-1])
    return (data[0],)


def _infer_shape(p, in_shapes, out_shapes):
    data, label = in_shapes
    data = unify("data", data, out_shapes[0])
    if data is None:
        return in_shapes, out_shapes
    if len(data) < 1 or (p["multi_output"] and len(data) < 2):
        raise ShapeMismatch(f"data has shape {tuple(data)}; it needs a batch axis"
                            + (" and a class axis (multi_output)" if p["multi_output"] else ""))
    if label is None or tuple(label) != tuple(data):  # a label of the data's shape is a probability target
        expected = _label_shape(p, data)
        if label is not None and tuple(label) != expected:
            raise ShapeMismatch(f"label has shape {tuple(label)} but data of shape {tuple(data)} expects "
                                f"{expected} (class indices) or {tuple(data)} (probabilities)")
        label = expected
    return [data, label], [data]


def _infer_type(p, in_types, out_types):
    data = unify("data dtype", in_types[0], out_types[0])
    # Labels keep their own dtype (float or int class indices); by default they follow the
    # data, except that half-precision types cannot hold class indices above 256/2048.
    label = in_types[1]
    if label is None and data is not None:
        label = torch.float32 if data in (torch.float16, torch.bfloat16) else data
    return [data, label], [data]


def _forward(a: ForwardArgs):
    data, axis = _class_axis_view(a.inputs[0], a.params)
    out, _ = _class_axis_view(a.outputs[0], a.params)
    return softmax_kernels.plan_softmax_forward(data, out, axis, stats=a.temps.get("row_stats"))


def _forward_temps(p, in_shapes, in_dtypes):
    shape, axis = _class_axis_shape(in_shapes[0], p)
    return row_stats_temps("row_stats", shape, axis, in_dtypes[0])


def _class_inputs(p, in_shapes) -> dict[int, int]:
    """The label holds class indices unless it has the data's shape (a probability target)."""
    data, label = in_shapes
    if tuple(label) == tuple(data):
        return {}
    shape, axis = _class_axis_shape(data, p)
    return {1: shape[axis]}


def _backward(a: BackwardArgs):
    p = a.params
    if a.in_grads[0] is None:
        return []
    prob, axis = _class_axis_view(a.outputs[0], p)
    grad, _ = _class_axis_view(a.in_grads[0], p)
    # Class labels already have the shape of prob's rows in every layout; a probability
    # target is viewed like prob.
    label = a.inputs[1]
    if tuple(label.shape) == tuple(a.outputs[0].shape):
        label, _ = _class_axis_view(label, p)
    head = _class_axis_view(a.out_grads[0], p)[0] if p["out_grad"] else None
    launches = []
    count = a.temps.get("valid_count")
    if count is not None:
        launches += kernels.plan_count_valid_labels(a.inputs[1], count, p["ignore_label"])
    grad_scale = p["grad_scale"]
    if p["multi_output"] and p["normalization"] != "valid" and label is a.inputs[1]:
        # MXNet divides a multi-output gradient by the positions per sample too (null and
        # batch alike; valid counts labels instead), checked against MXNet 1.9.1.
        grad_scale /= math.prod(a.outputs[0].shape[2:])
    launches += kernels.plan_softmax_output_backward(
        prob, label, grad, axis=axis, grad_scale=grad_scale, ignore_label=p["ignore_label"],
        use_ignore=p["use_ignore"], normalization=p["normalization"], smooth_alpha=p["smooth_alpha"],
        head_grad=head, valid_count=count, accumulate=a.accumulate[0], loss_scale=a.loss_scale)
    return launches


def _backward_temps(p, in_shapes, in_dtypes):
    data, label = in_shapes
    if p["normalization"] == "valid" and p["use_ignore"] and tuple(label) != tuple(data):
        return {"valid_count": ((1,), torch.float32)}
    return {}


register(OpDef(
    name="SoftmaxOutput",
    aliases=("Softmax",),
    doc=__doc__.split("\n", 1)[1].strip(),
    params=[
        Param("grad_scale", float, 1.0, doc="scale of the gradient"),
        Param("ignore_label", float, -1.0, doc="label value whose rows get no gradient (with use_ignore)"),
        Param("multi_output", bool, False, doc="softmax over axis 1, one label per position"),
        Param("use_ignore", bool, False, doc="give rows labelled ignore_label no gradient"),
        Param("preserve_shape", bool, False, doc="softmax over the last axis"),
        Param("normalization", str, "null", choices=("null", "batch", "valid"), doc="how the gradient is normalised"),
        Param("out_grad", bool, False, doc="multiply the gradient elementwise by the head gradient"),
        Param("smooth_alpha", float, 0.0, doc="label smoothing: the gold class gets 1-alpha, the others "
                                              "alpha/(classes-1)",
              check=lambda v: None if 0.0 <= v < 1.0 else "must be in [0, 1)"),
    ],
    input_names=("data", "label"),
    infer_shape=_infer_shape,
    infer_type=_infer_type,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((1,), (0,)),
    no_grad_inputs=lambda p: {"label"},
    class_inputs=_class_inputs,
    needs_head_grad=lambda p: p["out_grad"],
    applies_loss_scale=True,
    forward_temps=_forward_temps,
    backward_temps=_backward_temps,
    inplace=elementwise_inplace,
    backward_inplace=lambda p, epilogue: [(0, ("output", 0))],
))
