"""SoftmaxOutput (alias Softmax): softmax forward, cross-entropy gradient backward.

Forward returns the probabilities. The gradient ignores any head gradient (unless
``out_grad``): ``(p - onehot(label)) * grad_scale / norm`` into the data's gradient; the
label gets none. A training forward makes it, from the same read of the logits (one
launch where a row fits one block), into a value kept for backward that the data's
gradient then takes over: the backward step launches nothing. With ``out_grad`` it needs
the head gradient, so backward makes it from the probabilities. Layouts, as in MXNet:

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

from ..ops import memory as memory_kernels
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


def _loss_options(p, data_shape, label: torch.Tensor) -> dict:
    """The loss kernels' options for this node: its class axis's, its label view's and its
    normalization's."""
    _, axis = _class_axis_shape(data_shape, p)
    grad_scale = p["grad_scale"]
    if p["multi_output"] and p["normalization"] != "valid" and tuple(label.shape) != tuple(data_shape):
        # MXNet divides a multi-output gradient by the positions per sample too (null and
        # batch alike; valid counts labels instead), checked against MXNet 1.9.1.
        grad_scale /= math.prod(data_shape[2:])
    return dict(axis=axis, grad_scale=grad_scale, ignore_label=p["ignore_label"], use_ignore=p["use_ignore"],
                normalization=p["normalization"], smooth_alpha=p["smooth_alpha"])


def _label_view(label: torch.Tensor, data_shape, p) -> torch.Tensor:
    """Class labels already have the shape of prob's rows in every layout; a probability
    target is viewed like prob."""
    return _class_axis_view(label, p)[0] if tuple(label.shape) == tuple(data_shape) else label


def _count_launches(a, label: torch.Tensor) -> tuple[list, torch.Tensor | None]:
    """The launch that counts the valid labels into the ``valid_count`` scratch, where the
    normalization needs it, and that buffer."""
    count = a.temps.get("valid_count")
    return (kernels.plan_count_valid_labels(label, count, a.params["ignore_label"]) if count is not None else [],
            count)


def _forward(a: ForwardArgs):
    data, axis = _class_axis_view(a.inputs[0], a.params)
    out, _ = _class_axis_view(a.outputs[0], a.params)
    stats = a.temps.get("row_stats")
    grad = a.saved.get("grad")
    if grad is None:
        return softmax_kernels.plan_softmax_forward(data, out, axis, stats=stats)
    # Training: the gradient is made here, from the logits read once, and kept for backward.
    label = a.inputs[1]
    launches, count = _count_launches(a, label)
    return launches + kernels.plan_softmax_output_train(
        data, out, _label_view(label, a.inputs[0].shape, a.params), _class_axis_view(grad, a.params)[0],
        **_loss_options(a.params, a.inputs[0].shape, label), valid_count=count, loss_scale=a.loss_scale, stats=stats)


def _forward_temps(p, in_shapes, in_dtypes):
    shape, axis = _class_axis_shape(in_shapes[0], p)
    temps = row_stats_temps("row_stats", shape, axis, in_dtypes[0])
    if _makes_gradient_in_forward(p):
        temps.update(_count_temps(p, in_shapes))
    return temps


def _class_inputs(p, in_shapes) -> dict[int, int]:
    """The label holds class indices unless it has the data's shape (a probability target)."""
    data, label = in_shapes
    if tuple(label) == tuple(data):
        return {}
    shape, axis = _class_axis_shape(data, p)
    return {1: shape[axis]}


def _makes_gradient_in_forward(p) -> bool:
    """The training forward makes the loss gradient unless it needs the head gradient,
    which exists only in backward (``out_grad``)."""
    return not p["out_grad"]


def _saved_for_backward(p, in_shapes, in_dtypes):
    return {"grad": (tuple(in_shapes[0]), in_dtypes[0])} if _makes_gradient_in_forward(p) else {}


def _backward(a: BackwardArgs):
    p = a.params
    grad = a.in_grads[0]
    if grad is None:
        return []
    made = a.saved.get("grad")
    if made is not None:  # the training forward made it
        if made.data_ptr() == grad.data_ptr() and not a.accumulate[0]:
            return []  # ... where the planner put the gradient
        return memory_kernels.plan_copy(made, grad, accumulate=a.accumulate[0])
    prob, _ = _class_axis_view(a.outputs[0], p)
    head = _class_axis_view(a.out_grads[0], p)[0] if p["out_grad"] else None
    launches, count = _count_launches(a, a.inputs[1])
    return launches + kernels.plan_softmax_output_backward(
        prob, _label_view(a.inputs[1], a.outputs[0].shape, p), _class_axis_view(grad, p)[0],
        **_loss_options(p, a.outputs[0].shape, a.inputs[1]), head_grad=head, valid_count=count,
        accumulate=a.accumulate[0], loss_scale=a.loss_scale)


def _count_temps(p, in_shapes):
    data, label = in_shapes
    if p["normalization"] == "valid" and p["use_ignore"] and tuple(label) != tuple(data):
        return {"valid_count": ((1,), torch.float32)}
    return {}


def _backward_temps(p, in_shapes, in_dtypes):
    return {} if _makes_gradient_in_forward(p) else _count_temps(p, in_shapes)


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
    # made by the training forward, the gradient needs nothing else; with out_grad, the
    # probabilities and the label
    backward_needs=lambda p, epilogue: ((), ()) if _makes_gradient_in_forward(p) else ((1,), (0,)),
    no_grad_inputs=lambda p: {"label"},
    class_inputs=_class_inputs,
    needs_head_grad=lambda p: p["out_grad"],
    applies_loss_scale=True,
    forward_temps=_forward_temps,
    backward_temps=_backward_temps,
    inplace=elementwise_inplace,
    saved_for_backward=_saved_for_backward,
    backward_inplace=lambda p, epilogue: [(0, ("saved", "grad"))] if _makes_gradient_in_forward(p) else
    [(0, ("output", 0))],
))
