"""_contrib_BilinearResize2D (MXNet's; ``ts.sym.contrib.BilinearResize2D``): (N, C, H, W)
data resized to a new height and width by bilinear interpolation, as segmentation networks
(DeepLab, PSPNet) upsample their logits. The output's size by ``mode``:

- ``"size"``: ``height`` and ``width``, or ``int(H * scale_height)`` / ``int(W *
  scale_width)`` for an axis whose scale is given;
- ``"odd_scale"``: ``int(L * scale)`` for an even L, ``int((L - 1) * scale) + 1`` for an
  odd one (both scales required);
- ``"like"``: the height and width of a second input, ``like`` (never read; no gradient);
- ``"to_even_down"``, ``"to_even_up"``, ``"to_odd_down"``, ``"to_odd_up"``: the nearest
  even or odd size below or above (the size itself when it is one).

``align_corners`` (MXNet's default True) picks where each output samples the input
(``ops/bilinear_resize.py``). One launch each way; the gradient gathers each input
element's share from the outputs that read it, with no atomics."""

from __future__ import annotations

from ..ops import bilinear_resize as kernels
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, register, unify

MODES = ("size", "odd_scale", "like", "to_even_down", "to_even_up", "to_odd_down", "to_odd_up")


def _positive_scale(value) -> str | None:
    return None if value is None or value > 0 else "must be positive"


def _check_params(p) -> None:
    if p["mode"] == "odd_scale" and (p["scale_height"] is None or p["scale_width"] is None):
        raise ShapeMismatch(f"mode='odd_scale' needs scale_height and scale_width, got "
                         f"scale_height={p['scale_height']}, scale_width={p['scale_width']}")


def _new_length(p, length: int, axis: str) -> int:
    mode, scale = p["mode"], p[f"scale_{axis}"]
    if mode == "size":
        return p[axis] if scale is None else int(scale * length)
    if mode == "odd_scale":
        return int(length * scale) if length % 2 == 0 else int((length - 1) * scale) + 1
    even = mode.startswith("to_even")
    if (length % 2 == 0) == even:
        return length
    return length + 1 if mode.endswith("_up") else length - 1


def _infer_shape(p, in_shapes, out_shapes):
    _check_params(p)
    data = in_shapes[0]
    if data is None or (p["mode"] == "like" and in_shapes[1] is None):
        return in_shapes, out_shapes
    if len(data) != 4 or min(data[2:]) < 1:
        raise ShapeMismatch(f"data of shape {tuple(data)} must be (batch, channels, height, width) with a height and "
                            "a width")
    if p["mode"] == "like":
        like = in_shapes[1]
        if len(like) != 4:
            raise ShapeMismatch(f"like of shape {tuple(like)} must be (batch, channels, height, width)")
        size = tuple(like[2:])
    else:
        size = (_new_length(p, data[2], "height"), _new_length(p, data[3], "width"))
    if min(size) < 1:
        raise ShapeMismatch(f"mode={p['mode']!r} resizes data {tuple(data)} to {size[0]} x {size[1]} (height="
                            f"{p['height']}, width={p['width']}, scale_height={p['scale_height']}, scale_width="
                            f"{p['scale_width']}): nothing to sample")
    return in_shapes, [unify("output", out_shapes[0], (*data[:2], *size))]


def _forward(a: ForwardArgs):
    return kernels.plan_bilinear_resize(a.inputs[0], a.outputs[0], align_corners=a.params["align_corners"])


def _backward(a: BackwardArgs):
    if a.in_grads[0] is None:
        return []
    return kernels.plan_bilinear_resize_backward(a.out_grads[0], a.in_grads[0],
                                                 align_corners=a.params["align_corners"],
                                                 accumulate=a.accumulate[0])


register(OpDef(
    name="_contrib_BilinearResize2D",
    doc="(N, C, H, W) data resized to a new height and width by bilinear interpolation.",
    params=[
        Param("height", int, 1, check=lambda v: None if v >= 1 else "must be at least 1",
              doc="the output height (mode 'size' without scale_height)"),
        Param("width", int, 1, check=lambda v: None if v >= 1 else "must be at least 1",
              doc="the output width (mode 'size' without scale_width)"),
        Param("scale_height", "optional_float", None, check=_positive_scale,
              doc="the height's factor (modes 'size' and 'odd_scale')"),
        Param("scale_width", "optional_float", None, check=_positive_scale,
              doc="the width's factor (modes 'size' and 'odd_scale')"),
        Param("mode", str, "size", choices=MODES, doc="how the output's size is chosen"),
        Param("align_corners", bool, True,
              doc="sample at o (L - 1) / (OL - 1) (True) or at pixel centres, (o + 0.5) L / OL - 0.5 (False)"),
    ],
    input_names=("data", "like"),
    active_inputs=lambda p: ["data", "like"] if p["mode"] == "like" else ["data"],
    infer_shape=_infer_shape,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((), ()),
    no_grad_inputs=lambda p: {"like"},
))
