"""SwapAxis (MXNet's; alias ``swapaxes``): two axes exchanged, the others kept in place.
A transpose whose order comes from ``dim1`` and ``dim2`` (``transpose.permuting_op``):
one strided copy each way, none where the program makes it a permuted view; the same axis
twice is a view."""

from __future__ import annotations

from .registry import Param, ShapeMismatch, register, unify
from .transpose import permuting_op


def order(p, ndim: int) -> tuple[int, ...]:
    """``range(ndim)`` with dim1 and dim2 (negative: from the end) exchanged, checked."""
    bad = [d for d in (p["dim1"], p["dim2"]) if not -ndim <= d < ndim]
    if bad:
        raise ShapeMismatch(f"dim1={p['dim1']}, dim2={p['dim2']}: {bad[0]} is not an axis of data with {ndim} "
                            f"dimension(s)")
    swapped = list(range(ndim))
    a, b = p["dim1"] % ndim, p["dim2"] % ndim
    swapped[a], swapped[b] = b, a
    return tuple(swapped)


def _infer_shape(p, in_shapes, out_shapes):
    data, out = in_shapes[0], out_shapes[0]
    known = data if data is not None else out
    if known is None:
        return in_shapes, out_shapes
    swap = order(p, len(known))  # its own inverse
    if data is not None:
        out = unify("output", out, tuple(data[a] for a in swap))
    return [unify("data", data, tuple(out[a] for a in swap))], [out]


register(permuting_op(
    name="SwapAxis",
    doc="Exchanges axes dim1 and dim2; one strided copy.",
    params=[Param("dim1", int, 0, doc="the first axis (negative: from the end)"),
            Param("dim2", int, 0, doc="the second axis (negative: from the end)")],
    order=order,
    is_view=lambda p: p["dim1"] == p["dim2"],
    infer_shape=_infer_shape,
    aliases=("swapaxes",),
))
