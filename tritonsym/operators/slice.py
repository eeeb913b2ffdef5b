"""slice (MXNet's; alias ``crop``): ``data[b0:e0:s0, b1:e1:s1, ...]`` over the leading
``len(begin)`` axes (the rest whole). A None entry is the default (begin 0 and end the axis's
length for a positive step, begin the last index and end "before the first" for a negative
one); negative entries count from the end; out-of-range ones are clipped as Python's
slices are, which is what MXNet does wherever it gives an answer. A slice that would be
empty is refused.

Positive steps read the data through a strided window: one strided copy, or no launch at
all where the slice is one run of the data's elements (``output_windows``, as slice_axis).
Negative steps read the window in reverse through ``ops/flip.py``. Backward zeroes the
input gradient outside the slice and writes the output gradient into the same window.
"""

from __future__ import annotations

from ..ops import flip as flip_kernels
from ..ops import memory as kernels
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, register, unify, window_offset
from .view import already_there


def _step_not_zero(step) -> str | None:
    return "has a step of 0" if any(s == 0 for s in step) else None


def ranges(p, shape) -> list[tuple[int, int, int]]:
    """(first index, count, step) for every axis of ``shape`` (0 counts for unknown sizes)."""
    begin, end, step = p["begin"], p["end"], p["step"] or (None,) * len(p["begin"])
    if len(end) != len(begin) or len(step) != len(begin):
        raise ShapeMismatch(f"begin={begin}, end={end} and step={step} must have one length")
    if len(begin) > len(shape):
        raise ShapeMismatch(f"begin={begin} slices {len(begin)} axes of data with {len(shape)}: {tuple(shape)}")
    out = []
    for axis, length in enumerate(shape):
        b, e, s = (begin[axis], end[axis], step[axis]) if axis < len(begin) else (None, None, None)
        s = 1 if s is None else s
        if length == 0:  # unknown yet (partial inference)
            out.append((0, 0, s))
            continue
        first, stop, s = slice(b, e, s).indices(length)
        count = len(range(first, stop, s))
        if count == 0:
            raise ShapeMismatch(f"begin={b}, end={e}, step={s} selects nothing from axis {axis} of length {length} "
                                f"(data of shape {tuple(shape)})")
        out.append((first, count, s))
    return out


def _infer_shape(p, in_shapes, out_shapes):
    data = in_shapes[0]
    if data is None:
        return in_shapes, out_shapes
    return in_shapes, [unify("output", out_shapes[0], tuple(count for _, count, _ in ranges(p, data)))]


def window(p, t):
    """The sliced elements of ``t`` in increasing index order along every axis (a negative
    step's window is read in reverse), and the axes to reverse."""
    index, reversed_axes = [], []
    for axis, (first, count, step) in enumerate(ranges(p, t.shape)):
        if step > 0:
            index.append(slice(first, first + (count - 1) * step + 1, step))
        else:
            last = first + (count - 1) * step
            index.append(slice(last, first + 1, -step))
            reversed_axes.append(axis)
    return t[tuple(index)], reversed_axes


def output_windows(p, in_shapes):
    data = in_shapes[0]
    cut = [(axis, first, count) for axis, (first, count, step) in enumerate(ranges(p, data))
           if count != data[axis] or step != 1]
    if any(step != 1 for _, _, step in ranges(p, data)) or len(cut) > 1:
        return {}
    if not cut:  # the whole data
        return {0: (0, 0)}
    axis, first, count = cut[0]
    offset = window_offset(data, axis, first, count)
    return {} if offset is None else {0: (0, offset)}


def plan_window_copy(window, reversed_axes, out) -> list:
    """``out =`` the elements of ``window`` (a view of the data), reversed along ``reversed_axes``:
    nothing where the program made ``out`` that very window, else one strided copy."""
    if reversed_axes:
        return flip_kernels.plan_flip(window, out, reversed_axes)
    if already_there(window, out):
        return []
    return kernels.plan_copy(window, out)


def plan_window_gradient(dy, dx, window, reversed_axes, accumulate: bool) -> list:
    """The gradient of ``plan_window_copy``: ``dy`` written (added) into ``window``, a view of
    ``dx``, and the rest of ``dx`` zeroed unless accumulating."""
    zero = [] if accumulate else kernels.plan_fill(dx, 0.0)
    if reversed_axes:
        return zero + flip_kernels.plan_flip(dy, window, reversed_axes, accumulate=accumulate)
    return zero + kernels.plan_copy(dy, window, accumulate=accumulate)


def _forward(a: ForwardArgs):
    return plan_window_copy(*window(a.params, a.inputs[0]), a.outputs[0])


def _backward(a: BackwardArgs):
    dx = a.in_grads[0]
    if dx is None:
        return []
    return plan_window_gradient(a.out_grads[0], dx, *window(a.params, dx), a.accumulate[0])


register(OpDef(
    name="slice",
    doc="data[begin:end:step] over the leading len(begin) axes (None: the default; negative: from the end).",
    params=[Param("begin", "optional_ints", doc="the first index on each sliced axis (None: the default)"),
            Param("end", "optional_ints", doc="one past the last index on each sliced axis (None: the default)"),
            Param("step", "optional_ints", (), check=_step_not_zero,
                  doc="the step on each sliced axis (None or empty: 1; negative: backwards)")],
    input_names=("data",),
    infer_shape=_infer_shape,
    output_windows=output_windows,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((), ()),
    aliases=("crop",),
    cheap=True,
))
