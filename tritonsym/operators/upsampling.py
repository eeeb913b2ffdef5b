"""UpSampling (MXNet's): (batch, channels, height, width) data made ``scale`` times taller
and wider.

``sample_type='nearest'`` copies each element into its scale x scale block. It takes any
number of inputs (``arg0``, ``arg1``, ...): the output is the first one's size times
``scale``, every other input upsampled to that size by a whole factor of its own (one
for height and width, as MXNet 1.9.1 computes it), and the
results concatenated along the channels (``multi_input_mode='concat'``) or summed
(``'sum'``, channels equal). Kernels: ``ops/upsampling.py``.

``sample_type='bilinear'`` takes ``data`` and ``weight`` (channels, 1, k, k), k = 2 scale -
scale % 2: MXNet's transposed convolution, one group per channel, stride ``scale``, pad
scale // 2, on Deconvolution's kernels; ``num_filter`` must be the number of channels.
The weight is a parameter, learned like any other; a weight variable without an ``init``
of its own is given ``init.Bilinear()`` (interpolation), as MXNet does.
"""

from __future__ import annotations

from ..ops import deconvolution as deconvolution_kernels
from ..ops import upsampling as kernels
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, positive, register, unify

BILINEAR_INIT = '["bilinear", {}]'


def _inputs(p) -> list[str]:
    if p["sample_type"] == "bilinear":
        return ["data", "weight"]
    return [f"arg{k}" for k in range(p["num_args"])]


def _check_image(name: str, shape) -> None:
    if len(shape) != 4:
        raise ShapeMismatch(f"{name} of shape {tuple(shape)} must be (batch, channels, height, width)")
    if min(shape[2:]) < 1:
        raise ShapeMismatch(f"{name} of shape {tuple(shape)} has no position to upsample")


def _nearest_shape(p, in_shapes):
    for k, shape in enumerate(in_shapes):
        _check_image(f"arg{k}", shape)
    first, scale = in_shapes[0], p["scale"]
    height, width = first[2] * scale, first[3] * scale
    channels = 0
    for k, shape in enumerate(in_shapes):
        if shape[0] != first[0]:
            raise ShapeMismatch(f"arg{k} of shape {tuple(shape)} has batch {shape[0]}; arg0 has {first[0]}")
        if height % shape[2] or width % shape[3] or height // shape[2] != width // shape[3]:
            raise ShapeMismatch(f"arg{k} of shape {tuple(shape)} must reach the output's {height} x {width} (arg0 "
                                f"{tuple(first)} times scale={scale}) by one whole factor for height and width, as "
                                f"MXNet upsamples it")
        if p["multi_input_mode"] == "sum" and shape[1] != first[1]:
            raise ShapeMismatch(f"multi_input_mode='sum' needs one channel count: arg{k} has {shape[1]}, arg0 "
                                f"{first[1]}")
        channels = first[1] if p["multi_input_mode"] == "sum" else channels + shape[1]
    return (first[0], channels, height, width)


def _bilinear_weight(p, data) -> tuple[int, ...]:
    if p["num_filter"] != data[1]:
        raise ShapeMismatch(f"sample_type='bilinear' needs num_filter equal to the data's channels: num_filter="
                            f"{p['num_filter']}, data {tuple(data)}")
    k = kernels.bilinear_geometry(p["scale"])["kernel"]
    return (data[1], 1, k, k)


def _infer_shape(p, in_shapes, out_shapes):
    if any(s is None for s in in_shapes[:1 if p["sample_type"] == "bilinear" else None]):
        return in_shapes, out_shapes
    if p["sample_type"] == "nearest":
        return in_shapes, [unify("output", out_shapes[0], _nearest_shape(p, in_shapes))]
    data = in_shapes[0]
    _check_image("data", data)
    weight = unify("weight", in_shapes[1], _bilinear_weight(p, data))
    out = (*data[:2], data[2] * p["scale"], data[3] * p["scale"])
    return [data, weight], [unify("output", out_shapes[0], out)]


def _deconvolution_options(p) -> dict:
    g = kernels.bilinear_geometry(p["scale"])
    return dict(stride=(g["stride"],) * 2, dilate=(1, 1), pad=(g["pad"],) * 2, adj=(0, 0), groups=p["num_filter"])


def _channel_slices(out, shapes, mode):
    """Where each input's upsampled image goes: all of out (sum) or its channels (concat)."""
    begin = 0
    for shape in shapes:
        yield out if mode == "sum" else out[:, begin:begin + shape[1]]
        begin += shape[1]


def _forward(a: ForwardArgs):
    p, out = a.params, a.outputs[0]
    if p["sample_type"] == "bilinear":
        return deconvolution_kernels.plan_deconvolution(a.inputs[0], a.inputs[1], None, out,
                                                        **_deconvolution_options(p))
    mode = p["multi_input_mode"]
    parts = _channel_slices(out, [x.shape for x in a.inputs], mode)
    return [launch for k, (x, part) in enumerate(zip(a.inputs, parts))
            for launch in kernels.plan_nearest(x, part, accumulate=mode == "sum" and k > 0)]


def _backward(a: BackwardArgs):
    p, dy = a.params, a.out_grads[0]
    if p["sample_type"] == "bilinear":
        if all(g is None for g in a.in_grads):
            return []
        return deconvolution_kernels.plan_deconvolution_backward(
            dy, a.inputs[0], a.inputs[1], *a.in_grads, None, accumulate=(*a.accumulate, False),
            **_deconvolution_options(p))
    parts = _channel_slices(dy, a.input_shapes, p["multi_input_mode"])
    return [launch for grad, part, add in zip(a.in_grads, parts, a.accumulate) if grad is not None
            for launch in kernels.plan_nearest_backward(part, grad, accumulate=add)]


register(OpDef(
    name="UpSampling",
    doc="Upsamples (batch, channels, height, width) data by scale: nearest (several inputs concatenated or "
        "summed) or bilinear (a learned transposed convolution starting as interpolation).",
    params=[
        Param("scale", int, doc="how many times taller and wider", check=positive),
        Param("num_filter", int, 0, doc="bilinear: the data's channels", check=lambda v: None if v >= 0 else
              "must not be negative"),
        Param("sample_type", str, choices=("nearest", "bilinear"), doc="nearest or bilinear"),
        Param("multi_input_mode", str, "concat", choices=("concat", "sum"),
              doc="nearest with several inputs: concatenate along the channels or sum"),
        Param("num_args", int, check=positive, doc="how many inputs (set from the inputs given)"),
        Param("workspace", int, 512, doc="MXNet's deconvolution workspace in MB: read, no effect here",
              check=lambda v: None if 0 <= v <= 8192 else "must be in 0 .. 8192"),
    ],
    input_names=("data", "weight"),
    active_inputs=_inputs,
    variadic=True,
    infer_shape=_infer_shape,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((0, 1), ()) if p["sample_type"] == "bilinear" else ((), ()),
    input_initializers=lambda p: {"weight": BILINEAR_INIT} if p["sample_type"] == "bilinear" else {},
))
