"""softmax, log_softmax and softmin along one axis (not loss operators: they take a head
gradient).

With ``use_length`` softmax takes a second input ``length`` (integers, the data's shape
without the axis) and masks each row past its length: those positions get probability 0 and
no gradient, as MXNet's; a row of length 0 is all 0.

``temperature`` T (MXNet's; None is 1) divides the data first: softmax(x / T). softmin is
softmax(-x / T). Where the factor is not 1 the data is scaled into a scratch buffer of its
dtype by the elementwise kernel (one more pass each way) and the gradient scaled back."""

from __future__ import annotations

import torch

from ..ops import elementwise
from ..ops import sequence_mask as length_kernels
from ..ops import softmax as kernels
from .registry import (
    BackwardArgs,
    ForwardArgs,
    OpDef,
    Param,
    ShapeMismatch,
    elementwise_inplace,
    register,
    same_shape_everywhere,
    unify,
)


def _infer_shape(p, in_shapes, out_shapes):
    new_in, new_out = same_shape_everywhere(["data"])(p, in_shapes, out_shapes)
    shape = new_in[0]
    if shape is not None and not -len(shape) <= p["axis"] < len(shape):
        raise ShapeMismatch(f"axis={p['axis']} is out of range for data of shape {tuple(shape)}")
    return new_in, new_out


def row_stats_temps(name: str, shape, axis: int, dtype, backward: bool = False) -> dict:
    """The scratch buffer of a few wide rows split across programs, as ``{name: (shape,
    dtype)}`` (empty otherwise): softmax's and SoftmaxOutput's temps rule."""
    need = kernels.split_stats(shape, axis, dtype, backward)
    return {name: need} if need is not None else {}


def _length_shape(p, data):
    return tuple(d for k, d in enumerate(data) if k != p["axis"] % len(data))


def _infer_shape_with_length(p, in_shapes, out_shapes):
    new_in, new_out = _infer_shape(p, in_shapes[:1], out_shapes)
    if not p.get("use_length"):
        return new_in, new_out
    length = in_shapes[1]
    if new_in[0] is not None:
        length = unify("length", length, _length_shape(p, new_in[0]))
    return [new_in[0], length], new_out


def _infer_type(p, in_types, out_types):
    data = unify("data dtype", in_types[0], out_types[0])
    if not p.get("use_length"):
        return [data], [data]
    return [data, in_types[1] if in_types[1] is not None else torch.int32], [data]  # MXNet's lengths are integers


def _make(name: str, log: bool, doc: str, lengths: bool, sign: float = 1.0):
    def factor(p) -> float:
        """What the data is multiplied by before the softmax: sign / temperature."""
        return sign / (1.0 if p["temperature"] is None else p["temperature"])

    def forward(a: ForwardArgs):
        p, x = a.params, a.inputs[0]
        launches = []
        if factor(p) != 1.0:
            launches += elementwise.plan_scalar_forward("mul", x, factor(p), a.temps["scaled"])
            x = a.temps["scaled"]
        if p.get("use_length"):  # the positions past each row's length become -inf: probability 0
            launches += length_kernels.plan_length_mask(x, a.inputs[1], a.temps["masked"], p["axis"], float("-inf"))
            x = a.temps["masked"]
        return launches + kernels.plan_softmax_forward(x, a.outputs[0], p["axis"], log=log,
                                                       stats=a.temps.get("row_stats"))

    def backward(a: BackwardArgs):
        p, dy, scale = a.params, a.out_grads[0], factor(a.params)
        if not p.get("use_length"):
            if scale == 1.0:
                return kernels.plan_softmax_backward(dy, a.outputs[0], a.in_grads[0], p["axis"], log=log,
                                                     accumulate=a.accumulate[0], stats=a.temps.get("row_sums"))
            grad = a.temps["scaled_grad"]  # the gradient with respect to the scaled data, then scaled back
            return (kernels.plan_softmax_backward(dy, a.outputs[0], grad, p["axis"], log=log,
                                                  stats=a.temps.get("row_sums"))
                    + elementwise.plan_scalar_backward("mul", grad, None, None, a.in_grads[0], scale,
                                                       accumulate=a.accumulate[0]))
        # Masked positions give nothing to a row's sum and take no gradient (their output is a
        # constant, also in a row made NaN): mask the head gradient, take the softmax gradient
        # in place (scaled back in place), and mask again on the way into the input gradient.
        masked, length = a.temps["masked"], a.inputs[1]
        scaled_back = [] if scale == 1.0 else elementwise.plan_scalar_backward("mul", masked, None, None, masked,
                                                                                 scale)
        return (length_kernels.plan_length_mask(dy, length, masked, p["axis"], 0.0, invalid_nan=False)
                + kernels.plan_softmax_backward(masked, a.outputs[0], masked, p["axis"], log=log,
                                                stats=a.temps.get("row_sums"))
                + scaled_back
                + length_kernels.plan_length_mask(masked, length, a.in_grads[0], p["axis"], 0.0,
                                                  accumulate=a.accumulate[0], invalid_nan=False))

    def temps(p, shapes, dtypes, backward):
        found = row_stats_temps("row_sums" if backward else "row_stats", shapes[0], p["axis"], dtypes[0], backward)
        if p.get("use_length"):
            found["masked"] = (tuple(shapes[0]), dtypes[0])
        if factor(p) != 1.0 and (not backward or not p.get("use_length")):  # backward with length: in masked
            found["scaled_grad" if backward else "scaled"] = (tuple(shapes[0]), dtypes[0])
        return found

    register(OpDef(
        name=name,
        doc=doc,
        params=[Param("axis", int, -1, doc="the axis to normalise along"),
                Param("temperature", "optional_float", None, doc="divides the data first (None: 1)",
                      check=lambda v: None if v is None or v != 0 else "must not be 0"),
                *([Param("use_length", bool, False, doc="mask each row past its length (the length input)")]
                  if lengths else [])],
        input_names=("data", "length") if lengths else ("data",),
        active_inputs=lambda p: ["data", "length"] if p.get("use_length") else ["data"],
        infer_shape=_infer_shape_with_length,
        infer_type=_infer_type,
        forward=forward,
        backward=backward,
        backward_needs=lambda p, epilogue: ((1,) if p.get("use_length") else (), (0,)),
        no_grad_inputs=lambda p: {"length"},
        class_inputs=lambda p, shapes: {1: shapes[0][p["axis"]] + 1} if p.get("use_length") and shapes[0] else {},
        forward_temps=lambda p, shapes, dtypes: temps(p, shapes, dtypes, False),
        backward_temps=lambda p, shapes, dtypes: temps(p, shapes, dtypes, True),
        # Row-local: each row is read (twice on the looped path) before any of it is written.
        inplace=elementwise_inplace,
        backward_inplace=lambda p, epilogue: [(0, ("out_grad", 0)), (0, ("output", 0))],
    ))


_make("softmax", False, "softmax(x)_i = exp(x_i) / sum_j exp(x_j) along `axis`. A row of all -inf gives 0; "
      "use_length masks each row past its length.", lengths=True)
# MXNet 1.9.1's log_softmax takes no length; the kernels would serve one as they serve softmax's.
_make("log_softmax", True, "log_softmax(x)_i = x_i - log(sum_j exp(x_j)) along `axis`. "
                           "A row of all -inf gives -inf.", lengths=False)
_make("softmin", False, "softmin(x) = softmax(-x) along `axis`: the smallest values the most probable.",
      lengths=False, sign=-1.0)
