"""Crop (MXNet's legacy operator of fully convolutional networks): (batch, channels, height,
width) data cut to ``h_w`` (one input) or to the height and width of a second input
``crop_like`` (two inputs; its values never read, its gradient 0, as MXNet's), from
``offset`` (top, left) or, with ``center_crop``, from the middle (the extra row or column
of an odd remainder left at the end). On slice's window copy; the gradient is written into
the window of a zeroed input gradient. An offset that leaves the data is refused at bind
(MXNet fails when it runs)."""

from __future__ import annotations

from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, register, unify
from .slice import output_windows, plan_window_copy, plan_window_gradient, window


def _image(name: str, shape) -> None:
    if len(shape) != 4:
        raise ShapeMismatch(f"{name} of shape {tuple(shape)} must be (batch, channels, height, width)")


def slice_params(p, data, like) -> dict:
    """The parameters of ``slice`` that crop ``data`` (to ``like``'s height and width with two
    inputs, else to h_w)."""
    _image("data", data)
    if p["num_args"] == 2:
        _image("crop_like", like)
        size = tuple(like[2:])
    else:
        size = tuple(p["h_w"])
        if len(size) != 2 or min(size) < 1:
            raise ShapeMismatch(f"h_w={size} must be a height and a width of at least 1 (one input: the size to "
                                f"crop to)")
    if any(s > d for s, d in zip(size, data[2:])):
        raise ShapeMismatch(f"the crop {size} is larger than data {tuple(data)}'s height and width")
    if p["center_crop"]:
        offset = tuple((d - s) // 2 for s, d in zip(size, data[2:]))
    else:
        offset = tuple(p["offset"])
        if len(offset) != 2 or any(o + s > d for o, s, d in zip(offset, size, data[2:])):
            raise ShapeMismatch(f"offset={offset} and the crop {size} leave data {tuple(data)}'s height and width")
    return {"begin": (None, None, *offset), "end": (None, None, *(o + s for o, s in zip(offset, size))),
            "step": ()}


def _infer_shape(p, in_shapes, out_shapes):
    if any(s is None for s in in_shapes):
        return in_shapes, out_shapes
    s = slice_params(p, in_shapes[0], in_shapes[-1])
    out = (*in_shapes[0][:2], *(e - b for b, e in zip(s["begin"][2:], s["end"][2:])))
    return in_shapes, [unify("output", out_shapes[0], out)]


def _forward(a: ForwardArgs):
    x = a.inputs[0]
    return plan_window_copy(*window(slice_params(a.params, x.shape, a.inputs[-1].shape), x), a.outputs[0])


def _backward(a: BackwardArgs):
    dx = a.in_grads[0]
    if dx is None:
        return []
    s = slice_params(a.params, dx.shape, a.input_shapes[-1])
    return plan_window_gradient(a.out_grads[0], dx, *window(s, dx), a.accumulate[0])


register(OpDef(
    name="Crop",
    doc="Cuts (batch, channels, height, width) data to h_w, or to a second input's height and width, from "
        "offset or the centre.",
    params=[
        Param("num_args", int, doc="1 (crop to h_w) or 2 (crop to the second input's size)",
              check=lambda v: None if v in (1, 2) else "must be 1 or 2"),
        Param("offset", "shape", (0, 0), doc="(top, left) of the crop"),
        Param("h_w", "shape", (0, 0), doc="one input: the (height, width) to crop to"),
        Param("center_crop", bool, False, doc="crop from the middle (offset ignored)"),
    ],
    input_names=("data", "crop_like"),
    active_inputs=lambda p: [f"arg{k}" for k in range(p["num_args"])],
    variadic=True,
    infer_shape=_infer_shape,
    output_windows=lambda p, in_shapes: output_windows(slice_params(p, in_shapes[0], in_shapes[-1]), in_shapes[:1]),
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((), ()),
    no_grad_inputs=lambda p: {"arg1"},
    cheap=True,
))
