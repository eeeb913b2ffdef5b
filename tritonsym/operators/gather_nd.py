"""gather_nd and scatter_nd (MXNet's): ``indices`` of shape ``(M, Y0, ..., YK-1)`` address,
for each position ``y``, the slice ``[indices[0, y], ..., indices[M-1, y]]`` of an array of
shape ``(X0, ..., XN-1)``.

* ``gather_nd(data, indices)``: the output ``(Y..., XM, ..., XN-1)`` holds the addressed
  slices; the gradient of ``data`` sums the output gradients of each slice's positions, in
  a fixed order (the same bits every run).
* ``scatter_nd(data, indices, shape)``: the output of ``shape`` is 0 but at the addressed
  slices, which hold the data of their positions, summed where several address one
  (MXNet leaves that undefined: its result depends on thread order); the gradient of
  ``data`` is the output gradient gathered back.

Indices may be floats (as iterators give them) or integers and take no gradient. A negative
coordinate counts from the end of its axis (MXNet's gather_nd does so forward, but its
gradient drops such positions; here both use it). A coordinate that is not a whole number
inside its axis (NaN, 1.5, past the end), which MXNet refuses with an error at run time,
gives that position's gathered slice NaN, and makes a scatter's whole output NaN: no kernel
can raise, and a value must not vanish silently. Kernels: ``ops/gather_nd.py``.
"""

from __future__ import annotations

from ..ops import gather_nd as kernels
from .pick import index_input_types
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, register, unify


def _coordinates(indices, array, what: str) -> int:
    """M, checked against the array it addresses (``what``: its role, for the message)."""
    if len(indices) < 1 or indices[0] < 1:
        raise ShapeMismatch(f"indices of shape {tuple(indices)} must hold at least one coordinate along axis 0")
    m = indices[0]
    if m > min(len(array), kernels.MAX_COORDINATES):
        raise ShapeMismatch(f"indices of shape {tuple(indices)} hold {m} coordinates, but {what} of shape "
                            f"{tuple(array)} has {len(array)} axes (at most {kernels.MAX_COORDINATES} are addressed)")
    return m


def _gather_shape(p, in_shapes, out_shapes):
    data, indices = in_shapes
    if data is None or indices is None:
        return in_shapes, out_shapes
    m = _coordinates(indices, data, "data")
    return in_shapes, [unify("output", out_shapes[0], (*indices[1:], *data[m:]))]


def _scatter_shape(p, in_shapes, out_shapes):
    data, indices = in_shapes
    out = unify("output", out_shapes[0], tuple(p["shape"]))
    if indices is None:
        return in_shapes, [out]
    m = _coordinates(indices, out, "shape")
    return [unify("data", data, (*indices[1:], *out[m:])), indices], [out]


def _largest_axis(indices, array) -> dict[int, int]:
    """The class-index rule for the coordinates: exact up to the longest addressed axis."""
    if indices is None or array is None or not indices or indices[0] > len(array):
        return {}
    return {1: max(array[:indices[0]])}


def _temps(p, shapes, dtypes, with_gathered=False):
    temps = dict(kernels.scratch_shapes(shapes[1]))
    if with_gathered:
        temps["gathered"] = (tuple(shapes[0]), dtypes[0])
    return temps


def _gather_forward(a: ForwardArgs):
    return kernels.plan_gather_nd(a.inputs[0], a.inputs[1], a.outputs[0], a.temps)


def _gather_backward(a: BackwardArgs):
    if a.in_grads[0] is None:
        return []
    return kernels.plan_gather_nd_backward(a.out_grads[0], a.inputs[1], a.in_grads[0], a.temps, a.accumulate[0])


def _scatter_forward(a: ForwardArgs):
    return kernels.plan_scatter_nd(a.inputs[0], a.inputs[1], a.outputs[0], a.temps)


def _scatter_backward(a: BackwardArgs):
    if a.in_grads[0] is None:
        return []
    return kernels.plan_scatter_nd_backward(a.out_grads[0], a.inputs[1], a.in_grads[0], a.temps, a.accumulate[0],
                                            a.temps["gathered"])


_COMMON = dict(
    input_names=("data", "indices"),
    infer_type=index_input_types,
    backward_needs=lambda p, epilogue: ((1,), ()),
    no_grad_inputs=lambda p: {"indices"},
)

register(OpDef(
    name="gather_nd",
    doc="The slices of data at the coordinates of indices (M, Y...): output (Y..., data.shape[M:]).",
    params=[],
    infer_shape=_gather_shape,
    forward=_gather_forward,
    backward=_gather_backward,
    class_inputs=lambda p, shapes: _largest_axis(shapes[1], shapes[0]),
    forward_temps=_temps,
    backward_temps=_temps,
    **_COMMON,
))

register(OpDef(
    name="scatter_nd",
    doc="An array of shape, 0 but at the coordinates of indices (M, Y...), which hold data (Y..., shape[M:]) "
        "(summed where positions share them).",
    params=[Param("shape", "shape", doc="the output's shape")],
    infer_shape=_scatter_shape,
    forward=_scatter_forward,
    backward=_scatter_backward,
    class_inputs=lambda p, shapes: _largest_axis(shapes[1], p["shape"]),
    forward_temps=_temps,
    backward_temps=lambda p, shapes, dtypes: _temps(p, shapes, dtypes, with_gathered=True),
    **_COMMON,
))
