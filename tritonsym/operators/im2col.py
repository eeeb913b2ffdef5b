"""im2col and col2im (MXNet's): ``im2col(data, kernel, stride, dilate, pad)`` lays the
sliding blocks of (N, C, *spatial) data (1 to 3 spatial axes) out as columns of shape
(N, C x prod(kernel), blocks), the blocks being the positions of a convolution with the
same parameters; ``col2im(data, output_size, ...)`` sums such columns back into an image
(N, C, *output_size), adding where blocks overlap. Each is the other's adjoint, so each
one's gradient is one launch of the other (``ops/im2col.py``)."""

from __future__ import annotations

import math

from ..ops import im2col as kernels
from .convolution import kernel_rank, spatial_params
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, register, unify


def _geometry(p) -> dict[str, tuple[int, ...]]:
    kernel_rank(p)
    return dict(kernel=tuple(p["kernel"]), **spatial_params(p))


def _block_grid(op: str, image, geometry) -> tuple[int, ...]:
    """The block positions along each spatial axis of an image of shape ``image``."""
    kernel = geometry["kernel"]
    if len(image) != len(kernel) + 2:
        raise ShapeMismatch(f"{op}: an image of shape {tuple(image)} must be (batch, channels) and {len(kernel)} "
                            f"spatial axes for kernel={kernel}")
    grid = tuple(kernels.output_length(n, k, s, d, q) for n, k, s, d, q in
                 zip(image[2:], kernel, geometry["stride"], geometry["dilate"], geometry["pad"]))
    if min(grid) < 1:
        raise ShapeMismatch(f"{op}: kernel={kernel} dilated by {geometry['dilate']} does not fit in an image of "
                            f"spatial shape {tuple(image[2:])} padded by {geometry['pad']}")
    return grid


def _im2col_shape(p, in_shapes, out_shapes):
    geometry, data = _geometry(p), in_shapes[0]
    if data is None:
        return in_shapes, out_shapes
    grid = _block_grid("im2col", data, geometry)
    return in_shapes, [unify("output", out_shapes[0], kernels.columns_shape(data, geometry["kernel"], grid))]


def _col2im_shape(p, in_shapes, out_shapes):
    geometry, size = _geometry(p), tuple(p["output_size"])
    taps = math.prod(geometry["kernel"])
    if len(size) != len(geometry["kernel"]) or min(size) < 1:
        raise ShapeMismatch(f"col2im: output_size={size} must have one positive size per kernel axis: "
                            f"kernel={geometry['kernel']}")
    data, image = in_shapes[0], out_shapes[0]
    if data is not None:
        if len(data) != 3 or data[1] % taps:
            raise ShapeMismatch(f"col2im: data of shape {tuple(data)} must be (batch, channels x {taps} kernel taps, "
                                "blocks)")
        image = unify("output", image, (data[0], data[1] // taps, *size))
    if image is None:
        return in_shapes, out_shapes
    grid = _block_grid("col2im", image, geometry)
    return [unify("data", data, kernels.columns_shape(image, geometry["kernel"], grid))], [image]


def _im2col_forward(a: ForwardArgs):
    return kernels.plan_im2col(a.inputs[0], a.outputs[0], **_geometry(a.params))


def _im2col_backward(a: BackwardArgs):
    if a.in_grads[0] is None:
        return []
    return kernels.plan_col2im(a.out_grads[0], a.in_grads[0], accumulate=a.accumulate[0], **_geometry(a.params))


def _col2im_forward(a: ForwardArgs):
    return kernels.plan_col2im(a.inputs[0], a.outputs[0], **_geometry(a.params))


def _col2im_backward(a: BackwardArgs):
    if a.in_grads[0] is None:
        return []
    return kernels.plan_im2col(a.out_grads[0], a.in_grads[0], accumulate=a.accumulate[0], **_geometry(a.params))


def _geometry_params() -> list[Param]:
    return [
        Param("kernel", "shape", doc="the blocks' spatial shape: (w,), (h, w) or (d, h, w)"),
        Param("stride", "shape", (), doc="step between blocks per axis (default 1)"),
        Param("dilate", "shape", (), doc="spacing between a block's taps per axis (default 1)"),
        Param("pad", "shape", (), doc="zeros added on both sides per axis (default 0)"),
    ]


register(OpDef(
    name="im2col",
    doc="The sliding blocks of data (N, C, *spatial) as columns (N, C x prod(kernel), blocks).",
    params=_geometry_params(),
    input_names=("data",),
    infer_shape=_im2col_shape,
    forward=_im2col_forward,
    backward=_im2col_backward,
    backward_needs=lambda p, epilogue: ((), ()),
))

register(OpDef(
    name="col2im",
    doc="Columns (N, C x prod(kernel), blocks) summed back into an image (N, C, *output_size).",
    params=[Param("output_size", "shape", doc="the image's spatial shape: (w,), (h, w) or (d, h, w)"),
            *_geometry_params()],
    input_names=("data",),
    infer_shape=_col2im_shape,
    forward=_col2im_forward,
    backward=_col2im_backward,
    backward_needs=lambda p, epilogue: ((), ()),
))
