"""SequenceReverse and SequenceLast (MXNet's): data is (time, batch, ...) for ``axis=0`` and
(batch, time, ...) for ``axis=1``; with ``use_sequence_length``, ``sequence_length`` has one
entry per batch entry. SequenceReverse reverses each sequence's first ``length`` steps and
keeps the steps past it (all steps without lengths; MXNet 1.9.1 takes only ``axis=0``);
SequenceLast takes each sequence's step ``length - 1`` (the last without lengths), dropping
the time axis. A length that is not a whole number in range (0 to time for reverse, 1 to
time for last) makes its sequence NaN (``ops/sequence_index.py``); the lengths take no
gradient."""

from __future__ import annotations

from ..ops import sequence_index as kernels
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, index_dtype, register, unify


def _length(a, p):
    return a.inputs[1] if p["use_sequence_length"] else None


def _check_data(data):
    if len(data) < 2:
        raise ShapeMismatch(f"data {tuple(data)} needs a time axis and a batch axis")


def _infer_type(p, in_types, out_types):
    data = unify("data dtype", in_types[0], out_types[0])
    if not p["use_sequence_length"]:
        return [data], [data]
    return [data, index_dtype(in_types[1], data)], [data]


def _register(name: str, doc: str, infer_shape, forward, backward):
    register(OpDef(
        name=name,
        doc=doc,
        params=[Param("use_sequence_length", bool, False, doc="use sequence_length (else every sequence is whole)"),
                Param("axis", int, 0, choices=(0, 1),
                      doc="the time axis: 0 (time, batch, ...) or 1 (batch, time, ...)")],
        input_names=("data", "sequence_length"),
        active_inputs=lambda p: ["data", "sequence_length"] if p["use_sequence_length"] else ["data"],
        infer_shape=infer_shape,
        infer_type=_infer_type,
        forward=forward,
        backward=backward,
        backward_needs=lambda p, epilogue: ((1,) if p["use_sequence_length"] else (), ()),
        no_grad_inputs=lambda p: {"sequence_length"},
        # whole lengths 0 to time (SequenceLast's 0 has no last step: NaN)
        class_inputs=lambda p, shapes: {1: shapes[0][p["axis"]] + 1} if p["use_sequence_length"] and shapes[0] else {},
        cheap=True,
    ))


# ------------------------------------------------------------------ SequenceReverse


def _reverse_shape(p, in_shapes, out_shapes):
    data = unify("data", in_shapes[0], out_shapes[0])
    new_in = [data]
    if data is not None:
        _check_data(data)
    if p["use_sequence_length"]:
        new_in.append(in_shapes[1] if data is None else unify("sequence_length", in_shapes[1], (data[1 - p["axis"]],)))
    return new_in, [data]


def _reverse_forward(a: ForwardArgs):
    return kernels.plan_sequence_reverse(a.inputs[0], _length(a, a.params), a.outputs[0], a.params["axis"])


def _reverse_backward(a: BackwardArgs):
    dx = a.in_grads[0]
    if dx is None:
        return []
    return kernels.plan_sequence_reverse(a.out_grads[0], _length(a, a.params), dx, a.params["axis"],
                                         accumulate=a.accumulate[0], invalid_nan=False)


_register("SequenceReverse", "Reverses each sequence's first sequence_length steps (all without lengths).",
          _reverse_shape, _reverse_forward, _reverse_backward)


# ------------------------------------------------------------------ SequenceLast


def _last_shape(p, in_shapes, out_shapes):
    data, out = in_shapes[0], out_shapes[0]
    axis = p["axis"]
    if data is not None:
        _check_data(data)
        out = unify("output", out, tuple(d for k, d in enumerate(data) if k != axis))
    new_in = [data]
    if p["use_sequence_length"]:
        batch = data[1 - axis] if data is not None else out[0] if out is not None else None
        new_in.append(in_shapes[1] if batch is None else unify("sequence_length", in_shapes[1], (batch,)))
    return new_in, [out]


def _last_forward(a: ForwardArgs):
    return kernels.plan_sequence_last(a.inputs[0], _length(a, a.params), a.outputs[0], a.params["axis"])


def _last_backward(a: BackwardArgs):
    dx = a.in_grads[0]
    if dx is None:
        return []
    return kernels.plan_sequence_last_backward(a.out_grads[0], _length(a, a.params), dx, a.params["axis"],
                                               accumulate=a.accumulate[0])


_register("SequenceLast", "Each sequence's step sequence_length - 1 (the last step without lengths).",
          _last_shape, _last_forward, _last_backward)
