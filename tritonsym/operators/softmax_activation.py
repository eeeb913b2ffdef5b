"""SoftmaxActivation (MXNet's older softmax, kept for its scripts): ``mode="instance"``
normalises along the last axis (MXNet flattens the data to (rows, last axis)), ``channel``
along axis 1 of data with at least 3 axes (each position's channels). softmax's kernels
(``ops/softmax.py``), with its head gradient; MXNet's ``softmax(axis=...)`` is the same."""

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
from .softmax import row_stats_temps

MODES = ("instance", "channel")


def _axis(p) -> int:
    return -1 if p["mode"] == "instance" else 1


def _infer_shape(p, in_shapes, out_shapes):
    new_in, new_out = same_shape_everywhere(["data"])(p, in_shapes, out_shapes)
    if new_in[0] is not None and p["mode"] == "channel" and len(new_in[0]) < 3:
        raise ShapeMismatch(f"mode='channel' needs data of at least 3 axes (batch, channels, positions), got shape "
                            f"{tuple(new_in[0])}")
    return new_in, new_out


def _forward(a: ForwardArgs):
    return kernels.plan_softmax_forward(a.inputs[0], a.outputs[0], _axis(a.params), stats=a.temps.get("row_stats"))


def _backward(a: BackwardArgs):
    if a.in_grads[0] is None:
        return []
    return kernels.plan_softmax_backward(a.out_grads[0], a.outputs[0], a.in_grads[0], _axis(a.params),
                                         accumulate=a.accumulate[0], stats=a.temps.get("row_sums"))


register(OpDef(
    name="SoftmaxActivation",
    doc="softmax along the last axis (mode instance) or along axis 1 (mode channel).",
    params=[Param("mode", str, "instance", choices=MODES,
                  doc="instance: along the last axis; channel: along axis 1 (at least 3 axes)")],
    input_names=("data",),
    infer_shape=_infer_shape,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((), (0,)),
    forward_temps=lambda p, shapes, dtypes: row_stats_temps("row_stats", shapes[0], _axis(p), dtypes[0]),
    backward_temps=lambda p, shapes, dtypes: row_stats_temps("row_sums", shapes[0], _axis(p), dtypes[0], True),
    inplace=elementwise_inplace,
    backward_inplace=lambda p, epilogue: [(0, ("out_grad", 0)), (0, ("output", 0))],
))
