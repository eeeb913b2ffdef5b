"""SpatialTransformer (MXNet's): a spatial transformer network's sampling step in one
operator, ``BilinearSampler(data, GridGenerator(loc, 'affine', target_shape))``: ``data``
(N, C, H, W) sampled bilinearly, zero outside, at the target pixels of a ``target_shape``
(H', W') grid mapped by the affine map ``loc`` (N, 6) holds per image. Output (N, C, H',
W'). MXNet offers only ``transform_type='affine'`` and ``sampler_type='bilinear'``.

The grid lives in scratch, in float32 for half-precision data (the composition of the two
operators rounds it to the data's dtype; this one samples at the exact positions): made in
forward, made again in backward (one cheap launch) rather than kept between the two steps;
backward then runs the sampler's gradients and the affine map's (``ops/grid_generator.py``,
``ops/bilinear_sampler.py``)."""

from __future__ import annotations

from ..ops import bilinear_sampler as sampler
from ..ops import grid_generator as grids
from ..ops._common import compute_dtype
from .bilinear_sampler import data_grad_temps, plan_sampler_backward, sampled_shapes
from .grid_generator import affine_output_shape, check_target_shape
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, register, unify


def _infer_shape(p, in_shapes, out_shapes):
    check_target_shape("target_shape", p["target_shape"])
    data, loc = in_shapes
    if loc is not None and (len(loc) != 2 or loc[1] not in (0, 6)):
        raise ShapeMismatch(f"loc of shape {tuple(loc)} must be (batch, 6): a 2 x 3 affine map per image")
    grid_size = (loc[0] if loc is not None else 0, *p["target_shape"])
    data, out = sampled_shapes(f"loc {tuple(loc)}" if loc is not None else "loc", data, grid_size, out_shapes[0])
    return [data, unify("loc", loc, (out[0], 6))], [out]


def _grid_temp(p, shapes, dtypes) -> dict:
    # in the compute dtype: half-precision data is sampled at positions never rounded to it
    return {"grid": (affine_output_shape(shapes[0][0], p["target_shape"]), compute_dtype(dtypes[0]))}


def _forward(a: ForwardArgs):
    grid = a.temps["grid"]
    return grids.plan_affine_grid(a.inputs[1], grid) + sampler.plan_bilinear_sample(a.inputs[0], grid, a.outputs[0])


def _backward(a: BackwardArgs):
    ddata, dloc = a.in_grads
    if ddata is None and dloc is None:
        return []
    grid, dgrid = a.temps["grid"], a.temps["grid_grad"] if dloc is not None else None
    launches = grids.plan_affine_grid(a.inputs[1], grid)
    launches += plan_sampler_backward(a.inputs[0], grid, a.out_grads[0], ddata, dgrid, (a.accumulate[0], False),
                                      a.temps)
    if dloc is not None:
        launches += grids.plan_affine_grid_backward(dgrid, dloc, accumulate=a.accumulate[1])
    return launches


def _backward_temps(p, shapes, dtypes) -> dict:
    if shapes[0] is None:
        return {}
    grid = _grid_temp(p, shapes, dtypes)
    return {**grid, "grid_grad": grid["grid"], **data_grad_temps(shapes[0], grid["grid"][0], dtypes[0])}


register(OpDef(
    name="SpatialTransformer",
    doc="Data (N, C, H, W) sampled bilinearly at a target_shape grid mapped by an affine map (N, 6) per image.",
    params=[
        Param("target_shape", "shape", (0, 0), doc="the output's (height, width)"),
        Param("transform_type", str, choices=("affine",), doc="how loc maps the grid: affine (the only one)"),
        Param("sampler_type", str, choices=("bilinear",), doc="how data is read: bilinear (the only one)"),
        Param("cudnn_off", bool, None, doc="MXNet's switch off cuDNN: read, no effect here"),
    ],
    input_names=("data", "loc"),
    infer_shape=_infer_shape,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((0, 1), ()),
    forward_temps=lambda p, shapes, dtypes: _grid_temp(p, shapes, dtypes) if shapes[0] is not None else {},
    backward_temps=_backward_temps,
))
