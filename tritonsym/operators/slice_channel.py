"""SliceChannel (MXNet's; alias ``split``): data cut into ``num_outputs`` equal parts along
``axis`` (each part's axis dropped with ``squeeze_axis`` when it has size 1). Where only axes
of size 1 precede ``axis`` each part is one run of the data's elements, and the program makes
it a view (``Value.window``: no launch, no memory); elsewhere each part is one strided copy.
Backward copies each part's gradient into its slice of the input gradient (a part nothing
reads has a zero gradient, as in MXNet)."""

from __future__ import annotations

from ..ops import memory as kernels
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, positive, register, unify, window_offset
from .view import already_there


def _part_shape(p, data):
    axis = p["axis"] % len(data)
    if data[axis] % p["num_outputs"]:
        raise ShapeMismatch(f"axis {p['axis']} of data {tuple(data)} has size {data[axis]}, which num_outputs="
                            f"{p['num_outputs']} does not divide")
    width = data[axis] // p["num_outputs"]  # 0 where the axis's size is unknown (partial inference)
    if p["squeeze_axis"]:
        if width not in (0, 1):
            raise ShapeMismatch(f"squeeze_axis needs parts of size 1 along axis {p['axis']}, but data {tuple(data)} "
                                f"splits into {p['num_outputs']} parts of {width}")
        return tuple(d for k, d in enumerate(data) if k != axis)
    return tuple(width if k == axis else d for k, d in enumerate(data))


def _infer_shape(p, in_shapes, out_shapes):
    data = in_shapes[0]
    if data is None:
        return in_shapes, out_shapes
    if not -len(data) <= p["axis"] < len(data):
        raise ShapeMismatch(f"axis={p['axis']} is out of range for data of shape {tuple(data)}")
    part = _part_shape(p, data)
    return in_shapes, [unify(f"output {k}", s, part) for k, s in enumerate(out_shapes)]


def _parts(p, t):
    """The input-shaped slices of ``t`` (data or its gradient), one per output."""
    axis = p["axis"] % t.dim()
    width = t.shape[axis] // p["num_outputs"]
    return [t.narrow(axis, k * width, width) for k in range(p["num_outputs"])]


def _output_windows(p, in_shapes):
    data = in_shapes[0]
    axis = p["axis"] % len(data)
    width = data[axis] // p["num_outputs"]
    offsets = [window_offset(data, axis, k * width, width) for k in range(p["num_outputs"])]
    return {} if offsets[0] is None else {k: (0, offset) for k, offset in enumerate(offsets)}


def _forward(a: ForwardArgs):
    return [launch for part, out in zip(_parts(a.params, a.inputs[0]), a.outputs)
            if not already_there(part, out.view(part.shape))
            for launch in kernels.plan_copy(part, out.view(part.shape))]


def _backward(a: BackwardArgs):
    dx = a.in_grads[0]
    if dx is None:
        return []
    launches = []
    for part, dy in zip(_parts(a.params, dx), a.out_grads):
        launches += kernels.plan_copy(dy.view(part.shape), part, accumulate=a.accumulate[0])
    return launches


register(OpDef(
    name="SliceChannel",
    doc="Splits data into num_outputs equal parts along axis.",
    params=[Param("num_outputs", int, check=positive, doc="how many parts"),
            Param("axis", int, 1, doc="the axis to split"),
            Param("squeeze_axis", bool, False, doc="drop the split axis from each part (of size 1)")],
    input_names=("data",),
    num_outputs=lambda p: p["num_outputs"],
    output_names=lambda p: [f"output{k}" for k in range(p["num_outputs"])],
    infer_shape=_infer_shape,
    output_windows=_output_windows,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((), ()),
    aliases=("split",),
    cheap=True,
))
