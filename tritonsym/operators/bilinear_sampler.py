"""BilinearSampler (MXNet's): ``data`` (N, C, H, W) interpolated bilinearly at the source
positions ``grid`` (N, 2, OH, OW) holds, x in channel 0 and y in channel 1 in [-1, 1]
coordinates, zero outside the image: the sampler of spatial transformer networks
(OpenCV's ``remap`` with a gradient). Output (N, C, OH, OW).

Forward one launch; backward one launch for the grid's gradient and, for the data's, one
program per (image, block of channels) adding every output's share in order: the same bits
every run (``ops/bilinear_sampler.py``)."""

from __future__ import annotations

from ..ops import bilinear_sampler as kernels
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, register, unify


def sampled_shapes(what: str, data, grid_size, out) -> tuple[list, tuple | None]:
    """(data, output) shapes unified from data (N, C, H, W), the grid's (N, OH, OW) (None
    where unknown) and the output (N, C, OH, OW); ``what`` names the grid in errors."""
    if data is not None and len(data) != 4:
        raise ShapeMismatch(f"data of shape {tuple(data)} must be (batch, channels, height, width)")
    if out is not None and len(out) != 4:
        raise ShapeMismatch(f"the output of shape {tuple(out)} must be (batch, channels, height, width)")
    batch = next((s[0] for s in (data, grid_size, out) if s is not None and s[0]), 0)
    channels = next((s[1] for s in (data, out) if s is not None and s[1]), 0)
    size = grid_size[1:] if grid_size is not None else (tuple(out[2:]) if out is not None else (0, 0))
    data = unify("data", data, (batch, channels, 0, 0))
    if grid_size is not None and grid_size[0] and data[0] != grid_size[0]:
        raise ShapeMismatch(f"data {tuple(data)} and {what} differ in batch size: {data[0]} and {grid_size[0]}")
    return data, unify("output", out, (batch, channels, *size))


def _infer_shape(p, in_shapes, out_shapes):
    data, grid = in_shapes
    if grid is not None and (len(grid) != 4 or grid[1] not in (0, 2)):
        raise ShapeMismatch(f"grid of shape {tuple(grid)} must be (batch, 2, height, width): x and y per position")
    data, out = sampled_shapes(f"grid {tuple(grid)}" if grid is not None else "grid",
                               data, None if grid is None else (grid[0], grid[2], grid[3]), out_shapes[0])
    grid = unify("grid", grid, (out[0], 2, out[2], out[3]))
    return [data, grid], [out]


def data_grad_temps(data_shape, grid_shape, dtype) -> dict:
    """Scratch the data's gradient sums in (``ops/bilinear_sampler.data_grad_scratch``)."""
    wanted = kernels.data_grad_scratch(tuple(data_shape), tuple(grid_shape), dtype)
    return {} if wanted is None else {"data_grad": wanted}


def plan_sampler_backward(data, grid, dout, ddata, dgrid, accumulate, temps) -> list:
    """The launches for the gradients wanted (None: not wanted) of data and grid."""
    launches = []
    if dgrid is not None:
        launches += kernels.plan_bilinear_sample_grid_backward(data, grid, dout, dgrid, accumulate=accumulate[1])
    if ddata is not None:
        launches += kernels.plan_bilinear_sample_data_backward(grid, dout, ddata, accumulate=accumulate[0],
                                                               scratch=temps.get("data_grad"))
    return launches


def _forward(a: ForwardArgs):
    return kernels.plan_bilinear_sample(a.inputs[0], a.inputs[1], a.outputs[0])


def _backward(a: BackwardArgs):
    return plan_sampler_backward(a.inputs[0], a.inputs[1], a.out_grads[0], a.in_grads[0], a.in_grads[1],
                                 a.accumulate, a.temps)


register(OpDef(
    name="BilinearSampler",
    doc="Data (N, C, H, W) sampled bilinearly at the [-1, 1] positions of a grid (N, 2, OH, OW), zero outside.",
    params=[Param("cudnn_off", bool, None, doc="MXNet's switch off cuDNN: read, no effect here")],
    input_names=("data", "grid"),
    infer_shape=_infer_shape,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((0, 1), ()),
    backward_temps=lambda p, shapes, dtypes: ({} if shapes[0] is None or shapes[1] is None
                                              else data_grad_temps(shapes[0], shapes[1], dtypes[0])),
))
