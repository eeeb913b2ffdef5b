"""slice_axis (MXNet's): ``data[..., begin:end, ...]`` along ``axis`` (negative begin/end count
from the end; ``end=None`` is the end). Where only axes of size 1 precede ``axis`` the slice
is one run of the data's elements, and the program makes it a view (``Value.window``: no
launch, no memory); elsewhere one strided copy. Backward zeroes the input gradient outside
the slice and copies the output gradient into it."""

from __future__ import annotations

from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, register, unify, window_offset
from .slice import plan_window_copy, plan_window_gradient


def bounds(p, length: int) -> tuple[int, int]:
    """[begin, end) of the slice on an axis of ``length``, checked."""
    begin = p["begin"] + length if p["begin"] < 0 else p["begin"]
    end = length if p["end"] is None else (p["end"] + length if p["end"] < 0 else p["end"])
    if not 0 <= begin < end <= length:
        raise ShapeMismatch(f"begin={p['begin']}, end={p['end']} is not a non-empty slice of an axis of length "
                            f"{length}")
    return begin, end


def _infer_shape(p, in_shapes, out_shapes):
    data = in_shapes[0]
    if data is None:
        return in_shapes, out_shapes
    if not -len(data) <= p["axis"] < len(data):
        raise ShapeMismatch(f"axis={p['axis']} is out of range for data of shape {tuple(data)}")
    axis = p["axis"] % len(data)
    if data[axis] == 0:  # the axis's size unknown (partial inference): so is the slice's
        width = 0
    else:
        begin, end = bounds(p, data[axis])
        width = end - begin
    return in_shapes, [unify("output", out_shapes[0], tuple(width if k == axis else d for k, d in enumerate(data)))]


def _window(p, t):
    axis = p["axis"] % t.dim()
    begin, end = bounds(p, t.shape[axis])
    return t.narrow(axis, begin, end - begin)


def _output_windows(p, in_shapes):
    data = in_shapes[0]
    axis = p["axis"] % len(data)
    begin, end = bounds(p, data[axis])
    offset = window_offset(data, axis, begin, end - begin)
    return {} if offset is None else {0: (0, offset)}


def _forward(a: ForwardArgs):
    return plan_window_copy(_window(a.params, a.inputs[0]), (), a.outputs[0])


def _backward(a: BackwardArgs):
    dx = a.in_grads[0]
    if dx is None:
        return []
    return plan_window_gradient(a.out_grads[0], dx, _window(a.params, dx), (), a.accumulate[0])


register(OpDef(
    name="slice_axis",
    doc="data[begin:end] along axis.",
    params=[Param("axis", int, doc="the axis to slice"),
            Param("begin", int, doc="the first index (negative: from the end)"),
            Param("end", "optional_int", None, doc="one past the last index (negative: from the end; None: the end)")],
    input_names=("data",),
    infer_shape=_infer_shape,
    output_windows=_output_windows,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((), ()),
    cheap=True,
))
