"""CTCLoss (MXNet's ``ctc_loss``, also ``CTCLoss``, ``_contrib_ctc_loss`` and
``_contrib_CTCLoss``): connectionist temporal classification, each sample's
``-log p(label | data)`` over every alignment (``ops/ctc_loss.py``), the softmax taken
inside over the data's channels (data: (steps, batch, alphabet) activations; label:
(batch, L)). ``blank_label='first'``: channel 0 is the blank and a label ends at its first
0; ``'last'``: the last channel is the blank and a label ends at its first -1.
``use_data_lengths`` / ``use_label_lengths`` add inputs giving each sample's steps and
label count.

A training forward keeps every step's forward variables (2 L + 1 a sample) and each step's
log-sum-exp of the data for backward, which writes ``head * (softmax - posterior)`` into the
data's gradient (MXNet multiplies by the head gradient too); labels and lengths take none.
"""

from __future__ import annotations

from ..ops import ctc_loss as kernels
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, index_dtype, register, unify


def _lengths(p) -> list[str]:
    return [name for name, flag in (("data_lengths", "use_data_lengths"), ("label_lengths", "use_label_lengths"))
            if p[flag]]


def _infer_shape(p, in_shapes, out_shapes):
    data, label = in_shapes[:2]
    if data is not None and len(data) != 3:
        raise ShapeMismatch(f"data {tuple(data)} must be (steps, batch, alphabet)")
    if label is not None and len(label) != 2:
        raise ShapeMismatch(f"label {tuple(label)} must be (batch, labels)")
    batch = (data[1] if data is not None else 0) or (label[0] if label is not None else 0) or \
        (out_shapes[0][0] if out_shapes[0] is not None else 0)
    if data is not None and label is not None:
        unify("label's batch", (label[0],), (data[1],))
        if label[1] > data[0]:  # MXNet refuses it too: the labels cannot fit the steps
            raise ShapeMismatch(f"label {tuple(label)} has {label[1]} labels a sample but data {tuple(data)} only "
                                f"{data[0]} steps")
    lengths = [unify(name, shape, (batch,) if batch else None) for name, shape in zip(_lengths(p), in_shapes[2:])]
    return [data, label, *lengths], [unify("output", out_shapes[0], (batch,) if batch else None)]


def _infer_type(p, in_types, out_types):
    data = unify("data dtype", in_types[0], out_types[0])
    if data is None:
        return in_types, out_types
    return [data, *(index_dtype(t, data) for t in in_types[1:])], [data]


def _options(a) -> dict:
    p, names = a.params, _lengths(a.params)
    given = dict(zip(names, a.inputs[2:]))
    return dict(data_lengths=given.get("data_lengths"), label_lengths=given.get("label_lengths"),
                blank_first=p["blank_label"] == "first")


def _forward(a: ForwardArgs):
    data, label = a.inputs[:2]
    if a.saved:
        return kernels.plan_ctc_loss(data, label, a.outputs[0], a.saved["alpha"], lse=a.saved["lse"], **_options(a))
    return kernels.plan_ctc_loss(data, label, a.outputs[0], a.temps["alpha"], **_options(a))


def _backward(a: BackwardArgs):
    if a.in_grads[0] is None:
        return []
    data, label = a.inputs[:2]
    return kernels.plan_ctc_loss_backward(data, label, a.out_grads[0], a.saved["alpha"], a.saved["lse"],
                                          a.temps["beta"], a.in_grads[0], accumulate=a.accumulate[0], **_options(a))


def _scratch(name: str):
    def temps(p, shapes, dtypes):
        return {name: kernels.scratch_shape(shapes[0][1], shapes[1][1], dtypes[0])}
    return temps


register(OpDef(
    name="CTCLoss",
    aliases=("ctc_loss", "_contrib_CTCLoss", "_contrib_ctc_loss"),
    hint="ctc",
    doc="Connectionist temporal classification: each sample's -log p(label | softmax(data)) over every alignment; "
        "data (steps, batch, alphabet), label (batch, labels), output (batch,).",
    params=[
        Param("use_data_lengths", bool, False, doc="an input data_lengths gives each sample's steps"),
        Param("use_label_lengths", bool, False,
              doc="an input label_lengths gives each sample's label count (else: up to the first padding value)"),
        Param("blank_label", str, "first", choices=("first", "last"),
              doc="the blank is channel 0 (labels padded with 0) or the last channel (padded with -1)"),
    ],
    input_names=("data", "label", "data_lengths", "label_lengths"),
    active_inputs=lambda p: ["data", "label", *_lengths(p)],
    infer_shape=_infer_shape,
    infer_type=_infer_type,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: (tuple(range(2 + len(_lengths(p)))), ()),
    output_names=lambda p: ["output0"],  # MXNet's (its CTCLoss has a second, hidden, output)
    no_grad_inputs=lambda p: {"label", *_lengths(p)},
    class_inputs=lambda p, shapes: {} if shapes[0] is None else {
        1: shapes[0][2], **{2 + k: (shapes[0][0] if name == "data_lengths" else shapes[1][1]) + 1
                            for k, name in enumerate(_lengths(p)) if shapes[1] is not None}},
    saved_for_backward=lambda p, shapes, dtypes: kernels.kept_shapes(shapes[0][0], shapes[0][1], shapes[1][1],
                                                                     dtypes[0]),
    forward_temps=_scratch("alpha"),
    backward_temps=_scratch("beta"),
))
