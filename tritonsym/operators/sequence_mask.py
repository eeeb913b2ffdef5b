"""SequenceMask (MXNet's): with ``use_sequence_length``, the time steps at or past each
sequence's length set to ``value``; data is (time, batch, ...) for ``axis=0`` and (batch,
time, ...) for ``axis=1``, ``sequence_length`` has one entry per batch entry. Without it the
operator is the identity (a view). A length that is not a whole number in [0, time] makes its
sequence NaN (``ops/sequence_mask.py``)."""

from __future__ import annotations

from ..ops import sequence_mask as kernels
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, index_dtype, register, unify
from .view import view_backward


def _infer_shape(p, in_shapes, out_shapes):
    data = unify("data", in_shapes[0], out_shapes[0])
    new_in = [data]
    if p["use_sequence_length"]:
        length = in_shapes[1]
        if data is not None:
            if len(data) < 2:
                raise ShapeMismatch(f"data {tuple(data)} needs a time axis and a batch axis")
            length = unify("sequence_length", length, (data[1 - p["axis"]],))
        new_in.append(length)
    return new_in, [data]


def _infer_type(p, in_types, out_types):
    data = unify("data dtype", in_types[0], out_types[0])
    if not p["use_sequence_length"]:
        return [data], [data]
    return [data, index_dtype(in_types[1], data)], [data]


def _forward(a: ForwardArgs):
    p = a.params
    if not p["use_sequence_length"]:
        return []
    return kernels.plan_length_mask(a.inputs[0], a.inputs[1], a.outputs[0], p["axis"], p["value"],
                                    batch_axis=1 - p["axis"])


def _backward(a: BackwardArgs):
    p, dx = a.params, a.in_grads[0]
    if not p["use_sequence_length"]:
        return view_backward(a)  # the identity: a view of its input
    if dx is None:
        return []
    return kernels.plan_length_mask(a.out_grads[0], a.inputs[1], dx, p["axis"], 0.0, batch_axis=1 - p["axis"],
                                    accumulate=a.accumulate[0], invalid_nan=False)


register(OpDef(
    name="SequenceMask",
    doc="Sets the time steps at or past each sequence's length to value (with use_sequence_length).",
    params=[Param("use_sequence_length", bool, False, doc="mask by sequence_length (else the identity)"),
            Param("value", float, 0.0, doc="what masked steps become"),
            Param("axis", int, 0, choices=(0, 1), doc="the time axis: 0 (time, batch, ...) or 1 (batch, time, ...)")],
    input_names=("data", "sequence_length"),
    active_inputs=lambda p: ["data", "sequence_length"] if p["use_sequence_length"] else ["data"],
    infer_shape=_infer_shape,
    infer_type=_infer_type,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((1,) if p["use_sequence_length"] else (), ()),
    no_grad_inputs=lambda p: {"sequence_length"},
    class_inputs=lambda p, shapes: {1: shapes[0][p["axis"]] + 1} if p["use_sequence_length"] and shapes[0] else {},
    output_aliases=lambda p: {} if p["use_sequence_length"] else {0: 0},
    inplace=lambda p: [(0, 0)] if p["use_sequence_length"] else [],
    backward_inplace=lambda p, epilogue: [(0, ("out_grad", 0))],
    cheap=True,
))
