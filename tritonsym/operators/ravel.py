"""ravel_multi_index and unravel_index (MXNet's): ``ravel_multi_index(data, shape)`` turns
coordinates (len(shape), ...) into the flat row-major indices (...) of an array of
``shape``; ``unravel_index(data, shape)`` turns flat indices (...) into coordinates
(len(shape), ...). Whole numbers in a float array, as MXNet holds them; a coordinate or an
index that is not whole or lies outside the shape gives NaN (MXNet answers some other
position). A dtype that cannot hold every index of the shape exactly (float16 past 2048,
bfloat16 past 256) is refused. No gradient flows to the data (``ops/ravel.py``)."""

from __future__ import annotations

import math

from ..ops import ravel as kernels
from ..ops._common import EXACT_INTEGERS
from .registry import ForwardArgs, OpDef, Param, ShapeMismatch, register, same_dtype_everywhere, unify

# The largest whole number below which every whole number is exact in each float dtype.


def _check_shape(value) -> str | None:
    if not value or min(value) < 1:
        return "must have at least one axis, each of positive size"
    return None


def _infer_type(p, in_types, out_types):
    in_types, out_types = same_dtype_everywhere(p, in_types, out_types)
    dtype, total = in_types[0], math.prod(p["shape"])
    if dtype is not None and dtype in EXACT_INTEGERS and total > EXACT_INTEGERS[dtype]:
        raise ShapeMismatch(f"shape={tuple(p['shape'])} has {total} positions, but "
                            f"{str(dtype).replace('torch.', '')} holds whole numbers exactly only up to "
                            f"{EXACT_INTEGERS[dtype]}: give the data a wider float dtype")
    return in_types, out_types


def _ravel_shape(p, in_shapes, out_shapes):
    data, axes = in_shapes[0], len(p["shape"])
    if data is not None:
        if not data or data[0] != axes:
            raise ShapeMismatch(f"data of shape {tuple(data)} must hold {axes} coordinates (one per axis of "
                                f"shape={tuple(p['shape'])}) along its first axis")
        return in_shapes, [unify("output", out_shapes[0], tuple(data[1:]))]
    if out_shapes[0] is not None:
        return [(axes, *out_shapes[0])], out_shapes
    return in_shapes, out_shapes


def _unravel_shape(p, in_shapes, out_shapes):
    data, axes = in_shapes[0], len(p["shape"])
    if data is not None:
        return in_shapes, [unify("output", out_shapes[0], (axes, *data))]
    return in_shapes, out_shapes


def _register(name: str, doc: str, infer_shape, plan) -> None:
    # MXNet registers each as ``_name`` with the plain name an alias: its JSON may hold either
    def forward(a: ForwardArgs):
        return plan(a.inputs[0], a.outputs[0], tuple(a.params["shape"]))

    register(OpDef(
        name=name,
        doc=doc,
        params=[Param("shape", "shape", check=_check_shape, doc="the array's shape the indices address")],
        input_names=("data",),
        infer_shape=infer_shape,
        infer_type=_infer_type,
        forward=forward,
        backward=lambda a: [],
        backward_needs=lambda p, epilogue: ((), ()),
        no_grad_inputs=lambda p: {"data"},
        cheap=True,
        aliases=(f"_{name}",),
    ))


_register("ravel_multi_index", "Coordinates (len(shape), ...) as flat row-major indices (...) into shape; NaN for "
          "a coordinate that is not whole or lies outside it.", _ravel_shape, kernels.plan_ravel_multi_index)
_register("unravel_index", "Flat row-major indices (...) into shape as coordinates (len(shape), ...); NaN for an "
          "index that is not whole or lies outside it.", _unravel_shape, kernels.plan_unravel_index)
