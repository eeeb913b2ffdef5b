"""squeeze (MXNet's): removes axes of size 1 (all of them, or those in ``axis``, which must
have size 1); a view. Squeezing every axis leaves shape (1,), as in MXNet."""

from __future__ import annotations

from .registry import Param, ShapeMismatch, register, unify
from .view import view_op


def _infer_shape(p, in_shapes, out_shapes):
    data = in_shapes[0]
    if data is None or 0 in data:
        return in_shapes, out_shapes
    if p["axis"] is None:
        dropped = {k for k, d in enumerate(data) if d == 1}
    else:
        bad = [a for a in p["axis"] if not -len(data) <= a < len(data)]
        if bad:
            raise ShapeMismatch(f"axis={p['axis']} has {bad[0]}, out of range for data of shape {tuple(data)}")
        dropped = {a % len(data) for a in p["axis"]}
        if len(dropped) != len(p["axis"]):
            raise ShapeMismatch(f"axis={p['axis']} names an axis twice")
        wide = [a for a in sorted(dropped) if data[a] != 1]
        if wide:
            raise ShapeMismatch(f"axis={p['axis']}: axis {wide[0]} of data of shape {tuple(data)} has size "
                                f"{data[wide[0]]}, not 1, and cannot be squeezed")
    out = tuple(d for k, d in enumerate(data) if k not in dropped) or (1,)
    return [data], [unify("output", out_shapes[0], out)]


register(view_op(
    name="squeeze",
    doc="Removes axes of size 1 (those in axis, or all); a view.",
    params=[Param("axis", "ints", None, doc="the axes to remove (each of size 1); all size-1 axes when None")],
    infer_shape=_infer_shape,
))
