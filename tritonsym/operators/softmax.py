"""softmax and log_softmax along one axis (not loss operators: they take a head gradient)."""

from __future__ import annotations

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


def _make(name: str, log: bool, doc: str):
    def forward(a: ForwardArgs):
        return kernels.plan_softmax_forward(a.inputs[0], a.outputs[0], a.params["axis"], log=log,
                                            stats=a.temps.get("row_stats"))

    def backward(a: BackwardArgs):
        return kernels.plan_softmax_backward(a.out_grads[0], a.outputs[0], a.in_grads[0], a.params["axis"],
                                             log=log, accumulate=a.accumulate[0], stats=a.temps.get("row_sums"))

    register(OpDef(
        name=name,
        doc=doc,
        params=[Param("axis", int, -1, doc="the axis to normalise along")],
        input_names=("data",),
        infer_shape=_infer_shape,
        forward=forward,
        backward=backward,
        backward_needs=lambda p, epilogue: ((), (0,)),
        forward_temps=lambda p, shapes, dtypes: row_stats_temps("row_stats", shapes[0], p["axis"], dtypes[0], False),
        backward_temps=lambda p, shapes, dtypes: row_stats_temps("row_sums", shapes[0], p["axis"], dtypes[0], True),
        # Row-local: each row is read (twice on the looped path) before any of it is written.
        inplace=elementwise_inplace,
        backward_inplace=lambda p, epilogue: [(0, ("out_grad", 0)), (0, ("output", 0))],
    ))


_make("softmax", False, "softmax(x)_i = exp(x_i) / sum_j exp(x_j) along `axis`. A row of all -inf gives 0.")
_make("log_softmax", True, "log_softmax(x)_i = x_i - log(sum_j exp(x_j)) along `axis`. "
                           "A row of all -inf gives -inf.")
