"""slice_like (MXNet's): ``data`` cut to the size of ``shape_like`` from the start of each of
``axes`` (every axis when empty: then both have as many axes). It is ``slice`` with ends
taken from ``shape_like``, on slice's window copy (no launch where the result is one run of
the data's elements). ``shape_like``'s values are never read and it takes no gradient (its
gradient is 0, as MXNet's)."""

from __future__ import annotations

from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, register, unify
from .slice import output_windows, plan_window_copy, plan_window_gradient, window


def _cut_axes(p, data, like) -> list[int]:
    if not p["axes"]:
        if len(like) != len(data):
            raise ShapeMismatch(f"with no axes, shape_like {tuple(like)} must have as many axes as data "
                                f"{tuple(data)}")
        return list(range(len(data)))
    bad = [a for a in p["axes"] if not (-len(data) <= a < len(data) and -len(like) <= a < len(like))]
    if bad:
        raise ShapeMismatch(f"axes={tuple(p['axes'])} has {bad[0]}, not an axis of both data {tuple(data)} and "
                            f"shape_like {tuple(like)}")
    return sorted({a % len(data) for a in p["axes"]})


def slice_params(p, data, like) -> dict:
    """The parameters of ``slice`` that cut ``data`` as slice_like does."""
    cut = _cut_axes(p, data, like)
    for axis in cut:
        if like[axis] > data[axis]:
            raise ShapeMismatch(f"shape_like {tuple(like)} is longer than data {tuple(data)} on axis {axis}")
    return {"begin": tuple(0 if a in cut else None for a in range(len(data))),
            "end": tuple(like[a] if a in cut else None for a in range(len(data))), "step": ()}


def _infer_shape(p, in_shapes, out_shapes):
    data, like = in_shapes
    if data is None or like is None:
        return in_shapes, out_shapes
    s = slice_params(p, data, like)
    out = tuple(d if e is None else e for d, e in zip(data, s["end"]))
    return in_shapes, [unify("output", out_shapes[0], out)]


def _forward(a: ForwardArgs):
    x = a.inputs[0]
    return plan_window_copy(*window(slice_params(a.params, x.shape, a.inputs[1].shape), x), a.outputs[0])


def _backward(a: BackwardArgs):
    dx = a.in_grads[0]
    if dx is None:
        return []
    s = slice_params(a.params, dx.shape, a.input_shapes[1])
    return plan_window_gradient(a.out_grads[0], dx, *window(s, dx), a.accumulate[0])


register(OpDef(
    name="slice_like",
    doc="data cut to shape_like's size from the start of each of axes (every axis when empty).",
    params=[Param("axes", "ints", (), doc="the axes to cut (empty: all; negative: from the end)")],
    input_names=("data", "shape_like"),
    infer_shape=_infer_shape,
    output_windows=lambda p, in_shapes: output_windows(slice_params(p, *in_shapes), in_shapes[:1]),
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((), ()),
    no_grad_inputs=lambda p: {"shape_like"},
    cheap=True,
))
