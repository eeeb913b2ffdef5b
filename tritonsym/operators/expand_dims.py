"""expand_dims (MXNet's): a new axis of size 1 at ``axis`` (in ``[-ndim - 1, ndim]``); a view."""

from __future__ import annotations

from .registry import Param, ShapeMismatch, register
from .view import view_op


def _position(axis: int, ndim: int) -> int:
    if not -ndim - 1 <= axis <= ndim:
        raise ShapeMismatch(f"axis={axis} is out of range for data of {ndim} dimension(s): "
                            f"it must be in [{-ndim - 1}, {ndim}]")
    return axis % (ndim + 1)


def _infer_shape(p, in_shapes, out_shapes):
    data, out = in_shapes[0], out_shapes[0]
    if data is not None:
        at = _position(p["axis"], len(data))
        grown = (*data[:at], 1, *data[at:])
        if out is not None and (len(out) != len(grown) or any(a and b and a != b for a, b in zip(out, grown))):
            raise ShapeMismatch(f"output is {tuple(out)} but {grown} is expected")
        out = tuple(a or b for a, b in zip(grown, out)) if out is not None else grown
    if out is not None:
        at = _position(p["axis"], len(out) - 1)
        data = (*out[:at], *out[at + 1:])
    return [data], [out]


register(view_op(
    name="expand_dims",
    doc="Inserts an axis of size 1 at position axis; a view.",
    params=[Param("axis", int, doc="where the new axis goes, in [-ndim - 1, ndim]")],
    infer_shape=_infer_shape,
))
